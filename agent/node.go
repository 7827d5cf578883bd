// Package agent is a running Skjold node: it wires the state machine, the Raft cluster, the plugin host,
// the effector that delivers alarms to hooks, the ticker, and the HTTP API into one process.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"

	"github.com/skjold-alarm/skjold/cluster"
	"github.com/skjold-alarm/skjold/cluster/pki"
	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/api"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/state"
	"github.com/skjold-alarm/skjold/plugins/host"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

var _ host.CallbackSink = (*Node)(nil)

// Node is one running Skjold node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	machine *state.Machine
	raft    *cluster.Node
	plugins *host.Manager
	api     *api.Server
	httpSrv *http.Server
	apiAddr string
	metrics *metrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	faults chan breach.PluginState

	effMu sync.Mutex
	wakes map[string]chan struct{} // per outbox consumer (hook or commands): the outbox has new items

	// leading is set once this node leads and has applied all its predecessor committed.
	leading   atomic.Bool
	placement placement
	// quorumLostSince is the UnixNano since when this node has been cut off long enough to sound; 0 if not.
	quorumLostSince atomic.Int64

	stopOnce sync.Once
}

// Start opens the data directory, joins (or bootstraps) the cluster, starts the plugins and serves the API.
// It refuses a data directory that is damaged or from an incompatible version.
func Start(cfg Config, log *slog.Logger) (*Node, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.NodeID == "" {
		return nil, errors.New("node_id is empty")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// A backup interrupted by a crash leaves its checkpoint behind; nothing else lives there.
	os.RemoveAll(filepath.Join(cfg.DataDir, "tmp"))
	specs, err := pluginSpecs(cfg)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, wakes: map[string]chan struct{}{}, faults: make(chan breach.PluginState, 256)}
	n.placement.hooks = map[string][]hookSite{}
	n.ctx, n.cancel = context.WithCancel(context.Background())

	n.machine, err = state.Open(filepath.Join(cfg.DataDir, "state"), cfg.Evaluator)
	if err != nil {
		return nil, fmt.Errorf("refusing to start: %w", err)
	}
	n.machine.Fatal = func(err error) {
		log.Error("state machine stopped: this node cannot apply the log safely", "err", err)
		fmt.Fprintf(os.Stderr, "skjold: FATAL: %v\n", err)
		os.Exit(70)
	}
	// The plugin manager exists before anything can read it (the API's health and metrics, other nodes'
	// calls); it launches its plugins only at Start below.
	n.plugins, err = host.New(specs, n, host.Options{Node: cfg.NodeID, Logger: hclogFor(log, "plugin")})
	if err != nil {
		n.machine.Close()
		return nil, err
	}
	ccfg := cluster.Config{
		NodeID:    cfg.NodeID,
		Dir:       filepath.Join(cfg.DataDir, "raft"),
		BindAddr:  cfg.RaftBind,
		Advertise: cfg.RaftAdvertise,
		Bootstrap: cfg.Bootstrap,
		Join:      cfg.Join,
		Handler:   n.serveRPC,
		Results:   resultCodec{},
		Logger:    hclogFor(log, "raft"),

		HeartbeatTimeout:   cfg.ElectionTimeout,
		ElectionTimeout:    cfg.ElectionTimeout,
		LeaderLeaseTimeout: cfg.ElectionTimeout / 2,
	}
	if cfg.TLS != nil {
		if ccfg.TLS, err = pki.Load(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			n.machine.Close()
			return nil, fmt.Errorf("raft.tls: %w", err)
		}
	}
	n.raft, err = cluster.Open(ccfg, machineAdapter{n.machine})
	if err != nil {
		n.machine.Close()
		return nil, fmt.Errorf("refusing to start: %w", err)
	}
	n.metrics = newMetrics(n)
	n.api = api.New(n, n.metrics.handler(), log)
	ln, err := net.Listen("tcp", cfg.APIListen)
	if err != nil {
		n.raft.Shutdown()
		n.machine.Close()
		return nil, fmt.Errorf("api: %w", err)
	}
	n.apiAddr = ln.Addr().String()
	n.httpSrv = &http.Server{Handler: n.api, ReadHeaderTimeout: 10 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api server stopped", "err", err)
		}
	}()

	n.goRun(n.reportFaults)
	n.goRun(n.tick)
	n.machine.OnChanges(func([]state.OutboxItem) { n.wakeAll() })
	// Hooks on this node are known at once; the leader learns those of other nodes from them.
	for _, h := range n.plugins.Hooks() {
		n.placement.hooks[h] = []hookSite{{node: cfg.NodeID, up: true}}
		n.ensureEffector(h)
	}
	n.ensureEffector(commandsCursor)
	n.goRun(n.lead)
	n.goRun(n.watchPlacement)
	n.goRun(n.watchQuorum)
	n.plugins.Start(n.ctx)
	log.Info("node started", "node", cfg.NodeID, "api", n.apiAddr, "raft", cfg.RaftBind, "data", cfg.DataDir)
	return n, nil
}

