package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

func TestSingleNodeApply(t *testing.T) {
	dir := t.TempDir()
	sm := newTestSM()
	n := openTestNode(t, testConfig(t, "n1", dir, "", true), sm)
	waitIsLeader(t, n)

	if id, addr := n.Leader(); id != "n1" || addr != n.Addr() {
		t.Fatalf("Leader() = %q, %q; want n1, %s", id, addr, n.Addr())
	}
	if n.State() != "Leader" {
		t.Fatalf("State() = %q", n.State())
	}
	if res := mustApply(t, n, "set a 1"); res != uint64(1) {
		t.Fatalf("Apply result = %v, want 1", res)
	}
	if res := mustApply(t, n, "set b 2"); res != uint64(2) {
		t.Fatalf("Apply result = %v, want 2", res)
	}
	// An error value from the state machine is a result, not a failure.
	res := mustApply(t, n, "fail")
	if err, ok := res.(error); !ok || err.Error() != "rejected" {
		t.Fatalf("Apply(fail) result = %#v", res)
	}
	if sm.Get("a") != "1" || sm.Get("b") != "2" {
		t.Fatalf("state: a=%q b=%q", sm.Get("a"), sm.Get("b"))
	}
	if err := n.Barrier(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}

	// A cancelled context is honoured.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Apply(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with cancelled ctx: %v", err)
	}

	st := n.Stats()
	if st["state"] != "Leader" || st["node_id"] != "n1" || st["log_first_index"] != "1" {
		t.Fatalf("Stats = %v", st)
	}

	ch := n.LeaderCh()
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	// The channel was primed with true and is closed by Shutdown.
	for range ch {
	}
	if _, err := n.Apply(context.Background(), []byte("x")); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Apply after Shutdown: %v", err)
	}

	if st := n.Stats(); st["state"] != "Shutdown" {
		t.Fatalf("Stats after Shutdown: %v", st)
	}

	// Layout of the directory.
	for _, p := range []string{"FORMAT", "log", "snapshots"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
}

