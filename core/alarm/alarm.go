// Package alarm defines alarms: what is wrong, how bad it is, who must act, and every transition it has
// been through. Alarms are created and changed only by the state machine, so every node holds the same.
package alarm

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/skjold-alarm/skjold/core/device"
)

// Kind says what happened.
type Kind string

const (
	Breach          Kind = "breach"           // the offender is inside an exclusion zone
	DynamicBreach   Kind = "dynamic_breach"   // the offender is within the radius around a protected person
	Warning         Kind = "warning"          // the offender is in a warning buffer
	Approach        Kind = "approach"         // the offender is heading for a zone or a protected person
	InclusionBreach Kind = "inclusion_breach" // the offender has left a zone they must stay in
	Tamper          Kind = "tamper"           // strap or case opened
	NoSignal        Kind = "no_signal"        // no report for too long
	NoFix           Kind = "no_fix"           // reports, but no position, for too long
	BatteryLow      Kind = "battery_low"
	DeviceFault     Kind = "device_fault"
	MonitoringFault Kind = "monitoring_fault" // Skjold itself cannot watch: a plugin, a hook, quorum
)

// Class says who must act: police operators, or the technical desk.
type Class string

const (
	Police    Class = "police"
	Technical Class = "technical"
)

// Severity orders alarms for the operator.
type Severity string

// Rank orders severities: info 1, minor 2, major 3, critical 4; an unknown one is 0.
func (s Severity) Rank() int {
	switch s {
	case Info:
		return 1
	case Minor:
		return 2
	case Major:
		return 3
	case Critical:
		return 4
	}
	return 0
}

const (
	Info     Severity = "info"
	Minor    Severity = "minor"
	Major    Severity = "major"
	Critical Severity = "critical"
)

// State is where an alarm is in its lifecycle: raised → acknowledged → resolved.
type State string

const (
	Raised       State = "raised"
	Acknowledged State = "acknowledged"
	Resolved     State = "resolved"
)

// Event names a transition.
type Event string

const (
	EventRaised       Event = "raised"
	EventAcknowledged Event = "acknowledged"
	EventResolved     Event = "resolved"
	EventRestored     Event = "restored" // the condition ended; the alarm stays until resolved
	EventUpdated      Event = "updated"  // the condition changed (e.g. deeper inside)
	EventEscalated    Event = "escalated"
)

// Certainty says how sure the evaluator is that a fix is on the wrong side of a boundary.
type Certainty string

const (
	// Certain: the whole accuracy circle is on the wrong side, and the fix is not a poor one.
	Certain Certainty = "certain"
	// Probable: the reported position is on the wrong side, but its accuracy circle crosses the boundary
	// (or the fix is too poor to be sure).
	Probable Certainty = "probable"
)

// Transition is one step in an alarm's life. Seq starts at 1 and increases by one.
type Transition struct {
	Seq   uint32    `json:"seq"`
	State State     `json:"state"`
	Event Event     `json:"event"`
	At    time.Time `json:"at"`
	By    string    `json:"by"`
	Note  string    `json:"note,omitempty"`
}

// Alarm is the API's and the hooks' view of an alarm.
type Alarm struct {
	ID       string   `json:"id"`
	OrderID  string   `json:"order_id,omitempty"`
	Kind     Kind     `json:"kind"`
	Class    Class    `json:"class"`
	Severity Severity `json:"severity"`
	State    State    `json:"state"`
	// Active is true while the condition that raised the alarm lasts (inside the zone, strap open).
	Active    bool        `json:"active"`
	ZoneID    string      `json:"zone_id,omitempty"`
	Device    string      `json:"device,omitempty"`
	Subject   string      `json:"subject,omitempty"` // what a monitoring fault is about, e.g. "plugin:sim"
	RaisedAt  time.Time   `json:"raised_at"`
	Position  *device.Fix `json:"position,omitempty"`
	DistanceM *float64    `json:"distance_m,omitempty"`
	Message   string      `json:"message"`
	Certainty Certainty   `json:"certainty,omitempty"`
	// Late is set when the fix that raised the alarm was reported long after it was taken (a tag that
	// buffered while out of coverage): nobody should be sent to that position as if it were current.
	Late    bool    `json:"late,omitempty"`
	LateByS float64 `json:"late_by_s,omitempty"`
	// ETAS and ClosingMps describe an approach: seconds until the offender reaches the zone or person
	// at the closing speed seen on the recent track.
	ETAS       *float64 `json:"eta_s,omitempty"`
	ClosingMps *float64 `json:"closing_speed_mps,omitempty"`
	// Breaches30d counts breaches of the same order in the 30 days before this alarm was raised or
	// updated; repetition raises the severity of lesser alarms.
	Breaches30d int `json:"breaches_30d,omitempty"`
	// ExitStreak counts fixes in a row clearly outside the condition while it is active; the alarm is
	// restored when it reaches the configured count (hysteresis).
	ExitStreak int `json:"exit_streak,omitempty"`
	// Escalation counts how often a police alarm was escalated while nobody acknowledged it.
	Escalation int `json:"escalation,omitempty"`
	// Evidence holds the fixes that caused or updated the alarm.
	Evidence    []device.Fix `json:"evidence,omitempty"`
	Transitions []Transition `json:"transitions"`
}

// Last returns the alarm's latest transition.
func (a *Alarm) Last() Transition {
	if len(a.Transitions) == 0 {
		return Transition{}
	}
	return a.Transitions[len(a.Transitions)-1]
}

// Open reports whether the alarm is not yet resolved.
func (a *Alarm) Open() bool { return a.State != Resolved }

// IdempotencyKey identifies one transition of one alarm for receivers that must drop duplicates.
func IdempotencyKey(alarmID string, seq uint32) string {
	return alarmID + ":" + strconv.FormatUint(uint64(seq), 10)
}

// Change is one alarm transition as it leaves the state machine: the alarm after the transition (without
// its transition history and evidence) and the transition itself. ActivePolice counts police alarms
// raised and not yet acknowledged after it.
type Change struct {
	Alarm        Alarm      `json:"alarm"`
	Transition   Transition `json:"transition"`
	ActivePolice int        `json:"active_police_alarms"`
	// PoliceEscalation is the highest escalation among those alarms.
	PoliceEscalation int `json:"police_escalation,omitempty"`
	// Area is the zone the alarm is about, attached when the transition is delivered to a hook (it is not
	// part of the replicated outbox: the order holds it).
	Area *Area `json:"-"`
	// SirenAlarms counts the alarms that sound the siren: police alarms and monitoring faults raised and
	// not yet acknowledged.
	SirenAlarms int `json:"siren_alarms"`
}

// Area is a zone as hooks describe it: a GeoJSON Polygon or MultiPolygon, or a Point with a radius (a
// circle; for a dynamic zone, around the protected person's latest fix).
type Area struct {
	Type        string          `json:"type"`
	Coordinates json.RawMessage `json:"coordinates"`
	RadiusM     float64         `json:"radius_m,omitempty"`
}