// ensureEffector starts delivering the outbox to a consumer, once.
func (n *Node) ensureEffector(consumer string) {
	n.effMu.Lock()
	defer n.effMu.Unlock()
	if _, ok := n.wakes[consumer]; ok {
		return
	}
	wake := make(chan struct{}, 1)
	n.wakes[consumer] = wake
	if consumer == commandsCursor {
		n.goRun(func() { n.effect(consumer, wake, n.sendCommand) })
		return
	}
	watch := &deliveryWatch{}
	n.goRun(func() {
		n.effect(consumer, wake, func(hook string, it state.OutboxItem) bool { return n.deliver(hook, it, watch) })
	})
}

func (n *Node) wakeAll() {
	n.effMu.Lock()
	defer n.effMu.Unlock()
	for _, w := range n.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// routeOf is the route this node's config gives a hook.
func (n *Node) routeOf(hook string) *Route {
	for _, h := range n.cfg.Hooks {
		if h.Name == hook {
			return h.Route
		}
	}
	return nil
}

// deliverLocal gives a transition to a hook on this node, unless the hook's route leaves it out.
func (n *Node) deliverLocal(ctx context.Context, hook string, ch alarm.Change) (*pluginpb.Receipt, error) {
	if !n.routeOf(hook).Matches(&ch.Alarm) {
		n.metrics.deliveries.WithLabelValues(hook, "not_routed").Inc()
		return &pluginpb.Receipt{Delivered: true}, nil
	}
	start := time.Now()
	rc, err := n.plugins.Deliver(ctx, hook, ch)
	if err == nil && rc.GetDelivered() {
		n.metrics.deliveries.WithLabelValues(hook, "ok").Inc()
		n.metrics.deliveryLatency.WithLabelValues(hook).Observe(time.Since(start).Seconds())
	}
	return rc, err
}

func (n *Node) goRun(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

// pluginSpecs resolves each configured plugin's binary and pin.
func pluginSpecs(cfg Config) ([]host.Spec, error) {
	var specs []host.Spec
	for _, group := range []struct {
		kind host.Kind
		list []PluginConfig
	}{{host.Kind("driver"), cfg.Drivers}, {host.Kind("hook"), cfg.Hooks}} {
		for _, p := range group.list {
			path := p.Path
			if path == "" {
				path = filepath.Join(cfg.PluginDir, fmt.Sprintf("skjold-%s-%s", group.kind, p.Name))
			}
			sum := p.SHA256
			if sum == "" {
				if !cfg.TrustPluginDir {
					return nil, fmt.Errorf("config: %s %q: sha256 is required (pin the binary: skjold plugin hash %s)", group.kind, p.Name, path)
				}
				var err error
				if sum, err = host.FileSHA256(path); err != nil {
					return nil, fmt.Errorf("%s %q: %w", group.kind, p.Name, err)
				}
			}
			specs = append(specs, host.Spec{Name: p.Name, Kind: group.kind, Path: path, SHA256: sum, Config: p.Config})
		}
	}
	return specs, nil
}

// WaitLeader waits until the cluster has a leader (a single node elects itself within a few seconds).
func (n *Node) WaitLeader(ctx context.Context) error { return n.raft.WaitLeader(ctx) }

// APIAddr is the address the API listens on.
func (n *Node) APIAddr() string { return n.apiAddr }

// Machine is the local state (api.Backend).
func (n *Node) Machine() *state.Machine { return n.machine }

// API is the HTTP handler.
func (n *Node) API() *api.Server { return n.api }

// Now is the node's clock (api.Backend). Entries carry it; the state machine never reads a clock.
func (n *Node) Now() time.Time { return time.Now().UTC() }

// Propose commits an entry (api.Backend), through the leader wherever it is.
func (n *Node) Propose(ctx context.Context, entry []byte) (any, error) {
	n.metrics.proposals.Inc()
	res, err := n.raft.Propose(ctx, entry)
	if err != nil {
		n.metrics.proposalErrors.Inc()
	}
	return res, err
}

// Health describes the node (api.Backend).
func (n *Node) Health() api.Health {
	h := api.Health{Status: "ok", Node: n.cfg.NodeID, RaftState: n.raft.State(), AppliedIndex: n.machine.AppliedIndex()}
	h.Leader, _ = n.raft.Leader()
	n.machine.View(func(ev *breach.Evaluator) {
		h.ActivePoliceAlarms = ev.ActivePolice()
		h.LogTime = ev.Now()
	})
	if h.Leader == "" {
		h.Problems = append(h.Problems, "no leader: the cluster has no quorum")
	}
	if since := n.quorumLostSince.Load(); since != 0 {
		h.Problems = append(h.Problems, fmt.Sprintf("no quorum since %s: the local siren was sounded directly",
			time.Unix(0, since).UTC().Format(time.RFC3339)))
	}
	if n.plugins != nil {
		for _, s := range n.plugins.Status() {
			h.Plugins = append(h.Plugins, api.PluginHealth{Name: s.Name, Kind: string(s.Kind), Up: s.Up, PID: s.PID, Restarts: s.Restarts, LastError: s.LastError})
			if !s.Up {
				h.Problems = append(h.Problems, fmt.Sprintf("%s plugin %s is down: %s", s.Kind, s.Name, s.LastError))
			}
		}
	}
	if h.Plugins == nil {
		h.Plugins = []api.PluginHealth{}
	}
	if len(h.Problems) > 0 {
		h.Status = "degraded"
	}
	return h
}

// ---- host.Sink ----

// Observations commits a driver's batch (host.Sink).
func (n *Node) Observations(ctx context.Context, driver string, obs []device.Observation) error {
	for i := range obs {
		if fe := obs[i].Validate(); fe != nil {
			n.metrics.driverRejected.WithLabelValues(driver).Inc()
			return fmt.Errorf("observation %d: %s", i, fe.Error())
		}
		obs[i].Driver, obs[i].Node = driver, n.cfg.NodeID
	}
	entry, err := state.Observations(breach.Observations{At: n.Now(), By: "driver:" + driver + "@" + n.cfg.NodeID, Obs: obs})
	if err != nil {
		return err
	}
	// A driver starts with the node, often before the first election ends: Propose waits for a leader
	// within the host's deadline rather than refuse the batch.
	res, err := n.Propose(ctx, entry)
	if err != nil {
		return err
	}
	if e, ok := res.(error); ok {
		return e
	}
	return nil
}

// PluginState reports a plugin's health change (host.Sink). It never blocks the host: the change is
// queued and committed by reportFaults, retried until the cluster takes it.
func (n *Node) PluginState(name string, kind host.Kind, up bool, reason string) {
	ps := breach.PluginState{At: n.Now(), Node: n.cfg.NodeID, Name: name, Kind: string(kind), Up: up, Reason: reason}
	if up {
		n.log.Info("plugin up", "plugin", name, "kind", kind)
	} else {
		n.log.Warn("plugin down", "plugin", name, "kind", kind, "reason", reason)
	}
	n.queueFault(ps)
}

// AlarmCallback acknowledges (ack) or annotates an alarm for a hook (host.CallbackSink): the dispatch
// side acted on it. The entry's By is "hook:<hook>/<by>", so the alarm shows which hook and who behind it.
// It returns the alarm's state and the seq of the transition it made, once committed.
func (n *Node) AlarmCallback(ctx context.Context, hook string, ack bool, alarmID, by, note string) (string, uint32, error) {
	who := "hook:" + hook
	if by != "" {
		who += "/" + by
	}
	var entry []byte
	var err error
	if ack {
		entry, err = state.AckAlarm(breach.AckAlarm{At: n.Now(), By: who, ID: alarmID, Note: note})
	} else {
		entry, err = state.AnnotateAlarm(breach.AnnotateAlarm{At: n.Now(), By: who, ID: alarmID, Note: note})
	}
	if err != nil {
		return "", 0, &host.CallbackError{Code: codes.Internal, Message: err.Error()}
	}
	res, err := n.Propose(ctx, entry)
	if err != nil {
		return "", 0, fmt.Errorf("not committed: %w", err) // the hook calls again
	}
	if e, ok := res.(error); ok {
		var rej *breach.Rejection
		if errors.As(e, &rej) {
			code := map[string]codes.Code{"not_found": codes.NotFound, "conflict": codes.FailedPrecondition}[rej.Code]
			if code == codes.OK {
				code = codes.InvalidArgument
			}
			return "", 0, &host.CallbackError{Code: code, Message: rej.Message}
		}
		return "", 0, &host.CallbackError{Code: codes.Internal, Message: e.Error()}
	}
	a, ok := res.(*alarm.Alarm)
	if !ok || a == nil || len(a.Transitions) == 0 {
		return "", 0, &host.CallbackError{Code: codes.Internal, Message: fmt.Sprintf("unexpected result %T", res)}
	}
	n.log.Info("alarm callback from a hook", "hook", hook, "ack", ack, "alarm", alarmID, "by", who)
	return string(a.State), a.Transitions[len(a.Transitions)-1].Seq, nil
}

// queueFault hands a fault report to reportFaults, which commits it; it blocks only if the queue is full,
// because a fault report must not be dropped.
func (n *Node) queueFault(ps breach.PluginState) {
	select {
	case n.faults <- ps:
	default:
		n.log.Error("fault report queue full; waiting", "name", ps.Name)
		n.faults <- ps
	}
}

func (n *Node) reportFaults() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case ps := <-n.faults:
			entry, _ := state.PluginState(ps)
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
				_, err := n.Propose(ctx, entry)
				cancel()
				if err == nil || n.ctx.Err() != nil {
					break
				}
				if !sleepCtx(n.ctx, backoff(attempt, 100*time.Millisecond, 5*time.Second)) {
					return
				}
			}
		}
	}
}

