package breach

import (
	"time"

	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/order"
)

// The inputs of the evaluator, one per kind of log entry. At is the proposer's clock when the entry was
// made; the evaluator's notion of now is the largest At it has seen, so time comes from the log.

// Observations is a batch of device reports.
type Observations struct {
	At  time.Time            `json:"at"`
	By  string               `json:"by"` // "driver:sim@node-1", "api:operator-1"
	Obs []device.Observation `json:"obs"`
}

// Tick carries the leader's clock once a second; timers fire on it.
type Tick struct {
	At time.Time `json:"at"`
}

// PutOrder creates or replaces an order. With Create set it is refused if the order exists.
type PutOrder struct {
	At     time.Time   `json:"at"`
	By     string      `json:"by"`
	Create bool        `json:"create,omitempty"`
	Order  order.Order `json:"order"`
}

// EndOrder ends an order: its devices are unbound and no longer evaluated.
type EndOrder struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	ID     string    `json:"id"`
	Reason string    `json:"reason"`
}

// AckAlarm acknowledges an alarm: someone has taken it.
type AckAlarm struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	ID   string    `json:"id"`
	Note string    `json:"note,omitempty"`
}

// AnnotateAlarm adds a note to an alarm (from the dispatch side, through a hook) without changing its
// state: a transition with event "annotated".
type AnnotateAlarm struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	ID   string    `json:"id"`
	Note string    `json:"note"`
}

// ResolveAlarm closes an alarm.
type ResolveAlarm struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	ID     string    `json:"id"`
	Reason string    `json:"reason,omitempty"`
}

// PluginState reports a plugin going down or coming back on a node. With What "delivery" it reports a
// hook that runs but cannot deliver (its receiver is unreachable), a fault of its own.
type PluginState struct {
	At     time.Time `json:"at"`
	Node   string    `json:"node"`
	Name   string    `json:"name"`
	Kind   string    `json:"kind"`
	Up     bool      `json:"up"`
	Reason string    `json:"reason,omitempty"`
	What   string    `json:"what,omitempty"`
}
