// Package cluster replicates opaque entries with Raft. The Raft log and
// stable store live in Pebble (LogStore), snapshots in raft's file snapshot
// store, and committed entries are handed to a StateMachine that keeps its
// own durable state and applied index. See DESIGN.md.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
)

// Defaults for the zero values of Config.
const (
	DefaultSnapshotInterval  = 30 * time.Second
	DefaultSnapshotThreshold = 2048
	DefaultTrailingLogs      = 1024
	DefaultLogRetention      = 5 * time.Minute
)

// snapshotRetain is how many snapshots the file snapshot store keeps.
const snapshotRetain = 2

// Config configures a Node.
type Config struct {
	NodeID    string // raft server ID
	Dir       string // directory for this package's files: Dir/FORMAT, Dir/log (Pebble), Dir/snapshots
	BindAddr  string // TCP address of the cluster port (raft and cluster RPC), e.g. "127.0.0.1:8471"
	Advertise string // optional; defaults to the bound address
	Bootstrap bool   // bootstrap a single-voter cluster if there is no existing state
	Logger    hclog.Logger

	// TLS secures the cluster port with mutual TLS; make it with
	// cluster/pki.Load. It must require and verify client certificates.
	// When nil the port is plain TCP, which Open allows only on a loopback
	// BindAddr (a single node, tests).
	TLS *tls.Config

	// Join lists cluster port addresses of existing members. A node that
	// starts with no raft state and without Bootstrap asks them in turn to
	// add it as a voter, in the background and with backoff, until one
	// accepts or the node shuts down. Ignored once the node has state,
	// unless its configuration has it as a non-voter (a join interrupted
	// before the promotion). Exclusive with Bootstrap.
	Join []string

	// Handler serves the cluster RPC methods other nodes call with
	// Node.Call, except the cluster's own (ReservedMethodPrefix). Nil: such
	// calls fail with ErrUnknownMethod.
	Handler Handler

	// Results carries state machine results of proposals forwarded to the
	// leader back to the proposer (Propose). Nil: DefaultResults.
	Results ResultCodec

	// Snapshot cadence (raft's own): a snapshot is considered every
	// SnapshotInterval and taken when SnapshotThreshold entries have
	// accumulated; TrailingLogs entries are kept after it for slow followers.
	// Defaults: 30s, 2048, 1024.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64

	// LogRetention bounds how long an entry stays in the log on disk,
	// whatever the write rate: older entries are snapshotted and deleted
	// (overriding TrailingLogs) and purged from Pebble's files. Default 5m;
	// negative disables it.
	LogRetention time.Duration

	// Tuning for tests; zero means raft's default.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
}

var (
	// ErrNotLeader is returned (wrapped in a *NotLeaderError) when an
	// operation that needs the leader runs on another node.
	ErrNotLeader = errors.New("cluster: not the leader")
	// ErrLeadershipLost means leadership was lost after the entry was
	// proposed: it may or may not be committed.
	ErrLeadershipLost = errors.New("cluster: leadership lost while committing; outcome unknown")
	// ErrShutdown is returned by operations on a node that has shut down.
	ErrShutdown = errors.New("cluster: node is shut down")
)

// NotLeaderError is the error returned on a follower; it names the leader
// as known at the time (empty when there is none). errors.Is(err,
// ErrNotLeader) holds for it.
type NotLeaderError struct {
	LeaderID, LeaderAddr string
	transferring         bool
}

