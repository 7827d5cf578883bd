package breach

import (
	"testing"

	"pgregory.net/rapid"
)

// TestDevTableMatchesMapProperty: any sequence of puts, removals and lookups answers as a Go map does,
// for ids short and long, sharing their first 16 bytes or differing only in length.
func TestDevTableMatchesMapProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// A small alphabet and lengths around 16 make shared prefixes and equal sort keys common.
		ids := rapid.SliceOfNDistinct(rapid.StringMatching(`[ab]{0,3}|aaaaaaaaaaaaaaa[ab]{0,3}|tag-[0-9]{1,6}`), 1, 40, rapid.ID).Draw(t, "ids")
		var tab devTable
		want := map[string]*devState{}
		for step := rapid.IntRange(0, 300).Draw(t, "steps"); step > 0; step-- {
			id := rapid.SampledFrom(ids).Draw(t, "id")
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0:
				ds := &devState{key: sortKey(id)}
				ds.st.Device = id
				tab.put(ds)
				want[id] = ds
			case 1:
				tab.remove(id)
				delete(want, id)
			}
			if tab.len() != len(want) {
				t.Fatalf("len %d, want %d", tab.len(), len(want))
			}
			for _, q := range ids {
				if got := tab.get(q); got != want[q] {
					t.Fatalf("get(%q) = %p, want %p", q, got, want[q])
				}
			}
		}
	})
}

// TestDevTableEmpty: an empty or emptied table finds nothing and removes nothing.
func TestDevTableEmpty(t *testing.T) {
	var tab devTable
	tab.remove("x")
	if tab.get("x") != nil || tab.len() != 0 {
		t.Fatal("empty table found a device")
	}
	ds := &devState{key: sortKey("x")}
	ds.st.Device = "x"
	tab.put(ds)
	tab.remove("x")
	if tab.get("x") != nil || tab.len() != 0 {
		t.Fatal("emptied table found a device")
	}
}
