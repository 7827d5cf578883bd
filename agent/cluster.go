package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/skjold-alarm/skjold/cluster"
	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/api"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/core/order"
	"github.com/skjold-alarm/skjold/core/state"
	"github.com/skjold-alarm/skjold/plugins/host"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// The methods one node calls on another over the cluster port, besides the cluster's own.
const (
	rpcDeliver = "skjold.deliver" // deliver an alarm transition through a hook running on the callee
	rpcCommand = "skjold.command" // send a device command through a driver running on the callee
	rpcPlugins = "skjold.plugins" // list the callee's plugins
)

// ---- results across the wire ----

// resultCodec carries a state machine result from the leader to the node that forwarded the proposal.
type resultCodec struct{}

type wireResult struct {
	Type  string          `json:"t"`
	Value json.RawMessage `json:"v,omitempty"`
}

func (resultCodec) Encode(v any) ([]byte, error) {
	var w wireResult
	switch r := v.(type) {
	case nil:
		w.Type = "nil"
	case state.ObservationsResult:
		w.Type = "observations"
	case *order.Order:
		w.Type = "order"
	case *alarm.Alarm:
		w.Type = "alarm"
	case *breach.Rejection:
		w.Type = "rejection"
	case error:
		w.Type, v = "error", r.Error()
	default:
		return nil, fmt.Errorf("result of type %T cannot cross the cluster", v)
	}
	if v != nil {
		js, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		w.Value = js
	}
	return json.Marshal(w)
}

func (resultCodec) Decode(b []byte) (any, error) {
	var w wireResult
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("result from the leader: %w", err)
	}
	var err error
	switch w.Type {
	case "nil":
		return nil, nil
	case "observations":
		var r state.ObservationsResult
		err = json.Unmarshal(w.Value, &r)
		return r, err
	case "order":
		var r order.Order
		err = json.Unmarshal(w.Value, &r)
		return &r, err
	case "alarm":
		var r alarm.Alarm
		err = json.Unmarshal(w.Value, &r)
		return &r, err
	case "rejection":
		var r breach.Rejection
		err = json.Unmarshal(w.Value, &r)
		return &r, err
	case "error":
		var msg string
		if err = json.Unmarshal(w.Value, &msg); err != nil {
			return nil, err
		}
		return errors.New(msg), nil
	}
	return nil, fmt.Errorf("result from the leader has unknown type %q", w.Type)
}

// ---- calls from other nodes ----

type deliverRequest struct {
	Hook   string       `json:"hook"`
	Change alarm.Change `json:"change"`
	Area   *alarm.Area  `json:"area,omitempty"` // Change.Area is not part of its JSON
}

type deliverResponse struct {
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"`
}

type commandRequest struct {
	Driver  string                  `json:"driver"`
	Command *pluginpb.DeviceCommand `json:"command"`
}

type pluginInfo struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Up   bool   `json:"up"`
}

// serveRPC answers the calls other nodes make on this one.
func (n *Node) serveRPC(ctx context.Context, method string, body []byte) ([]byte, error) {
	switch method {
	case rpcDeliver:
		var req deliverRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		req.Change.Area = req.Area
		rc, err := n.deliverLocal(ctx, req.Hook, req.Change)
		if err != nil {
			return nil, err
		}
		return json.Marshal(deliverResponse{Delivered: rc.GetDelivered(), Error: rc.GetError()})
	case rpcCommand:
		var req commandRequest
		if err := json.Unmarshal(body, &req); err != nil || req.Command == nil {
			return nil, fmt.Errorf("%s: malformed request: %v", method, err)
		}
		return nil, n.plugins.Command(ctx, req.Driver, req.Command)
	case rpcPlugins:
		var out []pluginInfo
		for _, s := range n.plugins.Status() {
			out = append(out, pluginInfo{Name: s.Name, Kind: string(s.Kind), Up: s.Up})
		}
		return json.Marshal(out)
	}
	return nil, fmt.Errorf("unknown method %q", method)
}

// ---- where the hooks run ----

// placement is the leader's view of which nodes run which hooks, refreshed by asking every member.
type placement struct {
	mu    sync.Mutex
	hooks map[string][]hookSite // hook → nodes running it, this node first, then up before down, then by id
}

type hookSite struct {
	node, addr string
	up         bool
}

func (p *placement) sites(hook string) []hookSite {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.hooks[hook])
}