// ---- ticks ----

// tick proposes the leader's clock once a second; every timer in the state machine fires on it.
func (n *Node) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if !n.isLeading() {
			continue
		}
		entry, _ := state.Tick(breach.Tick{At: n.Now()})
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
		if _, err := n.Propose(ctx, entry); err != nil && n.ctx.Err() == nil {
			n.log.Warn("tick not committed", "err", err)
		}
		cancel()
	}
}

// ---- effector ----

// commandsCursor names the outbox consumer that sends device commands through drivers.
const commandsCursor = "@commands"

// effect delivers the outbox to one consumer (a hook, or the device commands) while this node leads: in
// order, at least once, each item retried until send confirms it, then a receipt through the log so a new
// leader resumes after it.
func (n *Node) effect(hook string, wake <-chan struct{}, send func(hook string, it state.OutboxItem) bool) {
	const batch = 64
	// done is the last item delivered while this node leads; its receipt is committed in the background
	// (receipts), so the next item does not wait for a round through the log.
	var done uint64
	receipts := n.receipts(hook)
	for n.ctx.Err() == nil {
		if !n.isLeading() {
			done = 0 // the next term starts from the committed cursor
			select { // woken when this node starts leading
			case <-n.ctx.Done():
				return
			case <-wake:
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		items, err := n.machine.OutboxAfter(max(n.machine.Cursor(hook), done), batch)
		if err != nil {
			n.log.Error("outbox read failed", "hook", hook, "err", err)
			sleepCtx(n.ctx, time.Second)
			continue
		}
		if len(items) == 0 {
			select {
			case <-n.ctx.Done():
				return
			case <-wake:
			case <-time.After(time.Second):
			}
			continue
		}
		delivered := uint64(0)
		for _, it := range items {
			if !send(hook, it) {
				break
			}
			delivered = it.Seq
		}
		if delivered == 0 {
			continue
		}
		done = delivered
		receipts(delivered)
	}
}

// receipts starts committing one consumer's delivery receipts and returns the function that hands it
// the latest delivered seq. Receipts coalesce: only the latest one is proposed. One that fails is
// retried while this node leads; if it never commits, a new leader delivers those items again (at least
// once, with the same keys).
func (n *Node) receipts(hook string) func(seq uint64) {
	var mu sync.Mutex
	var latest uint64
	wake := make(chan struct{}, 1)
	n.goRun(func() {
		var committed uint64
		for attempt := 0; ; {
			select {
			case <-n.ctx.Done():
				return
			case <-wake:
			}
			mu.Lock()
			seq := latest
			mu.Unlock()
			if seq <= committed || !n.isLeading() {
				continue
			}
			entry, _ := state.ReceiptEntry(state.Receipt{Hook: hook, Seq: seq})
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			_, err := n.Propose(ctx, entry)
			cancel()
			if err == nil {
				committed, attempt = seq, 0
				continue
			}
			if n.ctx.Err() != nil {
				return
			}
			n.log.Warn("receipt not committed; retrying", "hook", hook, "seq", seq, "err", err)
			if !sleepCtx(n.ctx, backoff(attempt, 50*time.Millisecond, 2*time.Second)) {
				return
			}
			attempt++
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	return func(seq uint64) {
		mu.Lock()
		latest = max(latest, seq)
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// deliver retries one item until the hook confirms it; false when this node stops leading or stops.
// Device commands are not for hooks and pass at once.
func (n *Node) deliver(hook string, it state.OutboxItem, w *deliveryWatch) bool {
	if it.Command != nil {
		return true
	}
	// The zone travels with the transition; look it up once, not on every retry.
	ch := it.Change
	n.machine.View(func(ev *breach.Evaluator) { ch.Area, _ = ev.Area(&ch.Alarm) })
	for attempt := 0; ; attempt++ {
		if n.ctx.Err() != nil || !n.isLeading() {
			return false
		}
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := n.deliverAnywhere(ctx, hook, ch)
		cancel()
		if err == nil {
			if w.reported {
				n.queueFault(breach.PluginState{At: n.Now(), Node: n.cfg.NodeID, Name: hook, Kind: "hook", Up: true, What: "delivery"})
			}
			*w = deliveryWatch{}
			return true
		}
		n.metrics.deliveries.WithLabelValues(hook, "error").Inc()
		if w.since.IsZero() {
			w.since = time.Now()
		}
		if !w.reported && time.Since(w.since) >= n.cfg.HookFaultAfter {
			w.reported = true
			n.queueFault(breach.PluginState{At: n.Now(), Node: n.cfg.NodeID, Name: hook, Kind: "hook", What: "delivery",
				Reason: fmt.Sprintf("no delivery for %s: %v", time.Since(w.since).Truncate(time.Second), err)})
		}
		if attempt == 0 || attempt%20 == 0 {
			n.log.Warn("hook delivery failed; retrying", "hook", hook, "alarm", it.Change.Alarm.ID, "seq", it.Seq, "err", err)
		}
		if !sleepCtx(n.ctx, backoff(attempt, 50*time.Millisecond, 5*time.Second)) {
			return false
		}
	}
}

// deliveryWatch remembers since when a hook has failed to deliver, and whether that was reported.
type deliveryWatch struct {
	since    time.Time
	reported bool
}

// commandAttempts bounds how often a device command is tried: a tag out of coverage must not hold up
// the commands for every other device.
const commandAttempts = 5

// sendCommand hands a device command to the driver that last heard the device. It gives up (counted and
// logged) after a few attempts; the commands that matter are decided again as the situation goes on.
func (n *Node) sendCommand(_ string, it state.OutboxItem) bool {
	c := it.Command
	if c == nil {
		return true
	}
	var driver, node string
	n.machine.View(func(ev *breach.Evaluator) {
		if st, ok := ev.Device(c.Device); ok {
			driver, node = st.Driver, st.Node
		}
	})
	if driver == "" || driver == "api" || (node == n.cfg.NodeID || node == "") && !n.hasDriver(driver) {
		n.metrics.commands.WithLabelValues(c.Kind, "no_driver").Inc()
		return true
	}
	pc := &pluginpb.DeviceCommand{Id: c.ID, Device: c.Device, Kind: c.Kind, Args: c.Args}
	for attempt := 0; attempt < commandAttempts; attempt++ {
		if n.ctx.Err() != nil || !n.isLeading() {
			return false
		}
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := n.commandOn(ctx, node, driver, pc)
		cancel()
		if err == nil {
			n.metrics.commands.WithLabelValues(c.Kind, "sent").Inc()
			return true
		}
		n.log.Warn("device command failed", "command", c.ID, "kind", c.Kind, "device", c.Device, "driver", driver, "attempt", attempt+1, "err", err)
		if !sleepCtx(n.ctx, backoff(attempt, 100*time.Millisecond, 2*time.Second)) {
			return false
		}
	}
	n.metrics.commands.WithLabelValues(c.Kind, "failed").Inc()
	return true
}

func (n *Node) hasDriver(name string) bool {
	for _, s := range n.plugins.Status() {
		if s.Name == name && s.Kind == host.KindDriver {
			return true
		}
	}
	return false
}

func backoff(attempt int, min, max time.Duration) time.Duration {
	d := min
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Stop shuts the node down: plugins first (so no driver writes into a closing log), then the API,
// Raft and the state store.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		n.cancel()
		if n.plugins != nil {
			n.plugins.Stop()
		}
		if n.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			n.httpSrv.Shutdown(ctx)
			cancel()
			n.httpSrv.Close()
		}
		n.wg.Wait()
		if err := n.raft.Shutdown(); err != nil {
			n.log.Warn("raft shutdown", "err", err)
		}
		if err := n.machine.Close(); err != nil {
			n.log.Warn("state close", "err", err)
		}
		n.log.Info("node stopped", "node", n.cfg.NodeID)
	})
}

// Status lists plugin states sorted by kind and name.
func (n *Node) Status() []host.Status {
	st := n.plugins.Status()
	sort.Slice(st, func(i, j int) bool {
		if st[i].Kind != st[j].Kind {
			return st[i].Kind < st[j].Kind
		}
		return st[i].Name < st[j].Name
	})
	return st
}

// machineAdapter lets the cluster drive the state machine without core knowing of Raft.
type machineAdapter struct{ m *state.Machine }

func (a machineAdapter) ApplyEntries(entries []cluster.Entry) []any {
	in := make([]state.Entry, len(entries))
	for i, e := range entries {
		in[i] = state.Entry{Index: e.Index, Data: e.Data}
	}
	return a.m.Apply(in)
}

func (a machineAdapter) AppliedIndex() uint64 { return a.m.AppliedIndex() }

func (a machineAdapter) Snapshot() (cluster.StateSnapshot, error) { return a.m.Snapshot() }

func (a machineAdapter) Restore(r io.Reader) error { return a.m.Restore(r) }

// hclogFor adapts slog for the libraries that log through hclog.
// Raft logs every election at info; the node reports leadership itself, so only warnings pass.
func hclogFor(log *slog.Logger, name string) hclog.Logger {
	return hclog.FromStandardLogger(slog.NewLogLogger(log.Handler(), slog.LevelWarn), &hclog.LoggerOptions{Name: name, Level: hclog.Warn})
}
