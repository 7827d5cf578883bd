package cluster

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/skjold-alarm/skjold/cluster/pki"
)

func memberIDs(t *testing.T, n *Node) []string {
	t.Helper()
	ms, err := n.Members()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

func isVoterOn(n *Node, id string) bool {
	ms, err := n.Members()
	if err != nil {
		return false
	}
	return slices.ContainsFunc(ms, func(m Member) bool { return m.ID == id && m.Voter })
}

func TestMembership(t *testing.T) {
	ms, dir := startTLSCluster(t, 3, nil)
	for i := 0; i < 10; i++ {
		clusterApply(t, ms, fmt.Sprintf("set k%d v%d", i, i))
	}
	leader, followers := followersOf(t, ms)
	ctx := ctxTimeout(t, 60*time.Second)

	// Members, as every node sees them.
	for _, m := range ms {
		got, err := m.n.Members()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("%s: members %+v", m.n.ID(), got)
		}
		for i, g := range got {
			want := ms[i].n
			if g.ID != want.ID() || g.Addr != want.Addr() || !g.Voter {
				t.Fatalf("%s: member %d = %+v, want %s at %s, voter", m.n.ID(), i, g, want.ID(), want.Addr())
			}
		}
	}
	waitFor(t, 10*time.Second, "every node to know the leader", func() bool {
		for _, m := range ms {
			got, _ := m.n.Members()
			for _, g := range got {
				if g.Leader != (g.ID == leader.n.ID()) {
					return false
				}
			}
		}
		return true
	})
	if a, ok := followers[0].n.AddrOf(leader.n.ID()); !ok || a != leader.n.Addr() {
		t.Fatalf("AddrOf(leader) = %q, %v", a, ok)
	}
	if _, ok := followers[0].n.AddrOf("n9"); ok {
		t.Fatal("AddrOf(n9) found")
	}

	// A new node, certified after the cluster was made, joins through a
	// follower by itself.
	if err := pki.Issue(dir, pki.NodeSpec{ID: "n7"}); err != nil {
		t.Fatal(err)
	}
	cfg := clusterTestConfig(t, "n7", filepath.Join(t.TempDir(), "7"), false)
	cfg.TLS = tlsFor(t, dir, "n7")
	cfg.Results = testResults{}
	cfg.Join = []string{"127.0.0.1:1", followers[0].n.Addr()} // the first does not answer
	sm7 := newTestSM()
	n7 := openTestNode(t, cfg, sm7)
	m7 := &testMember{n: n7, sm: sm7}
	all := append(slices.Clone(ms), m7)
	waitFor(t, 30*time.Second, "n7 to be a voter", func() bool {
		for _, m := range all {
			if !isVoterOn(m.n, "n7") {
				return false
			}
		}
		return true
	})
	if ids := memberIDs(t, n7); !slices.Equal(ids, []string{"n1", "n2", "n3", "n7"}) {
		t.Fatalf("members on n7: %v", ids)
	}
	clusterApply(t, all, "set after join")
	waitConverged(t, leaderOf(t, all), all)
	if sm7.Get("k0") != "v0" || sm7.Get("after") != "join" {
		t.Fatal("n7 is missing state")
	}
	// The new node proposes and reads like any other.
	if _, err := n7.Propose(ctx, []byte("set from n7")); err != nil {
		t.Fatal(err)
	}
	if err := followers[1].n.ReadBarrier(ctx); err != nil || followers[1].sm.Get("from") != "n7" {
		t.Fatalf("ReadBarrier after n7's write: %v, %q", err, followers[1].sm.Get("from"))
	}

	// Join is idempotent; conflicts are refused.
	if err := followers[1].n.Join(ctx, "n7", n7.Addr()); err != nil {
		t.Fatalf("Join again: %v", err)
	}
	if err := followers[1].n.Join(ctx, "n7", "127.0.0.1:1"); !errors.Is(err, ErrMemberConflict) || !strings.Contains(err.Error(), n7.Addr()) {
		t.Fatalf("Join n7 at another address: %v", err)
	}
	if err := followers[1].n.Join(ctx, "n9", n7.Addr()); !errors.Is(err, ErrMemberConflict) {
		t.Fatalf("Join n9 at n7's address: %v", err)
	}
	// The node answering at the address must be the one joined.
	cfg5 := clusterTestConfig(t, "n5", filepath.Join(t.TempDir(), "5"), false)
	cfg5.TLS = tlsFor(t, dir, "n5")
	n5 := openTestNode(t, cfg5, newTestSM())
	if err := followers[1].n.Join(ctx, "n6", n5.Addr()); !errors.Is(err, ErrMemberConflict) || !strings.Contains(err.Error(), `"n5"`) {
		t.Fatalf("Join n6 at n5's address: %v", err)
	}
	// Nobody at the address.
	if err := followers[1].n.Join(ctx, "n6", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("Join of an absent node: %v", err)
	}
	if ids := memberIDs(t, leader.n); !slices.Equal(ids, []string{"n1", "n2", "n3", "n7"}) {
		t.Fatalf("members after refused joins: %v", ids)
	}

	// Remove, through a follower.
	if err := followers[0].n.Remove(ctx, "n7"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n7 gone from every member's configuration", func() bool {
		for _, m := range ms {
			if slices.Contains(memberIDs(t, m.n), "n7") {
				return false
			}
		}
		return true
	})
	if err := followers[0].n.Remove(ctx, "n7"); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("Remove again: %v", err)
	}
	clusterApply(t, ms, "set after remove")

	// Leadership transfer, through a follower, to a chosen voter and to any.
	leader, followers = followersOf(t, ms)
	to := followers[1]
	if err := followers[0].n.TransferLeadership(ctx, to.n.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, to.n.ID()+" to lead", to.n.IsLeader)
	if err := followers[0].n.TransferLeadership(ctx, to.n.ID()); err != nil {
		t.Fatalf("transfer to the leader: %v", err)
	}
	if err := to.n.TransferLeadership(ctx, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "another leader", func() bool { return leaderOf(t, ms) != to })
	if err := followers[0].n.TransferLeadership(ctx, "n9"); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("transfer to n9: %v", err)
	}
	clusterApply(t, ms, "set after transfers")
	waitConverged(t, leaderOf(t, ms), ms)
}

