package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Member is one server of the cluster configuration.
type Member struct {
	ID     string
	Addr   string
	Voter  bool
	Leader bool // the leader as this node knows it
}

// Join retries: the first attempt's pause, the longest pause, and how long
// one attempt (which includes the new node catching up) may take.
const (
	joinMinDelay       = 100 * time.Millisecond
	joinMaxDelay       = 10 * time.Second
	joinAttemptTimeout = 2 * time.Minute
)

func (n *Node) configuration() ([]raft.Server, error) {
	if n.isShutdown.Load() {
		return nil, ErrShutdown
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, n.mapErr(err)
	}
	return f.Configuration().Servers, nil
}

// Members returns the servers of the latest raft configuration (possibly
// not yet committed) as this node knows it, sorted by ID.
func (n *Node) Members() ([]Member, error) {
	servers, err := n.configuration()
	if err != nil {
		return nil, err
	}
	leader, _ := n.Leader()
	out := make([]Member, 0, len(servers))
	for _, s := range servers {
		out = append(out, Member{
			ID:     string(s.ID),
			Addr:   string(s.Address),
			Voter:  s.Suffrage == raft.Voter,
			Leader: leader != "" && string(s.ID) == leader,
		})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// AddrOf returns the raft (and cluster RPC) address of server id in the
// current configuration.
func (n *Node) AddrOf(id string) (string, bool) {
	servers, err := n.configuration()
	if err != nil {
		return "", false
	}
	for _, s := range servers {
		if string(s.ID) == id {
			return string(s.Address), true
		}
	}
	return "", false
}

type joinRequest struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// Join adds server id at addr to the cluster as a voter, on the leader
// wherever it is. The server must be running (started without Bootstrap):
// the leader first checks that the node answering at addr is id, adds it as
// a non-voter, waits until it has caught up with the log as it was when it
// was added, then promotes it to voter; so a new node does not weigh on the
// quorum before it can vote usefully.
//
// Join is idempotent: nil if id is already a voter at addr; a non-voter id
// at addr is caught up and promoted. It fails with ErrMemberConflict
// (wrapped) if id is a member at another address or addr belongs to another
// member or another node answers at addr. If ctx ends while the new server
// catches up, it stays a non-voter; calling Join again continues.
func (n *Node) Join(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return errors.New("cluster: join needs the new server's id and address")
	}
	body, err := json.Marshal(joinRequest{ID: id, Addr: addr})
	if err != nil {
		return err
	}
	_, err = n.onLeader(ctx, methodJoin, body, true, func(ctx context.Context) ([]byte, error) {
		return nil, n.joinLocal(ctx, id, addr)
	})
	return err
}

func (n *Node) serveJoin(ctx context.Context, body []byte) error {
	var req joinRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("cluster: join request: %w", err)
	}
	return n.Join(ctx, req.ID, req.Addr)
}

// joinLocal runs on the leader.
func (n *Node) joinLocal(ctx context.Context, id, addr string) error {
	servers, err := n.configuration()
	if err != nil {
		return err
	}
	var present *raft.Server
	for i, s := range servers {
		switch {
		case string(s.ID) == id && string(s.Address) != addr:
			return fmt.Errorf("%w: %s is already a member at %s, not %s (remove it first to move it)", ErrMemberConflict, id, s.Address, addr)
		case string(s.ID) == id:
			present = &servers[i]
		case string(s.Address) == addr:
			return fmt.Errorf("%w: address %s already belongs to member %s", ErrMemberConflict, addr, s.ID)
		}
	}
	if present != nil && present.Suffrage == raft.Voter {
		return nil
	}
	if !n.IsLeader() {
		return n.mapErr(raft.ErrNotLeader)
	}

	// The node at addr must answer, and be id.
	st, err := n.nodeStatus(ctx, addr)
	if err != nil {
		return fmt.Errorf("cluster: join %s: the new node does not answer at %s: %w", id, addr, err)
	}
	if st.ID != id {
		return fmt.Errorf("%w: the node answering at %s is %q, not %q", ErrMemberConflict, addr, st.ID, id)
	}

	var target uint64
	if present == nil {
		f := n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0)
		if err := n.wait(ctx, f); err != nil {
			return err
		}
		target = f.Index()
		n.logger.Info("added a non-voter; promoting it once it has caught up", "id", id, "addr", addr)
	} else {
		target = n.raft.CommitIndex()
	}

	delay := 20 * time.Millisecond
	for {
		st, err := n.nodeStatus(ctx, addr)
		if err == nil && st.LastIndex >= target {
			break
		}
		if !n.IsLeader() {
			return n.mapErr(raft.ErrNotLeader)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			at := "unknown"
			if err == nil {
				at = fmt.Sprint(st.LastIndex)
			}
			return fmt.Errorf("cluster: join %s: it is a non-voter that has not caught up yet (log at %s of %d); join again to continue: %w", id, at, target, ctx.Err())
		case <-n.ctx.Done():
			t.Stop()
			return ErrShutdown
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
	if err := n.wait(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0)); err != nil {
		return err
	}
	n.logger.Info("new member is a voter", "id", id, "addr", addr)
	return nil
}

// nodeStatus is what "cluster.status" reports.
type nodeStatus struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	LastIndex uint64 `json:"last_index"` // raft's last log index
	Applied   uint64 `json:"applied"`    // raft's applied index
}

