package breach

import (
	"cmp"
	"encoding/json"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// dumpEffects renders what a batch changed, for comparison.
func dumpEffects(fx *Effects) string {
	b, err := json.Marshal(struct {
		*Effects
		Nil [9]bool
	}{fx, [9]bool{fx.Changes == nil, fx.Commands == nil, fx.Orders == nil, fx.Devices == nil, fx.DevicesDeleted == nil,
		fx.Alarms == nil, fx.Repeats == nil, fx.FixesAdded == nil, fx.FixesDeleted == nil}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// dumpState renders everything the evaluator shows: orders, devices, tracks, alarms, breach histories,
// its scalars and the areas of its alarms.
func dumpState(e *Evaluator) string {
	type dev struct {
		State any
		Track any
	}
	var devs []dev
	for _, st := range e.Devices() {
		devs = append(devs, dev{st, e.Track(st.Device)})
	}
	var areas, repeats []any
	for _, a := range e.Alarms(false, "") {
		ar, ok := e.Area(&a)
		areas = append(areas, []any{ar, ok})
		repeats = append(repeats, e.Repeats(a.OrderID))
	}
	b, err := json.Marshal([]any{e.Orders(), devs, e.Alarms(false, ""), areas, repeats, e.Meta(), e.ActivePolice(), e.Track("stranger")})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// The fast paths (zones skipped by their discs, the dynamic zone decided by geodesic bounds, the zone
// index) change nothing: every entry of random scripts gives the same results, effects and state as
// evaluating every zone and protected person exactly.
func TestFastPathsChangeNothingProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := DrawScript(t)
		fast, slow := New(s.Config), New(s.Config)
		slow.slow = true
		for i := 0; i < len(s.Steps); i += s.Batch {
			fast.Begin()
			slow.Begin()
			for _, st := range s.Steps[i:min(i+s.Batch, len(s.Steps))] {
				if a, b := ApplyScriptStep(fast, st), ApplyScriptStep(slow, st); a != b {
					t.Fatalf("step %d: fast returned %s, slow %s", i, a, b)
				}
			}
			if a, b := dumpEffects(fast.Finish()), dumpEffects(slow.Finish()); a != b {
				t.Fatalf("batch at step %d: effects differ\nfast %s\nslow %s", i, a, b)
			}
			if a, b := dumpState(fast), dumpState(slow); a != b {
				t.Fatalf("batch at step %d: state differs\nfast %s\nslow %s", i, a, b)
			}
		}
	})
}

// Comparing sort keys, then the ids on a tie, orders device ids as comparing the ids does.
func TestSortKeyOrdersAsStringsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gen := rapid.StringOfN(rapid.RuneFrom([]rune{0, 1, 'a', 'b', 0xff, 'é'}), 0, 20, -1)
		a, b := gen.Draw(t, "a"), gen.Draw(t, "b")
		ka, kb := sortKey(a), sortKey(b)
		got := cmp.Or(cmp.Compare(ka[0], kb[0]), cmp.Compare(ka[1], kb[1]), strings.Compare(a, b))
		if want := strings.Compare(a, b); got != want {
			t.Fatalf("%q vs %q: keys say %d, strings %d", a, b, got, want)
		}
	})
}
