package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

func openTestLogStore(t testing.TB, dir string) *LogStore {
	t.Helper()
	s, err := OpenLogStore(dir)
	if err != nil {
		t.Fatalf("OpenLogStore: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testLog(i uint64, data string) *raft.Log {
	return &raft.Log{
		Index:      i,
		Term:       i/10 + 1,
		Type:       raft.LogCommand,
		Data:       []byte(data),
		Extensions: []byte("ext"),
		AppendedAt: time.Unix(1700000000, int64(i)),
	}
}

func assertIndexes(t *testing.T, s *LogStore, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if f != first || l != last {
		t.Fatalf("first/last = %d/%d, want %d/%d", f, l, first, last)
	}
}

func TestLogStoreBasic(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)

	assertIndexes(t, s, 0, 0)
	var l raft.Log
	if err := s.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog on empty store: %v, want ErrLogNotFound", err)
	}

	var logs []*raft.Log
	for i := uint64(1); i <= 300; i++ {
		logs = append(logs, testLog(i, fmt.Sprintf("entry-%d", i)))
	}
	if err := s.StoreLogs(logs[:299]); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(logs[299]); err != nil {
		t.Fatal(err)
	}
	// An entry of another type, without data or extensions, and a zero time.
	cfgLog := &raft.Log{Index: 301, Term: 31, Type: raft.LogConfiguration}
	if err := s.StoreLog(cfgLog); err != nil {
		t.Fatal(err)
	}
	assertIndexes(t, s, 1, 301)

	for _, want := range []*raft.Log{logs[0], logs[41], logs[299], cfgLog} {
		var got raft.Log
		if err := s.GetLog(want.Index, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", want.Index, err)
		}
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
			!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) ||
			!got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", want.Index, got, *want)
		}
	}

	if err := s.DeleteRange(1, 100); err != nil {
		t.Fatal(err)
	}
	assertIndexes(t, s, 101, 301)
	if err := s.GetLog(100, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(100) after delete: %v", err)
	}
	// Conflict truncation: delete a suffix.
	if err := s.DeleteRange(251, 301); err != nil {
		t.Fatal(err)
	}
	assertIndexes(t, s, 101, 250)

	// Stable store.
	if _, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get(missing) = %v, want \"not found\"", err)
	}
	if _, err := s.GetUint64([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("GetUint64(missing) = %v, want \"not found\"", err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// Reopen keeps everything.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestLogStore(t, dir)
	assertIndexes(t, s, 101, 250)
	if err := s.GetLog(200, &l); err != nil || string(l.Data) != "entry-200" {
		t.Fatalf("GetLog(200) after reopen = %q, %v", l.Data, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-2" {
		t.Fatalf("Get after reopen = %q, %v", v, err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("GetUint64 after reopen = %d, %v", v, err)
	}
	if err := s.Verify(); err != nil {
		t.Fatalf("Verify after reopen: %v", err)
	}

	// Use after Close is an error, not a panic.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.LastIndex(); !errors.Is(err, ErrClosed) {
		t.Fatalf("LastIndex after Close: %v", err)
	}
	if err := s.StoreLog(testLog(400, "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("StoreLog after Close: %v", err)
	}
	if _, err := s.Get([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

func TestLogStoreCorruptValue(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	if err := s.StoreLogs([]*raft.Log{testLog(1, "a"), testLog(2, "b"), testLog(3, "c")}); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"short":         {1, 2, 3},
		"version":       append([]byte{9}, encodeLog(nil, testLog(2, "b"))[1:]...),
		"truncated":     encodeLog(nil, testLog(2, "bbbbbbbb"))[:logEntryHeaderLen+3],
		"trailing":      append(encodeLog(nil, testLog(2, "b")), 0xff),
		"wrong-index":   encodeLog(nil, testLog(7, "b")),
		"unknown-type":  func() []byte { b := encodeLog(nil, testLog(2, "b")); b[17] = 200; return b }(),
		"huge-data-len": append(encodeLog(nil, testLog(2, ""))[:logEntryHeaderLen], 0xff, 0xff, 0xff, 0xff, 0x0f),
	}
	for name, garbage := range cases {
		t.Run(name, func(t *testing.T) {
			if err := s.db.Set(logKey(2), garbage, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			var l raft.Log
			err := s.GetLog(2, &l)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entry 2") || !strings.Contains(err.Error(), dir) {
				t.Fatalf("GetLog of garbage: %v; want ErrCorrupt naming entry 2 and %s", err, dir)
			}
			if err := s.Verify(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entry 2") {
				t.Fatalf("Verify: %v", err)
			}
			// Neighbours still decode.
			if err := s.GetLog(3, &l); err != nil {
				t.Fatalf("GetLog(3): %v", err)
			}
		})
	}

	if err := s.db.Set(stableKey([]byte("CurrentTerm")), []byte{1, 2}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetUint64 of a 2-byte value: %v", err)
	}
}

func TestLogStoreVersionKey(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	if err := s.db.Set(metaVersionKey, []byte{77}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenLogStore(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "unknown layout version") {
		t.Fatalf("open with unknown version: %v", err)
	}

	// Some other Pebble database is not taken for a raft log.
	other := t.TempDir()
	db, err := pebble.Open(other, &pebble.Options{Logger: pebbleLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("foreign"), []byte("data"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenLogStore(other); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), other) {
		t.Fatalf("open of a foreign database: %v", err)
	}
}

// TestLogStorePurge checks that deleted entries are gone from every file of
// the Pebble directory, not just hidden by a tombstone.
func TestLogStorePurge(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	const secret = "FIX-59.91234-10.75678-SECRET"
	// Several rounds so that entries sit in flushed tables, the memtable and
	// WAL files (live and recycled) at once.
	idx := uint64(1)
	for round := 0; round < 3; round++ {
		var batch []*raft.Log
		for i := 0; i < 200; i++ {
			batch = append(batch, testLog(idx, fmt.Sprintf("%s-%d-%s", secret, idx, strings.Repeat("x", 200))))
			idx++
		}
		if err := s.StoreLogs(batch); err != nil {
			t.Fatal(err)
		}
		if round < 2 {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !dirContains(t, dir, secret) {
		t.Fatal("test is broken: secret not found on disk before deletion")
	}
	// Delete in two steps, as raft does after successive snapshots.
	if err := s.DeleteRange(1, 300); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(testLog(idx, "later entry")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(301, idx-1); err != nil {
		t.Fatal(err)
	}
	assertIndexes(t, s, idx, idx)
	// Obsolete files are removed asynchronously after the flush/compaction.
	waitFor(t, 10*time.Second, "deleted entries to leave the disk", func() bool {
		return !dirContains(t, dir, secret)
	})
	s.Close()
	if dirContains(t, dir, secret) {
		t.Fatal("secret back on disk after close")
	}
}

func dirContains(t testing.TB, dir, needle string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if d.IsDir() || found {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func BenchmarkLogStoreStoreLogs(b *testing.B) {
	s := openTestLogStore(b, b.TempDir())
	data := bytes.Repeat([]byte{0xab}, 512)
	batch := make([]*raft.Log, 64)
	for i := range batch {
		batch[i] = &raft.Log{Type: raft.LogCommand, Term: 1, Data: data, AppendedAt: time.Now()}
	}
	idx := uint64(1)
	b.SetBytes(int64(len(batch) * len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, l := range batch {
			l.Index = idx
			idx++
		}
		if err := s.StoreLogs(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "entries/s")
}
