package breach

import "github.com/skjold-alarm/skjold/core/alarm"

// condKey identifies the condition an open alarm stands for; at most one open alarm per key.
type condKey struct {
	order, device, subject string
	kind                   alarm.Kind
}

// condOwner is the part of a condKey that a device's conditions share: its order and itself. Monitoring
// faults belong to the empty owner.
type condOwner struct{ order, device string }

// openCond is one open alarm in a condSet.
type openCond struct {
	kind    alarm.Kind
	subject string
	a       *alarm.Alarm
}

// condSet holds the open alarms of one owner, in the order they were opened. A device has a handful at
// most and usually none, so a bound device keeps a pointer to its set and a fix that changes nothing
// looks at one empty slice instead of hashing four strings per condition.
//
// Only active alarms (Active: the condition holds) matter to a fix whose conditions are all inactive: an
// inactive signal leaves an inactive open alarm as it is. active counts them.
//
// An offender who passes zone after zone of an order with many, each alarm open until an operator
// resolves it, can gather more: above condIndexMin open alarms the set keeps maps beside the slice, so
// that a lookup does not grow with them.
type condSet struct {
	open   []openCond
	active int

	at       map[condSub]int // position in open of each (kind, subject); nil while the set is small
	activeOf map[string]int  // active alarms per subject; nil while the set is small
}

// condSub is what an open alarm is about within its owner's set.
type condSub struct {
	kind    alarm.Kind
	subject string
}

// condIndexMin is the largest set that is scanned rather than indexed.
const condIndexMin = 16

// anyActive reports whether the owner has an open alarm whose condition holds.
func (s *condSet) anyActive() bool { return s.active > 0 }

// activeAbout reports whether the owner has an open, active alarm about subject (of any kind).
func (s *condSet) activeAbout(subject string) bool {
	if s.active == 0 {
		return false
	}
	if s.activeOf != nil {
		return s.activeOf[subject] > 0
	}
	for i := range s.open {
		if c := &s.open[i]; c.subject == subject && c.a.Active {
			return true
		}
	}
	return false
}

// setActive sets the Active of an indexed alarm about subject, keeping the counts.
func (s *condSet) setActive(subject string, a *alarm.Alarm, active bool) {
	if a.Active != active {
		s.count(subject, b2i(active)-b2i(a.Active))
		a.Active = active
	}
}

// count adds n to the active alarms about subject.
func (s *condSet) count(subject string, n int) {
	s.active += n
	if s.activeOf != nil && n != 0 {
		if s.activeOf[subject] += n; s.activeOf[subject] == 0 {
			delete(s.activeOf, subject)
		}
	}
}

func (s *condSet) find(kind alarm.Kind, subject string) *alarm.Alarm {
	if i, ok := s.pos(kind, subject); ok {
		return s.open[i].a
	}
	return nil
}

// pos returns where the open alarm of (kind, subject) is in open.
func (s *condSet) pos(kind alarm.Kind, subject string) (int, bool) {
	if s.at != nil {
		i, ok := s.at[condSub{kind, subject}]
		return i, ok
	}
	for i := range s.open {
		if c := &s.open[i]; c.kind == kind && c.subject == subject {
			return i, true
		}
	}
	return 0, false
}

// put indexes a as the open alarm of (kind, subject), replacing any other.
func (s *condSet) put(kind alarm.Kind, subject string, a *alarm.Alarm) {
	s.count(subject, b2i(a.Active))
	if i, found := s.pos(kind, subject); found {
		s.count(subject, -b2i(s.open[i].a.Active))
		s.open[i].a = a
		return
	}
	s.open = append(s.open, openCond{kind: kind, subject: subject, a: a})
	if s.at != nil {
		s.at[condSub{kind, subject}] = len(s.open) - 1
	} else if len(s.open) > condIndexMin {
		s.reindex()
	}
}

// remove drops every entry for the alarm with this id and reports whether there was one.
func (s *condSet) remove(id string) bool {
	n := 0
	for _, c := range s.open {
		if c.a.ID != id {
			s.open[n] = c
			n++
		} else {
			s.count(c.subject, -b2i(c.a.Active))
		}
	}
	clear(s.open[n:])
	found := n < len(s.open)
	s.open = s.open[:n]
	if found && s.at != nil {
		s.reindex() // positions moved (resolving is rare next to fixes)
	}
	return found
}

// reindex rebuilds the maps from the slice, or drops them when the set is small again.
func (s *condSet) reindex() {
	s.at, s.activeOf = nil, nil
	if len(s.open) <= condIndexMin {
		return
	}
	s.at, s.activeOf = make(map[condSub]int, len(s.open)), map[string]int{}
	for i, c := range s.open {
		s.at[condSub{c.kind, c.subject}] = i
		if c.a.Active {
			s.activeOf[c.subject]++
		}
	}
}

// conds returns the set of an owner, creating it. Sets are never dropped, so a pointer kept by a device
// stays valid.
func (e *Evaluator) conds(order, device string) *condSet {
	k := condOwner{order, device}
	s := e.open[k]
	if s == nil {
		s = &condSet{}
		e.open[k] = s
	}
	return s
}

// condsIn returns the set of an owner; when there is none yet, it makes spare the set (a device's own,
// next to the rest of its state).
func (e *Evaluator) condsIn(order, device string, spare *condSet) *condSet {
	k := condOwner{order, device}
	s := e.open[k]
	if s == nil {
		s = spare
		e.open[k] = s
	}
	return s
}

// ownerOf returns the owner and subject under which an open alarm is indexed: what its condKey was.
func ownerOf(a *alarm.Alarm) (condOwner, string) {
	if a.Kind == alarm.MonitoringFault {
		return condOwner{}, a.Subject
	}
	return condOwner{a.OrderID, a.Device}, a.ZoneID
}
