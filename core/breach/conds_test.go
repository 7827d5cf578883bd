package breach

import (
	"fmt"
	"testing"

	"github.com/skjold-alarm/skjold/core/alarm"
	"pgregory.net/rapid"
)

// TestCondSetMatchesScanProperty: whether small (scanned) or large (indexed), a condition set answers
// find, activeAbout and anyActive as a scan of its open alarms does, through any sequence of puts,
// activations and removals, and keeps the alarms in the order they were opened.
func TestCondSetMatchesScanProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		kinds := []alarm.Kind{alarm.Breach, alarm.Warning, alarm.Approach}
		subjects := rapid.IntRange(1, 40).Draw(t, "subjects")
		var s condSet
		type entry struct {
			sub condSub
			a   *alarm.Alarm
		}
		var model []entry // the open alarms, in the order opened
		seq := 0
		for step := rapid.IntRange(0, 200).Draw(t, "steps"); step > 0; step-- {
			sub := condSub{rapid.SampledFrom(kinds).Draw(t, "kind"), fmt.Sprintf("z%d", rapid.IntRange(0, subjects-1).Draw(t, "subject"))}
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0, 1: // open (or replace) an alarm
				seq++
				a := &alarm.Alarm{ID: fmt.Sprintf("a%d", seq), Kind: sub.kind, ZoneID: sub.subject, Active: rapid.Bool().Draw(t, "active")}
				s.put(sub.kind, sub.subject, a)
				replaced := false
				for i := range model {
					if model[i].sub == sub {
						model[i].a, replaced = a, true
					}
				}
				if !replaced {
					model = append(model, entry{sub, a})
				}
			case 2: // the condition starts or ends
				if a := s.find(sub.kind, sub.subject); a != nil {
					s.setActive(sub.subject, a, !a.Active)
				}
			case 3: // an operator resolves it
				if a := s.find(sub.kind, sub.subject); a != nil {
					if !s.remove(a.ID) {
						t.Fatalf("remove(%s) found nothing", a.ID)
					}
					for i := range model {
						if model[i].a == a {
							model = append(model[:i], model[i+1:]...)
							break
						}
					}
				}
			}
			if len(s.open) != len(model) {
				t.Fatalf("%d open, want %d", len(s.open), len(model))
			}
			active := 0
			for i, m := range model {
				if s.open[i].a != m.a {
					t.Fatalf("open[%d] is %s, want %s", i, s.open[i].a.ID, m.a.ID)
				}
				active += b2i(m.a.Active)
			}
			if s.anyActive() != (active > 0) || s.active != active {
				t.Fatalf("active %d, want %d", s.active, active)
			}
			if (s.at != nil) != (len(model) > condIndexMin) {
				t.Fatalf("%d open alarms, indexed %v", len(model), s.at != nil)
			}
			for k := 0; k < subjects; k++ {
				subject := fmt.Sprintf("z%d", k)
				want := false
				for _, m := range model {
					want = want || (m.sub.subject == subject && m.a.Active)
				}
				if got := s.activeAbout(subject); got != want {
					t.Fatalf("activeAbout(%s) = %v, want %v", subject, got, want)
				}
				for _, kind := range kinds {
					var want *alarm.Alarm
					for _, m := range model {
						if m.sub == (condSub{kind, subject}) {
							want = m.a
						}
					}
					if got := s.find(kind, subject); got != want {
						t.Fatalf("find(%s, %s) = %v, want %v", kind, subject, got, want)
					}
				}
			}
		}
	})
}