// refreshPlacement asks every member for its plugins and starts an effector for each hook found.
func (n *Node) refreshPlacement(ctx context.Context) {
	members, err := n.raft.Members()
	if err != nil {
		return
	}
	// Ask every member at once: one that is down costs one timeout, not one each.
	answers := make([][]pluginInfo, len(members))
	failed := make([]bool, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		if m.ID == n.cfg.NodeID {
			for _, s := range n.plugins.Status() {
				answers[i] = append(answers[i], pluginInfo{Name: s.Name, Kind: string(s.Kind), Up: s.Up})
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			b, err := n.raft.Call(cctx, m.Addr, rpcPlugins, nil)
			failed[i] = err != nil || json.Unmarshal(b, &answers[i]) != nil
		}()
	}
	wg.Wait()
	found := map[string][]hookSite{}
	for i, m := range members {
		infos := answers[i]
		if m.ID != n.cfg.NodeID {
			if failed[i] {
				n.placement.mu.Lock()
				for h, sites := range n.placement.hooks { // keep what we knew of an unreachable node
					for _, s := range sites {
						if s.node == m.ID {
							found[h] = append(found[h], hookSite{node: s.node, addr: m.Addr})
						}
					}
				}
				n.placement.mu.Unlock()
				continue
			}
		}
		for _, in := range infos {
			if in.Kind == string(host.KindHook) {
				found[in.Name] = append(found[in.Name], hookSite{node: m.ID, addr: m.Addr, up: in.Up})
			}
		}
	}
	for h, sites := range found {
		sort.SliceStable(sites, func(i, j int) bool {
			a, b := sites[i], sites[j]
			if (a.node == n.cfg.NodeID) != (b.node == n.cfg.NodeID) {
				return a.node == n.cfg.NodeID
			}
			if a.up != b.up {
				return a.up
			}
			return a.node < b.node
		})
		found[h] = sites
	}
	n.placement.mu.Lock()
	n.placement.hooks = found
	n.placement.mu.Unlock()
	for h := range found {
		n.ensureEffector(h)
	}
}

// deliverAnywhere hands a transition to the first node running the hook that takes it.
func (n *Node) deliverAnywhere(ctx context.Context, hook string, ch alarm.Change) error {
	sites := n.placement.sites(hook)
	if len(sites) == 0 {
		return fmt.Errorf("no node runs hook %s", hook)
	}
	var errs []error
	for _, s := range sites {
		var err error
		if s.node == n.cfg.NodeID {
			var rc *pluginpb.Receipt
			rc, err = n.deliverLocal(ctx, hook, ch)
			if err == nil && !rc.GetDelivered() {
				err = errors.New(rc.GetError())
			}
		} else {
			err = n.deliverRemote(ctx, s.addr, hook, ch)
		}
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("on %s: %w", s.node, err))
	}
	return errors.Join(errs...)
}

func (n *Node) deliverRemote(ctx context.Context, addr, hook string, ch alarm.Change) error {
	body, err := json.Marshal(deliverRequest{Hook: hook, Change: ch, Area: ch.Area})
	if err != nil {
		return err
	}
	b, err := n.raft.Call(ctx, addr, rpcDeliver, body)
	if err != nil {
		return err
	}
	var resp deliverResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		return err
	}
	if !resp.Delivered {
		return errors.New(resp.Error)
	}
	return nil
}

// commandOn sends a device command through the driver on the node that last heard the device.
func (n *Node) commandOn(ctx context.Context, node, driver string, pc *pluginpb.DeviceCommand) error {
	if node == "" || node == n.cfg.NodeID {
		return n.plugins.Command(ctx, driver, pc)
	}
	addr, ok := n.raft.AddrOf(node)
	if !ok {
		return fmt.Errorf("node %s is not a member of the cluster", node)
	}
	body, err := json.Marshal(commandRequest{Driver: driver, Command: pc})
	if err != nil {
		return err
	}
	_, err = n.raft.Call(ctx, addr, rpcCommand, body)
	return err
}

// ---- leadership ----

// lead follows this node's leadership. On gaining it, a barrier makes sure everything the previous leader
// committed (its receipts above all) is applied here before the effector and ticks start, so delivery
// resumes where it stopped.
func (n *Node) lead() {
	ch := n.raft.LeaderCh()
	for {
		var leader bool
		select {
		case <-n.ctx.Done():
			return
		case v, ok := <-ch:
			if !ok {
				return
			}
			leader = v
		}
		if !leader {
			n.leading.Store(false)
			continue
		}
		for attempt := 0; n.raft.IsLeader(); attempt++ {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			err := n.raft.Barrier(ctx)
			cancel()
			if err == nil {
				// Deliver at once through this node's own hooks; those only other nodes run are found
				// beside it, so an unreachable member does not hold up the first alarm.
				n.leading.Store(n.raft.IsLeader())
				n.log.Info("leading", "node", n.cfg.NodeID, "applied", n.machine.AppliedIndex())
				n.wakeAll()
				n.goRun(func() { n.refreshPlacement(n.ctx) })
				break
			}
			if !sleepCtx(n.ctx, backoff(attempt, 50*time.Millisecond, time.Second)) {
				return
			}
		}
	}
}

// isLeading reports whether this node leads and has caught up with its predecessor.
func (n *Node) isLeading() bool { return n.leading.Load() && n.raft.IsLeader() }

// watchPlacement keeps the leader's view of the hooks fresh: plugins restart, nodes come and go.
func (n *Node) watchPlacement() {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.isLeading() {
			n.refreshPlacement(n.ctx)
		}
	}
}