func (e *NotLeaderError) Error() string {
	if e.transferring {
		return ErrNotLeader.Error() + " (leadership transfer in progress)"
	}
	if e.LeaderID == "" {
		return ErrNotLeader.Error() + " (no known leader)"
	}
	return fmt.Sprintf("%s (leader is %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAddr)
}

func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Node is one Raft server.
type Node struct {
	cfg    Config
	logger hclog.Logger
	raft   *raft.Raft
	sm     StateMachine
	logs   *LogStore
	snaps  *raft.FileSnapshotStore
	net    *network
	trans  *raft.NetworkTransport
	rpc    *grpc.Server
	rpcWG  sync.WaitGroup

	connMu sync.Mutex
	conns  map[string]*grpc.ClientConn // outgoing cluster RPC, by address; nil after Shutdown

	appliedMu sync.Mutex
	appliedCh chan struct{} // closed and replaced when the state machine applied something

	barrierTerm atomic.Uint64 // term in which this node, as leader, last completed a barrier for reads

	heartbeatTimeout, electionTimeout time.Duration
	openedAt                          time.Time

	notifyCh chan bool
	obsCh    chan raft.Observation
	observer *raft.Observer

	mu            sync.Mutex
	leader        bool          // last value from notifyCh; guarded by mu
	subs          []chan bool   // LeaderCh subscribers; guarded by mu
	leaderChanged chan struct{} // closed and replaced on every leader change; guarded by mu
	closed        bool          // guarded by mu
	stoppedAt     time.Time     // when Shutdown began; guarded by mu

	// ctx is cancelled when Shutdown begins: background work and retries stop.
	ctx    context.Context
	cancel context.CancelFunc

	stop      chan struct{} // closed by Shutdown
	wg        sync.WaitGroup
	retention *retention

	shutdownOnce sync.Once
	shutdownErr  error
	isShutdown   atomic.Bool
}

func (c *Config) setDefaults() {
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.LogRetention == 0 {
		c.LogRetention = DefaultLogRetention
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "cluster", Level: hclog.Info})
	}
}