// TestShutdownTransfersLeadership makes followers slow to start an election
// by themselves: a new leader right after the old one's Shutdown can only
// come from a leadership transfer.
func TestShutdownTransfersLeadership(t *testing.T) {
	ms, _ := startTLSCluster(t, 3, nil)
	leader, followers := followersOf(t, ms)
	const slow = 5 * time.Second
	for _, f := range followers {
		rc := f.n.raft.ReloadableConfig()
		rc.HeartbeatTimeout, rc.ElectionTimeout = slow, slow
		if err := f.n.raft.ReloadConfig(rc); err != nil {
			t.Fatal(err)
		}
	}
	clusterApply(t, ms, "set before shutdown")
	start := time.Now()
	if err := leader.n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, slow/2, "a new leader", func() bool {
		return followers[0].n.IsLeader() || followers[1].n.IsLeader()
	})
	t.Logf("new leader %v after the shutdown began", time.Since(start))
	clusterApply(t, followers, "set after shutdown")
}

// TestSingleNodeShutdown: a lone leader has nobody to hand over to.
func TestSingleNodeShutdownNoTransfer(t *testing.T) {
	n := openTestNode(t, testConfig(t, "n1", t.TempDir(), "", true), newTestSM())
	waitIsLeader(t, n)
	start := time.Now()
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	if n.raft.State() != raft.Shutdown {
		t.Fatal("not shut down")
	}
}

// TestJoinResumesAsNonvoter: a node stopped after it was added as a
// non-voter, but before its promotion, finishes joining when it restarts.
func TestJoinResumesAsNonvoter(t *testing.T) {
	ms, dir := startTLSCluster(t, 3, nil)
	clusterApply(t, ms, "set a 1")
	leader := leaderOf(t, ms)

	cfg := clusterTestConfig(t, "n4", filepath.Join(t.TempDir(), "4"), false)
	cfg.TLS = tlsFor(t, dir, "n4")
	sm := newTestSM()
	n4 := openTestNode(t, cfg, sm)
	if err := leader.n.raft.AddNonvoter("n4", raft.ServerAddress(n4.Addr()), 0, 0).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n4 to receive the log", func() bool { return n4.isNonvoter() && sm.Get("a") == "1" })
	cfg.BindAddr = n4.Addr()
	if err := n4.Shutdown(); err != nil {
		t.Fatal(err)
	}

	cfg.Join = []string{ms[0].n.Addr(), ms[1].n.Addr()}
	n4 = openTestNode(t, cfg, sm)
	waitFor(t, 20*time.Second, "n4 to be a voter", func() bool { return isVoterOn(n4, "n4") && isVoterOn(leaderOf(t, ms).n, "n4") })
	all := append(slices.Clone(ms), &testMember{n: n4, sm: sm})
	clusterApply(t, all, "set b 2")
	waitConverged(t, leaderOf(t, all), all)
}