// ---- quorum ----

// watchQuorum sounds the local siren directly when this node has been cut off from a leader for
// QuorumLossAfter: the log cannot carry the alarm then, so the node does it itself; and it silences
// that alarm (back to what the replicated state says) when the cluster is whole again.
func (n *Node) watchQuorum() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	sounding := false
	seq := uint32(0)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		since, lost := n.raft.QuorumLost()
		lost = lost && time.Since(since) >= n.cfg.QuorumLossAfter
		if lost {
			n.quorumLostSince.Store(since.UnixNano())
		} else {
			n.quorumLostSince.Store(0)
		}
		if lost == sounding {
			continue
		}
		sounding = lost
		seq++
		ch := n.quorumChange(lost, since, seq)
		if lost {
			n.log.Error("no quorum: sounding the local siren", "since", since, "hooks", n.cfg.QuorumHooks)
		} else {
			n.log.Info("quorum back: the local siren follows the cluster again")
		}
		for _, h := range n.cfg.QuorumHooks {
			if !slices.Contains(n.plugins.Hooks(), h) {
				continue
			}
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			rc, err := n.plugins.Deliver(ctx, h, ch)
			cancel()
			if err == nil && !rc.GetDelivered() {
				err = errors.New(rc.GetError())
			}
			if err != nil {
				n.log.Error("quorum alarm not delivered to the local hook", "hook", h, "err", err)
				sounding = !lost // try again on the next round
			}
		}
	}
}

// quorumChange is the transition a node raises on its own hooks when quorum is lost, and the restore that
// puts the siren back to the replicated state's count when it returns.
func (n *Node) quorumChange(lost bool, since time.Time, seq uint32) alarm.Change {
	var siren, police, esc int
	n.machine.View(func(ev *breach.Evaluator) {
		for _, a := range ev.Alarms(true, "") {
			if a.State != alarm.Raised {
				continue
			}
			if a.Class == alarm.Police {
				police++
				esc = max(esc, a.Escalation)
			}
			if a.Class == alarm.Police || a.Kind == alarm.MonitoringFault {
				siren++
			}
		}
	})
	now := n.Now()
	a := alarm.Alarm{
		ID: "quorum-" + n.cfg.NodeID, Kind: alarm.MonitoringFault, Class: alarm.Technical, Severity: alarm.Critical,
		State: alarm.Raised, Subject: "quorum:" + n.cfg.NodeID, RaisedAt: since.UTC(),
		Message: fmt.Sprintf("node %s has had no quorum since %s: alarms cannot be committed", n.cfg.NodeID, since.UTC().Format(time.RFC3339)),
	}
	t := alarm.Transition{Seq: seq, State: alarm.Raised, Event: alarm.EventRaised, At: now, By: "node:" + n.cfg.NodeID}
	if lost {
		siren++
	} else {
		a.State, t.State, t.Event = alarm.Resolved, alarm.Resolved, alarm.EventRestored
		a.Message = fmt.Sprintf("node %s has quorum again", n.cfg.NodeID)
	}
	return alarm.Change{Alarm: a, Transition: t, ActivePolice: police, PoliceEscalation: esc, SirenAlarms: siren}
}

// ---- the cluster endpoints (api.ClusterBackend, api.ReadBarrier) ----

// Members lists the cluster's servers.
func (n *Node) Members() ([]api.Member, error) {
	ms, err := n.raft.Members()
	if err != nil {
		return nil, err
	}
	out := make([]api.Member, len(ms))
	for i, m := range ms {
		out[i] = api.Member{ID: m.ID, Addr: m.Addr, Voter: m.Voter, Leader: m.Leader}
	}
	return out, nil
}

// Join adds a server to the cluster.
func (n *Node) Join(ctx context.Context, id, addr string) error {
	return clusterErr(n.raft.Join(ctx, id, addr))
}

// Remove takes a server out of the cluster.
func (n *Node) Remove(ctx context.Context, id string) error {
	return clusterErr(n.raft.Remove(ctx, id))
}

// TransferLeadership hands leadership to another server.
func (n *Node) TransferLeadership(ctx context.Context, to string) error {
	return clusterErr(n.raft.TransferLeadership(ctx, to))
}

// ReadBarrier waits until this node holds every write acknowledged before the call.
func (n *Node) ReadBarrier(ctx context.Context) error { return n.raft.ReadBarrier(ctx) }

// clusterErr marks the errors that are the caller's (an unknown member, an id taken at another address)
// so the API answers them 400, not 503.
func clusterErr(err error) error {
	if errors.Is(err, cluster.ErrUnknownMember) || errors.Is(err, cluster.ErrMemberConflict) {
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	return err
}

// BackupScratchDir is where GET /v1/backup makes its temporary checkpoint (api.BackupScratch): next to the
// state, so the checkpoint is hard links rather than a copy.
func (n *Node) BackupScratchDir() string { return filepath.Join(n.cfg.DataDir, "tmp") }
