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
type condSet struct {
	open   []openCond
	active int
}

// anyActive reports whether the owner has an open alarm whose condition holds.
func (s *condSet) anyActive() bool { return s.active > 0 }

// activeAbout reports whether the owner has an open, active alarm about subject (of any kind).
func (s *condSet) activeAbout(subject string) bool {
	if s.active == 0 {
		return false
	}
	for i := range s.open {
		if c := &s.open[i]; c.subject == subject && c.a.Active {
			return true
		}
	}
	return false
}

// setActive sets an indexed alarm's Active, keeping the count.
func (s *condSet) setActive(a *alarm.Alarm, active bool) {
	if a.Active != active {
		s.active += b2i(active) - b2i(a.Active)
		a.Active = active
	}
}

func (s *condSet) find(kind alarm.Kind, subject string) *alarm.Alarm {
	for i := range s.open {
		if c := &s.open[i]; c.kind == kind && c.subject == subject {
			return c.a
		}
	}
	return nil
}

// put indexes a as the open alarm of (kind, subject), replacing any other.
func (s *condSet) put(kind alarm.Kind, subject string, a *alarm.Alarm) {
	s.active += b2i(a.Active)
	for i := range s.open {
		if c := &s.open[i]; c.kind == kind && c.subject == subject {
			s.active -= b2i(c.a.Active)
			c.a = a
			return
		}
	}
	s.open = append(s.open, openCond{kind: kind, subject: subject, a: a})
}

// remove drops every entry for the alarm with this id and reports whether there was one.
func (s *condSet) remove(id string) bool {
	n := 0
	for _, c := range s.open {
		if c.a.ID != id {
			s.open[n] = c
			n++
		} else {
			s.active -= b2i(c.a.Active)
		}
	}
	clear(s.open[n:])
	found := n < len(s.open)
	s.open = s.open[:n]
	return found
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
