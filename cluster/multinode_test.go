package cluster

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// clusterTestConfig is testConfig with timeouts that tolerate a loaded
// machine (race detector, parallel packages) without leadership churn.
func clusterTestConfig(t testing.TB, id, dir string, bootstrap bool) Config {
	cfg := testConfig(t, id, dir, "", bootstrap)
	cfg.HeartbeatTimeout = 250 * time.Millisecond
	cfg.ElectionTimeout = 250 * time.Millisecond
	cfg.LeaderLeaseTimeout = 250 * time.Millisecond
	return cfg
}

// clusterApply applies data on whichever member is the leader, retrying
// when leadership moves. An entry whose commit was interrupted by a
// leadership change may end up applied twice; every member then applies it
// twice, so converged hashes stay comparable.
func clusterApply(t *testing.T, ms []*testMember, data string) any {
	t.Helper()
	var res any
	onLeader(t, ms, fmt.Sprintf("Apply(%q)", data), func(n *Node) (err error) {
		res, err = n.Apply(ctxTimeout(t, 10*time.Second), []byte(data))
		return err
	})
	return res
}

// onLeader runs op on the current leader, again on the next one while it
// fails because leadership moved.
func onLeader(t *testing.T, ms []*testMember, what string, op func(*Node) error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := leaderOf(t, ms)
		err := op(l.n)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrLeadershipLost) || time.Now().After(deadline) {
			t.Fatalf("%s on %s: %v", what, l.n.ID(), err)
		}
		t.Logf("%s on %s: %v; retrying", what, l.n.ID(), err)
	}
}

type testMember struct {
	n  *Node
	sm *testSM
}

// startCluster starts size nodes on loopback: the first bootstraps, the
// others are added as voters.
func startCluster(t *testing.T, size int, mod func(*Config)) []*testMember {
	t.Helper()
	root := t.TempDir()
	var ms []*testMember
	for i := 1; i <= size; i++ {
		cfg := clusterTestConfig(t, fmt.Sprintf("n%d", i), filepath.Join(root, strconv.Itoa(i)), i == 1)
		if mod != nil {
			mod(&cfg)
		}
		sm := newTestSM()
		ms = append(ms, &testMember{n: openTestNode(t, cfg, sm), sm: sm})
	}
	waitIsLeader(t, ms[0].n)
	for i, m := range ms[1:] {
		onLeader(t, ms[:i+1], "AddVoter("+m.n.ID()+")", func(n *Node) error { return n.AddVoter(m.n.ID(), m.n.Addr()) })
	}
	for _, m := range ms {
		waitLeader(t, m.n)
	}
	return ms
}

func leaderOf(t *testing.T, ms []*testMember) *testMember {
	t.Helper()
	var leader *testMember
	waitFor(t, 10*time.Second, "a single leader", func() bool {
		leader = nil
		count := 0
		for _, m := range ms {
			if m.n.IsLeader() {
				leader = m
				count++
			}
		}
		return count == 1
	})
	return leader
}

// waitConverged waits until every member applied the same index as the
// reference and checks that the state hashes agree.
func waitConverged(t *testing.T, ref *testMember, ms []*testMember) {
	t.Helper()
	want := ref.sm.AppliedIndex()
	for _, m := range ms {
		waitFor(t, 10*time.Second, m.n.ID()+" to catch up", func() bool {
			return m.sm.AppliedIndex() >= want
		})
	}
	for _, m := range ms {
		if m.sm.Hash() != ref.sm.Hash() || m.sm.Count() != ref.sm.Count() {
			t.Fatalf("%s: hash %s count %d; %s has %s %d", m.n.ID(), m.sm.Hash(), m.sm.Count(), ref.n.ID(), ref.sm.Hash(), ref.sm.Count())
		}
		if a := m.sm.maxApplications(); a != 1 {
			t.Fatalf("%s applied an entry %d times", m.n.ID(), a)
		}
	}
}

