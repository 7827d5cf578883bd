package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

func waitQuorumLost(t *testing.T, m *testMember, after time.Time) time.Time {
	t.Helper()
	var since time.Time
	waitFor(t, 10*time.Second, m.n.ID()+" to report quorum lost", func() bool {
		var lost bool
		since, lost = m.n.QuorumLost()
		return lost
	})
	if since.Before(after) || since.After(time.Now()) {
		t.Fatalf("%s: quorum lost since %v, want between %v and now", m.n.ID(), since, after)
	}
	if m.n.IsLeader() {
		t.Fatalf("%s reports quorum lost as leader", m.n.ID())
	}
	return since
}

func TestQuorumLost(t *testing.T) {
	t.Run("leader loses its followers", func(t *testing.T) {
		ms, _ := startTLSCluster(t, 3, nil)
		leader, followers := followersOf(t, ms)
		waitFor(t, 10*time.Second, "no node to report quorum lost", func() bool {
			for _, m := range ms {
				if _, lost := m.n.QuorumLost(); lost {
					return false
				}
			}
			return true
		})
		clusterApply(t, ms, "set a 1")
		before := time.Now()
		for _, f := range followers {
			if err := f.n.Shutdown(); err != nil {
				t.Fatal(err)
			}
		}
		// It steps down after the leader lease and is then lost.
		waitQuorumLost(t, leader, before)

		// Nothing can be written or read linearizably.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := leader.n.Propose(ctx, []byte("set b 2")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Propose without quorum: %v", err)
		}
		if err := leader.n.ReadBarrier(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadBarrier without quorum: %v", err)
		}
	})

	t.Run("follower loses the others", func(t *testing.T) {
		ms, _ := startTLSCluster(t, 3, nil)
		leader, followers := followersOf(t, ms)
		survivor := followers[0]
		clusterApply(t, ms, "set a 1")
		waitFor(t, 10*time.Second, "the survivor to be in contact", func() bool {
			_, lost := survivor.n.QuorumLost()
			return !lost
		})
		before := time.Now()
		if err := followers[1].n.Shutdown(); err != nil {
			t.Fatal(err)
		}
		// The leader may hand leadership to the survivor on its way out;
		// alone, the survivor steps down again.
		if err := leader.n.Shutdown(); err != nil {
			t.Fatal(err)
		}
		// since is its last contact with a leader: shortly before the
		// shutdowns at the latest (heartbeats come every 25ms here).
		waitQuorumLost(t, survivor, before.Add(-500*time.Millisecond))
	})

	t.Run("new node without a cluster", func(t *testing.T) {
		before := time.Now()
		n := openTestNode(t, testConfig(t, "lone", t.TempDir(), "", false), newTestSM())
		m := &testMember{n: n}
		since := waitQuorumLost(t, m, before)
		if since.After(time.Now()) {
			t.Fatal("since in the future")
		}
	})
}
