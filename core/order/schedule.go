package order

import (
	"time"
	_ "time/tzdata" // Europe/Oslo must resolve on a node without a system zoneinfo database
)

var oslo = mustLocation("Europe/Oslo")

func mustLocation(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic("order: time zone " + name + ": " + err.Error())
	}
	return l
}

var dayIndex = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Applies reports whether a zone with this schedule is in effect at t. A nil schedule always applies.
// Windows are read on the wall clock in Europe/Oslo, so a window keeps its local hours across daylight
// saving changes: in the missing spring hour the clock jumps and a window boundary inside it takes effect
// at the jump; in the repeated autumn hour the window is judged by the wall clock both times.
// An exemption switches the zone off for its period whatever the windows say.
func (s *Schedule) Applies(t time.Time) bool {
	if s == nil {
		return true
	}
	for _, e := range s.Exemptions {
		if !t.Before(e.From) && t.Before(e.Until) {
			return false
		}
	}
	local := t.In(oslo)
	minute := local.Hour()*60 + local.Minute()
	today := local.Weekday()
	yesterday := (today + 6) % 7
	for _, w := range s.Windows {
		from, _ := ClockMinutes(w.From)
		to, _ := ClockMinutes(w.To)
		if from < to {
			if w.hasDay(today) && minute >= from && minute < to {
				return true
			}
			continue
		}
		// Crosses midnight: open from `from` on a listed day until `to` on the next day.
		if (w.hasDay(today) && minute >= from) || (w.hasDay(yesterday) && minute < to) {
			return true
		}
	}
	return false
}

func (w *Window) hasDay(d time.Weekday) bool {
	for _, s := range w.Days {
		if dayIndex[s] == d {
			return true
		}
	}
	return false
}