func TestSingleNodeReopen(t *testing.T) {
	dir := t.TempDir()
	sm := newTestSM()
	cfg := testConfig(t, "n1", dir, "", true)
	n := openTestNode(t, cfg, sm)
	waitIsLeader(t, n)
	for i := 0; i < 20; i++ {
		mustApply(t, n, fmt.Sprintf("set k%d v%d", i, i))
	}
	applied, hash := sm.AppliedIndex(), sm.Hash()
	cfg.BindAddr = n.Addr()
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	// Reopen twice: without and then with a snapshot in the directory.
	for round := 0; round < 2; round++ {
		n = openTestNode(t, cfg, sm)
		waitIsLeader(t, n)
		if err := n.Barrier(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if sm.AppliedIndex() != applied || sm.Hash() != hash {
			t.Fatalf("round %d: after reopen applied=%d hash=%s, want %d %s", round, sm.AppliedIndex(), sm.Hash(), applied, hash)
		}
		if m := sm.maxApplications(); m != 1 {
			t.Fatalf("round %d: an entry was applied %d times", round, m)
		}
		if sm.Restores() != 0 {
			t.Fatalf("round %d: state machine restored %d times; it is up to date and must not be", round, sm.Restores())
		}
		res := mustApply(t, n, fmt.Sprintf("set round %d", round))
		if res != sm.Count() {
			t.Fatalf("result %v, count %d", res, sm.Count())
		}
		if sm.AppliedIndex() <= applied {
			t.Fatal("applied index did not advance")
		}
		if err := n.Snapshot(); err != nil {
			t.Fatal(err)
		}
		applied, hash = sm.AppliedIndex(), sm.Hash()
		if err := n.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSnapshotTruncatesLog(t *testing.T) {
	dir := t.TempDir()
	sm := newTestSM()
	cfg := testConfig(t, "n1", dir, "", true)
	cfg.TrailingLogs = 5
	n := openTestNode(t, cfg, sm)
	waitIsLeader(t, n)
	for i := 0; i < 50; i++ {
		mustApply(t, n, fmt.Sprintf("set k%d v%d", i, i))
	}
	first, _ := n.logs.FirstIndex()
	if first != 1 {
		t.Fatalf("first index before snapshot = %d", first)
	}
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	first, _ = n.logs.FirstIndex()
	last, _ := n.logs.LastIndex()
	if first <= 1 || last-first+1 != 5 {
		t.Fatalf("after snapshot the log holds %d..%d; want the last 5 entries", first, last)
	}
	// Nothing new: not an error.
	if err := n.Snapshot(); err != nil {
		t.Fatalf("second Snapshot: %v", err)
	}
	snaps, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil || len(snaps) == 0 || len(snaps) > snapshotRetain {
		t.Fatalf("snapshots dir: %v %v", snaps, err)
	}
}

// TestRestoreFromSnapshot opens a directory with a state machine that lost
// its state: it must be restored from the latest snapshot, then catch up.
func TestRestoreFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	sm := newTestSM()
	cfg := testConfig(t, "n1", dir, "", true)
	cfg.TrailingLogs = 2
	n := openTestNode(t, cfg, sm)
	waitIsLeader(t, n)
	for i := 0; i < 30; i++ {
		mustApply(t, n, fmt.Sprintf("set k%d v%d", i, i))
	}
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	// Entries after the snapshot are replayed from the log.
	for i := 30; i < 35; i++ {
		mustApply(t, n, fmt.Sprintf("set k%d v%d", i, i))
	}
	applied, hash := sm.AppliedIndex(), sm.Hash()
	cfg.BindAddr = n.Addr()
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	fresh := newTestSM()
	n = openTestNode(t, cfg, fresh)
	if fresh.Restores() != 1 {
		t.Fatalf("restores = %d, want 1", fresh.Restores())
	}
	waitIsLeader(t, n)
	if err := n.Barrier(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if fresh.AppliedIndex() != applied || fresh.Hash() != hash || fresh.Get("k34") != "v34" {
		t.Fatalf("restored applied=%d hash=%s k34=%q; want %d %s v34", fresh.AppliedIndex(), fresh.Hash(), fresh.Get("k34"), applied, hash)
	}
	mustApply(t, n, "set after restore")
	if fresh.Get("after") != "restore" {
		t.Fatal("apply after restore failed")
	}
}

// TestStateMachineAheadOfLog: a state machine with applied entries next to
// an empty (or foreign) cluster directory is refused.
func TestStateMachineAheadOfLog(t *testing.T) {
	sm := newTestSM()
	sm.ApplyEntries([]Entry{{Index: 10, Term: 1, Data: []byte("x")}})
	_, err := Open(testConfig(t, "n1", t.TempDir(), "", true), sm)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "applied index 10") {
		t.Fatalf("Open: %v", err)
	}
}

func TestOpenBadFormatMarker(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":       "\x00\x01garbage\xff",
		"other-program": "something-else 1\n",
		"future":        "skjold-cluster 99\n",
		"bad-version":   "skjold-cluster one\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "FORMAT")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(testConfig(t, "n1", dir, "", true), newTestSM())
			t.Logf("Open: %v", err)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: %v; want ErrFormat naming %s", err, path)
			}
		})
	}

	t.Run("missing-with-files", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "log"), 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := Open(testConfig(t, "n1", dir, "", true), newTestSM())
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "no FORMAT marker") {
			t.Fatalf("Open: %v", err)
		}
	})

	t.Run("removed-from-used-dir", func(t *testing.T) {
		dir := t.TempDir()
		n := openTestNode(t, testConfig(t, "n1", dir, "", true), newTestSM())
		waitIsLeader(t, n)
		n.Shutdown()
		if err := os.Remove(filepath.Join(dir, "FORMAT")); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(testConfig(t, "n1", dir, "", true), newTestSM()); !errors.Is(err, ErrFormat) {
			t.Fatalf("Open: %v", err)
		}
	})
}

