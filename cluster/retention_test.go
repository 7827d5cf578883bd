package cluster

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestLogRetention: at a write rate far below SnapshotThreshold, entries
// still leave the log, and the disk, within LogRetention, on the leader and
// on the followers.
func TestLogRetention(t *testing.T) {
	const retention = 400 * time.Millisecond
	ms := startCluster(t, 3, func(c *Config) { c.LogRetention = retention })
	const secret = "FIX-63.4305-10.3951-PRIVATE"
	for i := 0; i < 20; i++ {
		clusterApply(t, ms, fmt.Sprintf("%s-%d", secret, i))
	}
	leader := leaderOf(t, ms)
	last := leader.sm.AppliedIndex()
	waitConverged(t, leader, ms)
	for _, m := range ms {
		if !dirContains(t, filepath.Join(m.n.cfg.Dir, "log"), secret) {
			t.Fatalf("%s: test is broken: entries not on disk", m.n.ID())
		}
	}
	for _, m := range ms {
		logDir := filepath.Join(m.n.cfg.Dir, "log")
		waitFor(t, 10*time.Second, m.n.ID()+" to drop old entries from disk", func() bool {
			first, err := m.n.logs.FirstIndex()
			if err != nil {
				t.Fatal(err)
			}
			return (first == 0 || first > last) && !dirContains(t, logDir, secret)
		})
	}
	// The cluster still works, and the retention path does not break restarts.
	clusterApply(t, ms, "set after retention")
	leader = leaderOf(t, ms)
	waitConverged(t, leader, ms)
	follower := ms[0]
	if follower == leader {
		follower = ms[1]
	}
	cfg := follower.n.cfg
	cfg.BindAddr = follower.n.Addr()
	if err := follower.n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	follower.n = openTestNode(t, cfg, follower.sm)
	clusterApply(t, ms, "set after restart")
	// (The leader may have deleted entries the restarted follower lacks; it
	// then catches up from a snapshot.)
	waitConverged(t, leaderOf(t, ms), ms)
}