func TestThreeNodes(t *testing.T) {
	ms := startCluster(t, 3, nil)
	for i := 0; i < 30; i++ {
		if res := clusterApply(t, ms, fmt.Sprintf("set k%d v%d", i, i)); res == nil {
			t.Fatal("no result")
		}
	}
	leader := leaderOf(t, ms)
	waitConverged(t, leader, ms)

	var followers []*testMember
	for _, m := range ms {
		if m != leader {
			followers = append(followers, m)
		}
	}
	_, err := followers[0].n.Apply(ctxTimeout(t, 5*time.Second), []byte("set x y"))
	var nle *NotLeaderError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nle) {
		t.Fatalf("Apply on follower: %v", err)
	}
	// The error names the leader (unless leadership moved in between).
	if nle.LeaderID == leader.n.ID() && nle.LeaderAddr != leader.n.Addr() {
		t.Fatalf("NotLeaderError names %s at %s, leader is at %s", nle.LeaderID, nle.LeaderAddr, leader.n.Addr())
	}
	if nle.LeaderID == "" {
		t.Logf("no leader known to the follower at the time: %v", err)
	}
	if err := followers[0].n.Barrier(ctxTimeout(t, 5*time.Second)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Barrier on follower: %v", err)
	}
	if err := followers[0].n.AddVoter("n9", "127.0.0.1:1"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("AddVoter on follower: %v", err)
	}
	waitFor(t, 10*time.Second, "the follower to know the leader", func() bool {
		id, _ := followers[1].n.Leader()
		return id != ""
	})

	// Watch leadership on the followers before the leader goes away.
	chs := map[*testMember]<-chan bool{}
	for _, f := range followers {
		chs[f] = f.n.LeaderCh()
	}
	if err := leader.n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	newLeader := leaderOf(t, followers)
	select {
	case v := <-chs[newLeader]:
		if !v {
			// Primed with false; the next value is the gain.
			select {
			case v = <-chs[newLeader]:
			case <-time.After(5 * time.Second):
			}
		}
		if !v {
			t.Fatal("new leader was not notified on LeaderCh")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no LeaderCh notification")
	}
	for i := 30; i < 40; i++ {
		clusterApply(t, followers, fmt.Sprintf("set k%d v%d", i, i))
	}
	newLeader = leaderOf(t, followers)
	waitConverged(t, newLeader, followers)
	if followers[0].sm.Get("k39") != "v39" || followers[1].sm.Get("k39") != "v39" {
		t.Fatal("entries after failover missing")
	}

	// The old leader is removed from the configuration.
	onLeader(t, followers, "RemoveServer", func(n *Node) error { return n.RemoveServer(leader.n.ID()) })
	clusterApply(t, followers, "after removal")
}

// TestNewNodeCatchesUpViaSnapshot adds a node after the leader's log has
// been truncated: it can only catch up from a snapshot.
func TestNewNodeCatchesUpViaSnapshot(t *testing.T) {
	ms := startCluster(t, 3, func(c *Config) {
		c.TrailingLogs = 4
		c.SnapshotThreshold = 16
	})
	for i := 0; i < 60; i++ {
		clusterApply(t, ms, fmt.Sprintf("set k%d v%d", i, i))
	}
	leader := leaderOf(t, ms)
	waitConverged(t, leader, ms)
	// Truncate every log, so that whoever leads when n4 joins must send a
	// snapshot.
	for _, m := range ms {
		if err := m.n.Snapshot(); err != nil {
			t.Fatal(err)
		}
		if first, _ := m.n.logs.FirstIndex(); first <= 2 {
			t.Fatalf("%s: log not truncated: first index %d", m.n.ID(), first)
		}
	}

	cfg := clusterTestConfig(t, "n4", filepath.Join(t.TempDir(), "4"), false)
	cfg.TrailingLogs = 4
	sm := newTestSM()
	n4 := openTestNode(t, cfg, sm)
	onLeader(t, ms, "AddVoter", func(n *Node) error { return n.AddVoter("n4", n4.Addr()) })
	m4 := &testMember{n: n4, sm: sm}
	all := append(ms, m4)
	clusterApply(t, all, "set late entry")
	leader = leaderOf(t, all)
	waitConverged(t, leader, all)
	if sm.Restores() != 1 {
		t.Fatalf("new node restored %d snapshots, want 1", sm.Restores())
	}
	if sm.Get("k0") != "v0" || sm.Get("late") != "entry" {
		t.Fatal("new node is missing state")
	}

	// After a restart the new node continues from its own state, without
	// restoring again.
	cfg.BindAddr = n4.Addr()
	if err := n4.Shutdown(); err != nil {
		t.Fatal(err)
	}
	n4 = openTestNode(t, cfg, sm)
	m4.n = n4
	waitLeader(t, n4)
	clusterApply(t, all, "set after restart")
	waitConverged(t, leaderOf(t, all), all)
	if sm.Restores() != 1 {
		t.Fatalf("restores after restart = %d, want 1", sm.Restores())
	}
}
