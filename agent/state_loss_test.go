package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The state store is not synced on every batch: the Raft log is. A power cut may therefore leave the
// state behind the log. Here the state directory is swapped for an older checkpoint of itself, as if
// the last batches were lost, and the node must come back with exactly what it had.
func TestStateBehindTheLogIsCaughtUpOnStart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	if r := call(t, n, "POST", "/v1/orders", apiOrder); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	base := time.Now().UTC().Truncate(time.Second)
	post := func(from, to int) {
		for i := from; i < to; i++ {
			lat := 59.9105 // inside the zone, then out
			if i%6 >= 3 {
				lat = 59.905
			}
			obs := fmt.Sprintf(`[{"device": "864717003283581", "time": %q, "lat": %v, "lon": 10.758, "accuracy_m": 4}]`,
				base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), lat)
			if r := call(t, n, "POST", "/v1/observations", obs); r.status != 200 {
				t.Fatalf("observation %d: %d %s", i, r.status, r.body)
			}
		}
	}
	post(0, 6)
	old := filepath.Join(t.TempDir(), "state")
	if err := n.Machine().Checkpoint(old); err != nil {
		t.Fatal(err)
	}
	oldIndex := n.Machine().AppliedIndex()
	post(6, 18)
	n.Stop()
	want := n.Machine().AppliedIndex()
	if want <= oldIndex {
		t.Fatalf("nothing was applied after the checkpoint (%d, %d)", oldIndex, want)
	}
	read := func(n *Node) (alarms, track []byte) {
		return call(t, n, "GET", "/v1/alarms?state=all", "").body, call(t, n, "GET", "/v1/devices/864717003283581/track", "").body
	}

	// Start once more on the full state to learn what must come back, then lose the tail.
	n = startNode(t, dir)
	waitFor(t, "the full state applied", func() bool { return n.Machine().AppliedIndex() >= want })
	wantAlarms, wantTrack := read(n)
	n.Stop()
	if !bytes.Contains(wantAlarms, []byte(`"breach"`)) || bytes.Count(wantTrack, []byte(`"time"`)) < 18 {
		t.Fatalf("the test needs alarms and a track to compare:\n%s\n%s", wantAlarms, wantTrack)
	}
	if err := os.RemoveAll(filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(old, filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}

	n = startNode(t, dir)
	waitFor(t, "the lost entries applied again", func() bool { return n.Machine().AppliedIndex() >= want })
	gotAlarms, gotTrack := read(n)
	if !bytes.Equal(gotAlarms, wantAlarms) {
		t.Fatalf("alarms after catching up differ:\n%s\nwant\n%s", gotAlarms, wantAlarms)
	}
	if !bytes.Equal(gotTrack, wantTrack) {
		t.Fatalf("track after catching up differs:\n%s\nwant\n%s", gotTrack, wantTrack)
	}
}