// Open opens (or creates) the log, stable store and snapshots in cfg.Dir and
// starts raft with sm as its FSM. Raft does not restore a snapshot on start:
// sm keeps its own durable state and raft replays only entries after the
// latest snapshot, which sm skips up to its applied index. Only if sm is
// behind the latest snapshot is it restored from that snapshot.
func Open(cfg Config, sm StateMachine) (_ *Node, err error) {
	if sm == nil {
		return nil, errors.New("cluster: nil state machine")
	}
	if cfg.NodeID == "" || cfg.Dir == "" || cfg.BindAddr == "" {
		return nil, errors.New("cluster: Config.NodeID, Dir and BindAddr are required")
	}
	if cfg.Bootstrap && len(cfg.Join) > 0 {
		return nil, errors.New("cluster: Config.Bootstrap and Config.Join are exclusive: a node either starts a new cluster or joins an existing one")
	}
	cfg.setDefaults()
	logger := cfg.Logger

	if err := prepareDir(cfg.Dir); err != nil {
		return nil, err
	}
	logDir := filepath.Join(cfg.Dir, "log")
	snapDir := filepath.Join(cfg.Dir, "snapshots")
	if _, err := os.Stat(logDir); errors.Is(err, os.ErrNotExist) {
		// A lost log directory also loses the term and vote; starting from
		// the snapshots alone could vote twice in a term.
		if ents, _ := os.ReadDir(snapDir); len(ents) > 0 {
			return nil, fmt.Errorf("cluster: %s: %w: snapshots exist in %s but the raft log directory is missing", cfg.Dir, ErrFormat, snapDir)
		}
	}

	n := &Node{
		cfg:           cfg,
		logger:        logger,
		sm:            sm,
		conns:         map[string]*grpc.ClientConn{},
		appliedCh:     make(chan struct{}),
		notifyCh:      make(chan bool, 16),
		obsCh:         make(chan raft.Observation, 16),
		leaderChanged: make(chan struct{}),
		stop:          make(chan struct{}),
		openedAt:      time.Now(),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.cancel()
			if n.trans != nil {
				_ = n.trans.Close()
			}
			if n.net != nil {
				_ = n.net.close()
			}
			if n.logs != nil {
				_ = n.logs.Close()
			}
		}
	}()

	if n.logs, err = openLogStore(logDir, logger.Named("pebble")); err != nil {
		return nil, err
	}
	if err = n.logs.Verify(); err != nil {
		return nil, err
	}
	if err = removeUnfinishedSnapshots(snapDir); err != nil {
		return nil, err
	}
	// The store puts its files in Dir/snapshots.
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.Dir, snapshotRetain, logger.Named("snapshots")); err != nil {
		return nil, fmt.Errorf("cluster: snapshot store %s: %w", snapDir, err)
	}
	if err = reconcile(sm, n.logs, n.snaps, snapDir, logger); err != nil {
		return nil, err
	}
	if n.net, err = newNetwork(cfg, logger.Named("transport")); err != nil {
		return nil, err
	}
	n.trans = n.net.newRaftTransport(logger.Named("transport"))

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = logger.Named("raft")
	rc.NotifyCh = n.notifyCh
	rc.NoSnapshotRestoreOnStart = true
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.LeaderLeaseTimeout > 0 {
		rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	}
	// Keep raft's constraints when only some timeouts are tuned.
	if cfg.LeaderLeaseTimeout == 0 && rc.LeaderLeaseTimeout > rc.HeartbeatTimeout {
		rc.LeaderLeaseTimeout = rc.HeartbeatTimeout
	}
	if cfg.ElectionTimeout == 0 && rc.ElectionTimeout < rc.HeartbeatTimeout {
		rc.ElectionTimeout = rc.HeartbeatTimeout
	}
	if err = raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("cluster: raft config: %w", err)
	}
	n.heartbeatTimeout, n.electionTimeout = rc.HeartbeatTimeout, rc.ElectionTimeout

	hasState, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", cfg.Dir, err)
	}
	if cfg.Bootstrap && !hasState {
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter,
			ID:       rc.LocalID,
			Address:  n.trans.LocalAddr(),
		}}}
		if err = raft.BootstrapCluster(rc, n.logs, n.logs, n.snaps, n.trans, conf); err != nil {
			return nil, fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}

	fsm := &fsmAdapter{sm: sm, logger: logger.Named("fsm"), onApplied: n.notifyApplied}
	if n.raft, err = raft.NewRaft(rc, fsm, n.logs, n.logs, n.snaps, n.trans); err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}

	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)
	n.wg.Add(2)
	go n.fanOutLeadership()
	go n.watchLeader()
	if cfg.LogRetention > 0 {
		n.retention = newRetention(n, cfg.LogRetention)
		go n.retention.run()
	}
	n.rpc = n.newRPCServer()
	n.rpcWG.Add(1)
	go func() {
		defer n.rpcWG.Done()
		if err := n.rpc.Serve(n.net.rpcLn); err != nil && !n.isShutdown.Load() {
			logger.Error("cluster RPC server stopped", "error", err)
		}
	}()
	// Join when starting empty, or when a join was interrupted after this
	// node was added as a non-voter (the cluster makes no other non-voters).
	if len(cfg.Join) > 0 && !cfg.Bootstrap && (!hasState || n.isNonvoter()) {
		n.wg.Add(1)
		go n.joinLoop(slices.Clone(cfg.Join))
	}
	return n, nil
}

// removeUnfinishedSnapshots deletes snapshot directories that an
// interrupted snapshot left behind (raft names them "<id>.tmp"): they hold
// state that is otherwise never cleaned up. Nothing writes snapshots yet.
func removeUnfinishedSnapshots(snapDir string) error {
	ents, err := os.ReadDir(snapDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: read %s: %w", snapDir, err)
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasSuffix(e.Name(), ".tmp") {
			if err := os.RemoveAll(filepath.Join(snapDir, e.Name())); err != nil {
				return fmt.Errorf("cluster: remove unfinished snapshot: %w", err)
			}
		}
	}
	return nil
}