func (n *Node) serveStatus() ([]byte, error) {
	return json.Marshal(nodeStatus{
		ID:        n.cfg.NodeID,
		State:     n.raft.State().String(),
		LastIndex: n.raft.LastIndex(),
		Applied:   n.raft.AppliedIndex(),
	})
}

func (n *Node) nodeStatus(ctx context.Context, addr string) (nodeStatus, error) {
	var st nodeStatus
	b, err := n.Call(ctx, addr, methodStatus, nil)
	if err != nil {
		return st, err
	}
	err = json.Unmarshal(b, &st)
	return st, err
}

// Remove removes server id from the cluster, on the leader wherever it is;
// it returns once the new configuration is committed. ErrUnknownMember
// (wrapped) if id is not a member. Removing the leader makes it step down
// once the removal is committed.
func (n *Node) Remove(ctx context.Context, id string) error {
	_, err := n.onLeader(ctx, methodRemove, []byte(id), false, func(ctx context.Context) ([]byte, error) {
		return nil, n.removeLocal(ctx, id)
	})
	return err
}

func (n *Node) removeLocal(ctx context.Context, id string) error {
	servers, err := n.configuration()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == id }) {
		return fmt.Errorf("%w: %q", ErrUnknownMember, id)
	}
	if err := n.wait(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, 0)); err != nil {
		return err
	}
	n.logger.Info("member removed", "id", id)
	return nil
}

// TransferLeadership asks the leader, wherever it is, to hand leadership to
// voter to (any other voter when to is empty), and returns once the leader
// has stepped down. Nil if to already leads. ErrUnknownMember (wrapped) if
// to is not a member, ErrMemberConflict if it is not a voter or there is no
// other voter.
func (n *Node) TransferLeadership(ctx context.Context, to string) error {
	_, err := n.onLeader(ctx, methodTransfer, []byte(to), false, func(ctx context.Context) ([]byte, error) {
		return nil, n.transferLocal(ctx, to)
	})
	return err
}

func (n *Node) transferLocal(ctx context.Context, to string) error {
	if to == n.cfg.NodeID && n.IsLeader() {
		return nil
	}
	servers, err := n.configuration()
	if err != nil {
		return err
	}
	var f raft.Future
	if to == "" {
		if n.otherVoters(servers) == 0 {
			return fmt.Errorf("%w: no other voter to take leadership", ErrMemberConflict)
		}
		f = n.raft.LeadershipTransfer()
	} else {
		i := slices.IndexFunc(servers, func(s raft.Server) bool { return string(s.ID) == to })
		if i < 0 {
			return fmt.Errorf("%w: %q", ErrUnknownMember, to)
		}
		if servers[i].Suffrage != raft.Voter {
			return fmt.Errorf("%w: %s is not a voter and cannot lead", ErrMemberConflict, to)
		}
		f = n.raft.LeadershipTransferToServer(servers[i].ID, servers[i].Address)
	}
	if err := n.wait(ctx, f); err != nil {
		return err
	}
	n.logger.Info("leadership transferred", "requested", to)
	return nil
}

func (n *Node) otherVoters(servers []raft.Server) int {
	c := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.NodeID {
			c++
		}
	}
	return c
}

// handOffLeadership runs at the start of Shutdown: a leader with other
// voters transfers leadership, so that the cluster does not wait for an
// election timeout. Bounded by a few election timeouts.
func (n *Node) handOffLeadership() {
	if !n.IsLeader() {
		return
	}
	servers, err := n.configuration0()
	if err != nil || n.otherVoters(servers) == 0 {
		return
	}
	f := n.raft.LeadershipTransfer()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	t := time.NewTimer(2*n.electionTimeout + time.Second)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			n.logger.Warn("leadership transfer before shutdown failed", "error", err)
		} else {
			n.logger.Info("leadership transferred before shutdown")
		}
	case <-t.C:
		n.logger.Warn("leadership transfer before shutdown timed out")
	}
}

// configuration0 is configuration without the shutdown check, for Shutdown.
func (n *Node) configuration0() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// joinLoop asks the members at addrs, in turn, to add this node, until one
// accepts, this node is a voter, or it shuts down.
func (n *Node) joinLoop(addrs []string) {
	defer n.wg.Done()
	body, _ := json.Marshal(joinRequest{ID: n.cfg.NodeID, Addr: n.Addr()})
	delay := joinMinDelay
	for {
		if n.isVoter() {
			return
		}
		for _, a := range addrs {
			if a == n.Addr() {
				continue
			}
			ctx, cancel := context.WithTimeout(n.ctx, joinAttemptTimeout)
			_, err := n.Call(ctx, a, methodJoin, body)
			cancel()
			if err == nil {
				n.logger.Info("joined the cluster", "via", a)
				return
			}
			if n.ctx.Err() != nil {
				return
			}
			n.logger.Warn("joining the cluster failed; will try again", "via", a, "error", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			return
		}
		delay = min(2*delay, joinMaxDelay)
	}
}

func (n *Node) isVoter() bool    { return n.hasSuffrage(raft.Voter) }
func (n *Node) isNonvoter() bool { return n.hasSuffrage(raft.Nonvoter) }

// hasSuffrage reports whether this node is in the configuration with suffrage s.
func (n *Node) hasSuffrage(s raft.ServerSuffrage) bool {
	servers, err := n.configuration()
	if err != nil {
		return false
	}
	return slices.ContainsFunc(servers, func(srv raft.Server) bool {
		return string(srv.ID) == n.cfg.NodeID && srv.Suffrage == s
	})
}