// usedDir returns a directory holding a node's state after a few entries,
// and that node's state machine.
func usedDir(t *testing.T) (string, *testSM) {
	t.Helper()
	dir := t.TempDir()
	sm := newTestSM()
	n := openTestNode(t, testConfig(t, "n1", dir, "", true), sm)
	waitIsLeader(t, n)
	for i := 0; i < 5; i++ {
		mustApply(t, n, fmt.Sprintf("set k%d v", i))
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	return dir, sm
}

func TestOpenGarbageLog(t *testing.T) {
	t.Run("bad-entry", func(t *testing.T) {
		dir, sm := usedDir(t)
		logDir := filepath.Join(dir, "log")
		s, err := OpenLogStore(logDir)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.db.Set(logKey(3), []byte("not a raft log entry at all"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err = Open(testConfig(t, "n1", dir, "", true), sm)
		t.Logf("Open: %v", err)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entry 3") || !strings.Contains(err.Error(), logDir) {
			t.Fatalf("Open: %v; want ErrCorrupt naming entry 3 and %s", err, logDir)
		}
	})

	t.Run("pebble-files", func(t *testing.T) {
		dir, sm := usedDir(t)
		logDir := filepath.Join(dir, "log")
		ents, err := os.ReadDir(logDir)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "MANIFEST") || strings.HasSuffix(e.Name(), ".log") || strings.HasSuffix(e.Name(), ".sst") {
				garbage := []byte(strings.Repeat("garbage!", 4096))
				if err := os.WriteFile(filepath.Join(logDir, e.Name()), garbage, 0o600); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
		if n == 0 {
			t.Fatal("no Pebble files found")
		}
		_, err = Open(testConfig(t, "n1", dir, "", true), sm)
		t.Logf("Open: %v", err)
		if err == nil || !strings.Contains(err.Error(), logDir) {
			t.Fatalf("Open: %v; want an error naming %s", err, logDir)
		}
	})

	t.Run("wal-only", func(t *testing.T) {
		// Garbage over the write-ahead logs alone: Pebble may take it for a
		// torn tail and open an empty database; that must not pass for a
		// fresh one.
		dir, sm := usedDir(t)
		logDir := filepath.Join(dir, "log")
		ents, _ := os.ReadDir(logDir)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".log") {
				if err := os.WriteFile(filepath.Join(logDir, e.Name()), []byte(strings.Repeat("\x00garbage", 1000)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, err := Open(testConfig(t, "n1", dir, "", true), sm)
		t.Logf("Open: %v", err)
		if err == nil || !strings.Contains(err.Error(), logDir) {
			t.Fatalf("Open: %v; want an error naming %s", err, logDir)
		}
	})

	t.Run("log-dir-missing", func(t *testing.T) {
		dir, sm := usedDir(t)
		n := openTestNode(t, testConfig(t, "n1", dir, "", true), sm)
		waitIsLeader(t, n)
		mustApply(t, n, "one more")
		if err := n.Snapshot(); err != nil {
			t.Fatal(err)
		}
		n.Shutdown()
		if err := os.RemoveAll(filepath.Join(dir, "log")); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(testConfig(t, "n1", dir, "", true), sm); !errors.Is(err, ErrFormat) {
			t.Fatalf("Open: %v", err)
		}
	})

	t.Run("snapshot-garbage", func(t *testing.T) {
		dir, sm := usedDir(t)
		n := openTestNode(t, testConfig(t, "n1", dir, "", true), sm)
		waitIsLeader(t, n)
		mustApply(t, n, "one more")
		if err := n.Snapshot(); err != nil {
			t.Fatal(err)
		}
		n.Shutdown()
		snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
		if len(snaps) != 1 {
			t.Fatalf("snapshots: %v", snaps)
		}
		if err := os.WriteFile(snaps[0], []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		// The state machine lost its state, so the snapshot is needed.
		_, err := Open(testConfig(t, "n1", dir, "", true), newTestSM())
		t.Logf("Open: %v", err)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "snapshots")) {
			t.Fatalf("Open: %v", err)
		}
	})
}

func TestNotLeaderError(t *testing.T) {
	err := error(&NotLeaderError{LeaderID: "n2", LeaderAddr: "127.0.0.1:1"})
	if !errors.Is(err, ErrNotLeader) || !strings.Contains(err.Error(), "n2") {
		t.Fatal(err)
	}
	var nle *NotLeaderError
	if !errors.As(fmt.Errorf("wrapped: %w", err), &nle) || nle.LeaderAddr != "127.0.0.1:1" {
		t.Fatal("errors.As")
	}
	_ = raft.ErrNotLeader
}
