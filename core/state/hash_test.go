package state

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/breach"
)

func stateHash(t *testing.T, m *Machine) (uint64, string) {
	t.Helper()
	idx, h, err := m.StateHash()
	if err != nil {
		t.Fatal(err)
	}
	return idx, h
}

// refHashes applies log one entry at a time and returns the state hash after each index.
func refHashes(t *testing.T, log []Entry) map[uint64]string {
	t.Helper()
	ref := open(t, t.TempDir())
	defer ref.Close()
	out := map[uint64]string{}
	for _, e := range log {
		ref.Apply([]Entry{e})
		idx, h := stateHash(t, ref)
		if idx != e.Index {
			t.Fatalf("reference at index %d after applying entry %d", idx, e.Index)
		}
		out[idx] = h
	}
	return out
}

func TestStateHashDependsOnTheLogNotTheBatching(t *testing.T) {
	log := scenario(t)
	a, b := open(t, t.TempDir()), open(t, t.TempDir())
	defer a.Close()
	defer b.Close()
	for _, e := range log {
		a.Apply([]Entry{e})
	}
	for i := 0; i < len(log); i += 5 {
		b.Apply(log[i:min(i+5, len(log))])
	}
	ia, ha := stateHash(t, a)
	ib, hb := stateHash(t, b)
	if ia != uint64(len(log)) || ib != ia || ha != hb {
		t.Fatalf("a: %d %s, b: %d %s", ia, ha, ib, hb)
	}
	if len(ha) != 64 || strings.Trim(ha, "0123456789abcdef") != "" {
		t.Fatalf("hash %q is not hex SHA-256", ha)
	}

	// One more entry on one of them: index and hash differ.
	extra := Entry{Index: uint64(len(log) + 1), Data: must(Tick(breach.Tick{At: t0.Add(21 * time.Minute)}))}
	b.Apply([]Entry{extra})
	ib, hb = stateHash(t, b)
	if ib != ia+1 || hb == ha {
		t.Fatalf("after an extra entry: %d %s, before %d %s", ib, hb, ia, ha)
	}
	// Replaying entries already applied changes nothing.
	b.Apply(log)
	if i, h := stateHash(t, b); i != ib || h != hb {
		t.Fatal("replayed entries changed the state hash")
	}
}

// While entries are applied, every StateHash and every checkpoint is the state at exactly one index.
func TestStateHashAndCheckpointAreConsistentWithTheIndex(t *testing.T) {
	log := scenario(t)
	ref := refHashes(t, log)
	m := open(t, t.TempDir())
	defer m.Close()
	m.Apply(log[:1])

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, e := range log[1:] {
			m.Apply([]Entry{e})
		}
	}()
	ckRoot := t.TempDir()
	seen := map[uint64]bool{}
	for n := 0; ; n++ {
		done := m.AppliedIndex() == uint64(len(log))
		idx, h := stateHash(t, m)
		if ref[idx] != h {
			t.Fatalf("StateHash at index %d is %s, the state at that index hashes to %s", idx, h, ref[idx])
		}
		seen[idx] = true
		if n%8 == 0 {
			ck := filepath.Join(ckRoot, fmt.Sprintf("ck-%d", n))
			if err := m.Checkpoint(ck); err != nil {
				t.Fatal(err)
			}
			ci, ch, err := HashDir(ck)
			if err != nil {
				t.Fatal(err)
			}
			if ref[ci] != ch {
				t.Fatalf("checkpoint at index %d hashes to %s, the state at that index to %s", ci, ch, ref[ci])
			}
			os.RemoveAll(ck)
		}
		if done {
			break
		}
	}
	wg.Wait()
	t.Logf("hashed the state at %d different indices", len(seen))
	if !seen[uint64(len(log))] {
		t.Fatal("never hashed the final state")
	}
}

func TestCheckpointIsACompleteStateDirectory(t *testing.T) {
	log := scenario(t)
	src := open(t, t.TempDir())
	defer src.Close()
	src.Apply(log[:40])
	si, sh := stateHash(t, src)

	ck := filepath.Join(t.TempDir(), "parent", "ck")
	if err := src.Checkpoint(ck); err != nil {
		t.Fatal(err)
	}
	if err := src.Checkpoint(ck); err == nil {
		t.Fatal("checkpoint over an existing directory accepted")
	}

	before := listing(t, ck)
	ci, ch, err := HashDir(ck)
	if err != nil {
		t.Fatal(err)
	}
	if ci != si || ch != sh {
		t.Fatalf("HashDir: %d %s, machine: %d %s", ci, ch, si, sh)
	}
	if after := listing(t, ck); after != before {
		t.Fatalf("HashDir changed the directory:\n%s\n---\n%s", before, after)
	}

	// A machine opened on the checkpoint is the source machine at that index, and goes on like it.
	m := open(t, ck)
	defer m.Close()
	if i, h := stateHash(t, m); i != si || h != sh {
		t.Fatalf("opened checkpoint: %d %s, want %d %s", i, h, si, sh)
	}
	m.Apply(log)
	src.Apply(log)
	mi, mh := stateHash(t, m)
	ri, rh := stateHash(t, src)
	if mi != ri || mh != rh {
		t.Fatalf("machine on the checkpoint diverged: %d %s vs %d %s", mi, mh, ri, rh)
	}
}

func TestHashDirRefusesWhatIsNotAStateStore(t *testing.T) {
	empty := t.TempDir()
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "MANIFEST-000001"), []byte("not a manifest"), 0o600)
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("x"), 0o600)
	for name, dir := range map[string]string{
		"missing": filepath.Join(empty, "nope"),
		"empty":   empty,
		"junk":    junk,
		"file":    file,
	} {
		if _, _, err := HashDir(dir); err == nil {
			t.Errorf("%s: HashDir(%s) accepted it", name, dir)
		} else if !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: error does not name the directory: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("HashDir wrote into an empty directory: %v", ents)
	}

	// A damaged table is an error, not a crash.
	m := open(t, t.TempDir())
	m.Apply(scenario(t))
	ck := filepath.Join(t.TempDir(), "ck")
	if err := m.Checkpoint(ck); err != nil {
		t.Fatal(err)
	}
	m.Close()
	ssts, _ := filepath.Glob(filepath.Join(ck, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("checkpoint has no table")
	}
	b, _ := os.ReadFile(ssts[0])
	b[len(b)/4] ^= 0x01
	os.WriteFile(ssts[0], b, 0o600)
	if _, _, err := HashDir(ck); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("HashDir of a damaged table: %v", err)
	}
}

func TestClosedMachine(t *testing.T) {
	m := open(t, t.TempDir())
	m.Close()
	if _, _, err := m.StateHash(); err == nil {
		t.Error("StateHash on a closed machine")
	}
	if err := m.Checkpoint(filepath.Join(t.TempDir(), "ck")); err == nil {
		t.Error("Checkpoint of a closed machine")
	}
}

// listing is every file under dir (not the directories) with its size and modification time.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %v %d %v", p, fi.Mode(), fi.Size(), fi.ModTime()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