// reconcile checks that the state machine, the log and the snapshots belong
// together, and restores the state machine from the latest snapshot if (and
// only if) it is behind it.
func reconcile(sm StateMachine, logs *LogStore, snaps *raft.FileSnapshotStore, snapDir string, logger hclog.Logger) error {
	first, err := logs.FirstIndex()
	if err != nil {
		return err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return err
	}
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("cluster: snapshot store %s: %w", snapDir, err)
	}
	var latest *raft.SnapshotMeta
	var snapIdx uint64
	if len(metas) > 0 {
		latest = metas[0]
		snapIdx = latest.Index
	}
	if first > 1 && snapIdx+1 < first {
		return fmt.Errorf("cluster: %s: %w: raft log starts at entry %d but no snapshot covers the entries before it (newest snapshot index %d)",
			logs.Path(), ErrCorrupt, first, snapIdx)
	}
	applied := sm.AppliedIndex()
	if applied > max(last, snapIdx) {
		return fmt.Errorf("cluster: %w: state machine has applied index %d but the raft state in %s ends at %d (log) / %d (snapshot): they do not belong together",
			ErrCorrupt, applied, filepath.Dir(logs.Path()), last, snapIdx)
	}
	if latest == nil || applied >= snapIdx {
		return nil
	}

	_, rc, err := snaps.Open(latest.ID)
	if err != nil {
		return fmt.Errorf("cluster: open snapshot %s in %s: %w", latest.ID, snapDir, err)
	}
	defer rc.Close()
	want, err := readSnapshotHeader(rc)
	if err != nil {
		return fmt.Errorf("cluster: snapshot %s in %s: %w", latest.ID, snapDir, err)
	}
	if applied >= want {
		// Only non-command entries (configuration, no-op) lie between the
		// state machine's index and the snapshot's.
		return nil
	}
	logger.Warn("state machine is behind the latest snapshot; restoring it",
		"applied_index", applied, "snapshot", latest.ID, "snapshot_applied_index", want)
	if err := sm.Restore(rc); err != nil {
		return fmt.Errorf("cluster: restore state machine from snapshot %s in %s: %w", latest.ID, snapDir, err)
	}
	if got := sm.AppliedIndex(); got != want {
		return fmt.Errorf("cluster: state machine reports applied index %d after restoring snapshot %s taken at applied index %d", got, latest.ID, want)
	}
	return nil
}

// fanOutLeadership consumes raft's NotifyCh (raft blocks on it) and passes
// the latest value to every LeaderCh subscriber.
func (n *Node) fanOutLeadership() {
	defer n.wg.Done()
	for {
		select {
		case v := <-n.notifyCh:
			n.mu.Lock()
			n.leader = v
			for _, ch := range n.subs {
				sendLatest(ch, v)
			}
			n.mu.Unlock()
		case <-n.stop:
			return
		}
	}
}

// sendLatest puts v into the 1-buffered ch, replacing an unread older value.
// Only called with n.mu held, so there is a single sender.
func sendLatest(ch chan bool, v bool) {
	select {
	case ch <- v:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	ch <- v
}

// watchLeader wakes WaitLeader callers on every leader change.
func (n *Node) watchLeader() {
	defer n.wg.Done()
	for {
		select {
		case <-n.obsCh:
			n.mu.Lock()
			close(n.leaderChanged)
			n.leaderChanged = make(chan struct{})
			n.mu.Unlock()
		case <-n.stop:
			return
		}
	}
}

// Addr returns the address other servers reach this node at.
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// ID returns the node's raft server ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// Apply proposes data and waits until it is committed and applied locally;
// it returns the state machine's result for the entry (which may itself be
// an error value: that is the state machine's verdict, not a replication
// failure). On a follower it returns a *NotLeaderError (the entry was not
// proposed); see Propose to apply from any node. An error wrapping
// ErrLeadershipLost means the outcome is unknown (leadership was lost, or
// the node shut down, while committing). ctx bounds the wait; when it
// expires the entry may still be committed later.
func (n *Node) Apply(ctx context.Context, data []byte) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n.isShutdown.Load() {
		return nil, ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return nil, n.mapErr(raft.ErrNotLeader)
	}
	f := n.raft.Apply(data, enqueueTimeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		if errors.Is(err, ErrShutdown) {
			// The entry may have been appended before raft stopped.
			return nil, fmt.Errorf("%w: %w", ErrLeadershipLost, err)
		}
		return nil, err
	}
	return f.Response(), nil
}

// Barrier waits until every entry committed before it is applied locally.
// Only the leader can issue it.
func (n *Node) Barrier(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n.isShutdown.Load() {
		return ErrShutdown
	}
	return n.wait(ctx, n.raft.Barrier(enqueueTimeout(ctx)))
}

func enqueueTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return time.Nanosecond
	}
	return 0
}

func (n *Node) wait(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return n.mapErr(f.Error())
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return n.mapErr(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		addr, id := n.raft.LeaderWithID()
		return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Raft refuses new work during a transfer, before proposing it.
		return &NotLeaderError{transferring: true}
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %v", ErrLeadershipLost, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	}
	return fmt.Errorf("cluster: %w", err)
}

// IsLeader reports whether this node is the leader right now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderCh returns a new channel that receives this node's leadership
// (true on gaining it, false on losing it). It is primed with the current
// value, holds one value and keeps only the latest if the reader falls
// behind, and is closed by Shutdown. Every call gets its own channel.
func (n *Node) LeaderCh() <-chan bool {
	ch := make(chan bool, 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		close(ch)
		return ch
	}
	ch <- n.leader
	n.subs = append(n.subs, ch)
	return ch
}

// Leader returns the current leader's ID and address, empty if unknown.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// WaitLeader waits until the cluster has a leader (as seen by this node).
func (n *Node) WaitLeader(ctx context.Context) error {
	// A slow re-check covers an observation dropped by raft while the
	// observer channel was full.
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		n.mu.Lock()
		changed := n.leaderChanged
		n.mu.Unlock()
		if id, _ := n.Leader(); id != "" {
			return nil
		}
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stop:
			return ErrShutdown
		}
	}
}

// State returns raft's state: "Follower", "Candidate", "Leader" or "Shutdown".
func (n *Node) State() string { return n.raft.State().String() }

// Stats returns raft's statistics plus a few of this package's.
func (n *Node) Stats() map[string]string {
	s := n.raft.Stats()
	s["node_id"] = n.cfg.NodeID
	s["addr"] = n.Addr()
	if first, err := n.logs.FirstIndex(); err == nil {
		s["log_first_index"] = strconv.FormatUint(first, 10)
	}
	s["log_retention"] = n.cfg.LogRetention.String()
	return s
}

// Snapshot takes a snapshot now and truncates the log as raft's settings
// allow. Nothing new to snapshot since the last one is not an error.
func (n *Node) Snapshot() error {
	err := n.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return n.mapErr(err)
}

// AddVoter adds (or updates) a voting server; only the leader can do it. It
// returns once the new configuration is committed.
func (n *Node) AddVoter(id, addr string) error {
	return n.mapErr(n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0).Error())
}

// RemoveServer removes a server from the configuration; only the leader can
// do it. It returns once the new configuration is committed.
func (n *Node) RemoveServer(id string) error {
	return n.mapErr(n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error())
}

// Shutdown stops the node: it stops accepting work and background joining,
// hands leadership to another voter if it leads (bounded by a few election
// timeouts), stops the cluster RPC (cancelling the handlers it is running
// and waiting for them), closes outgoing connections, stops raft, closes the
// cluster port and the log store. It is safe to call more than once; later
// calls return the first call's result.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.mu.Lock()
		n.stoppedAt = time.Now()
		n.mu.Unlock()
		n.isShutdown.Store(true)
		n.cancel()
		var errs []error
		n.handOffLeadership()
		if n.retention != nil {
			n.retention.stop()
		}
		n.rpc.Stop()
		n.rpcWG.Wait()
		n.closeClients()
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: raft shutdown: %w", err))
		}
		n.raft.DeregisterObserver(n.observer)
		close(n.stop)
		n.wg.Wait()
		n.mu.Lock()
		n.closed = true
		for _, ch := range n.subs {
			close(ch)
		}
		n.subs = nil
		n.mu.Unlock()
		if err := n.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: close transport: %w", err))
		}
		if err := n.net.close(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: close %s: %w", n.cfg.BindAddr, err))
		}
		if err := n.logs.Close(); err != nil {
			errs = append(errs, err)
		}
		n.shutdownErr = errors.Join(errs...)
	})
	return n.shutdownErr
}
