package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seedTestAddr returns a loopback address that was free a moment ago: a seeded configuration names the
// address before the node binds it.
func seedTestAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// seededSM is a state machine that applied n "set" entries at indexes 1..n.
func seededSM(n int) *testSM {
	sm := newTestSM()
	var es []Entry
	for i := 1; i <= n; i++ {
		es = append(es, Entry{Index: uint64(i), Term: 1, Data: []byte(fmt.Sprintf("set k%d v%d", i, i))})
	}
	sm.ApplyEntries(es)
	return sm
}

func seedConfig(t *testing.T, id, dir, addr string, bootstrap bool) Config {
	cfg := clusterTestConfig(t, id, dir, bootstrap)
	cfg.BindAddr = addr
	return cfg
}

// A seeded directory opens as a cluster of one that holds the state and goes on after its index, with
// or without Bootstrap.
func TestSeededNodeLeadsAndAppliesAfterTheSeededIndex(t *testing.T) {
	for _, bootstrap := range []bool{false, true} {
		t.Run(fmt.Sprintf("bootstrap=%v", bootstrap), func(t *testing.T) {
			const n = 37
			sm := seededSM(n)
			hash := sm.Hash()
			dir := filepath.Join(t.TempDir(), "raft")
			addr := seedTestAddr(t)
			if err := Seed(dir, "n1", addr, sm); err != nil {
				t.Fatal(err)
			}
			if sm.AppliedIndex() != n || sm.Hash() != hash || sm.Restores() != 0 {
				t.Fatal("Seed changed the state machine")
			}
			node := openTestNode(t, seedConfig(t, "n1", dir, addr, bootstrap), sm)
			waitIsLeader(t, node)
			if sm.Restores() != 0 || sm.Get("k17") != "v17" {
				t.Fatalf("restores %d, k17 %q", sm.Restores(), sm.Get("k17"))
			}
			mustApply(t, node, "set after restore")
			if got := sm.AppliedIndex(); got <= n || sm.Get("after") != "restore" || sm.Count() != n+1 {
				t.Fatalf("after a new entry: applied %d, count %d, after=%q", got, sm.Count(), sm.Get("after"))
			}
			st := node.Stats()
			if st["num_peers"] != "0" || !strings.Contains(st["latest_configuration"], addr) || st["term"] != "2" {
				t.Fatalf("stats: peers %s, configuration %s, term %s", st["num_peers"], st["latest_configuration"], st["term"])
			}

			// A restart keeps it all, again with no restore.
			if err := node.Shutdown(); err != nil {
				t.Fatal(err)
			}
			applied := sm.AppliedIndex()
			node = openTestNode(t, seedConfig(t, "n1", dir, addr, bootstrap), sm)
			waitIsLeader(t, node)
			mustApply(t, node, "set again yes")
			if sm.AppliedIndex() <= applied || sm.Get("again") != "yes" || sm.Restores() != 0 {
				t.Fatalf("after restart: applied %d (was %d), restores %d", sm.AppliedIndex(), applied, sm.Restores())
			}
		})
	}
}

// The seeded snapshot is a real one: a node whose state machine lost its state restores from it, and a
// server that joins with an empty directory catches up from it.
func TestSeededSnapshotRestoresAndCatchesUpJoiners(t *testing.T) {
	const n = 25
	src := seededSM(n)
	dir := filepath.Join(t.TempDir(), "raft")
	addr := seedTestAddr(t)
	if err := Seed(dir, "n1", addr, src); err != nil {
		t.Fatal(err)
	}
	// The node starts on the seeded directory with an empty state machine: it is restored.
	sm1 := newTestSM()
	n1 := openTestNode(t, seedConfig(t, "n1", dir, addr, false), sm1)
	if sm1.Restores() != 1 || sm1.AppliedIndex() != n || sm1.Hash() != src.Hash() {
		t.Fatalf("restores %d, applied %d, hash %s want %s", sm1.Restores(), sm1.AppliedIndex(), sm1.Hash(), src.Hash())
	}
	waitIsLeader(t, n1)
	mustApply(t, n1, "set before join")

	sm2 := newTestSM()
	n2 := openTestNode(t, seedConfig(t, "n2", filepath.Join(t.TempDir(), "raft"), "127.0.0.1:0", false), sm2)
	if err := n1.AddVoter("n2", n2.Addr()); err != nil {
		t.Fatal(err)
	}
	mustApply(t, n1, "set after join")
	waitFor(t, 20*time.Second, "n2 to catch up", func() bool {
		return sm2.AppliedIndex() == sm1.AppliedIndex() && sm2.Hash() == sm1.Hash()
	})
	if sm2.Restores() != 1 || sm2.Get("k1") != "v1" || sm2.Get("before") != "join" || sm2.Get("after") != "join" {
		t.Fatalf("n2: restores %d, k1 %q, before %q, after %q", sm2.Restores(), sm2.Get("k1"), sm2.Get("before"), sm2.Get("after"))
	}
	if st := n1.Stats(); st["num_peers"] != "1" {
		t.Fatalf("n1 has %s peers", st["num_peers"])
	}
}

type seedFailingSM struct{ *testSM }

func (seedFailingSM) Snapshot() (StateSnapshot, error) { return nil, errors.New("disk on fire") }

func TestSeedRefuses(t *testing.T) {
	addr := "127.0.0.1:8471"
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "something"), []byte("x"), 0o600)
	for _, c := range []struct {
		name, dir, addr string
		sm              StateMachine
		want            string
	}{
		{"non-empty dir", full, addr, seededSM(3), "not empty"},
		{"nothing applied", filepath.Join(t.TempDir(), "raft"), addr, newTestSM(), "applied no entry"},
		{"bad address", filepath.Join(t.TempDir(), "raft"), "nowhere", seededSM(3), "host:port"},
		{"snapshot fails", filepath.Join(t.TempDir(), "raft"), addr, seedFailingSM{seededSM(3)}, "disk on fire"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Seed(c.dir, "n1", c.addr, c.sm)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Seed: %v, want an error saying %q", err, c.want)
			}
			if c.dir == full {
				if !strings.Contains(err.Error(), full) {
					t.Fatalf("error does not name the directory: %v", err)
				}
				if ents, _ := os.ReadDir(full); len(ents) != 1 {
					t.Fatalf("the directory changed: %v", ents)
				}
			} else if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a failed Seed left %s behind (%v)", c.dir, err)
			}
		})
	}

	// An empty existing directory is accepted, and emptied again on failure.
	empty := t.TempDir()
	if err := Seed(empty, "n1", addr, seedFailingSM{seededSM(3)}); err == nil {
		t.Fatal("failing snapshot accepted")
	}
	if ents, err := os.ReadDir(empty); err != nil || len(ents) != 0 {
		t.Fatalf("a failed Seed left %v in %s (%v)", ents, empty, err)
	}
	if err := Seed(empty, "n1", addr, seededSM(3)); err != nil {
		t.Fatal(err)
	}
	// A seeded directory is not seeded twice.
	if err := Seed(empty, "n1", addr, seededSM(3)); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("seeding twice: %v", err)
	}
}
