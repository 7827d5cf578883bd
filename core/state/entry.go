package state

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/skjold-alarm/skjold/core/breach"
)

// Type is the first byte of every log entry. The high bit marks a type that a node which does not know it
// may skip; an unknown type without it stops the node, so replicas never silently diverge during a
// rolling upgrade.
type Type byte

// Ignorable marks an entry type that older nodes may skip.
const Ignorable Type = 0x80

const (
	TypeObservations Type = 1
	TypeTick         Type = 2
	TypePutOrder     Type = 3
	TypeEndOrder     Type = 4
	TypeAckAlarm     Type = 5
	TypeResolveAlarm Type = 6
	TypePluginState  Type = 7
	TypeReceipt      Type = 8 | Ignorable
	// TypeAnnotateAlarm is not ignorable: it adds a transition, and a node that skipped it would number
	// the alarm's later transitions differently.
	TypeAnnotateAlarm Type = 9
)

// version is the payload encoding of this build. The second byte of an entry; a newer one stops the node.
const version byte = 1

// Receipt records that a hook has delivered every outbox item up to and including Seq.
type Receipt struct {
	Hook string `json:"hook"`
	Seq  uint64 `json:"seq"`
}

// Encode builds a log entry.
func Encode(t Type, payload any) ([]byte, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode entry type %d: %w", t, err)
	}
	return append([]byte{byte(t), version}, b...), nil
}

// Entry constructors for the node and tests.
func Observations(in breach.Observations) ([]byte, error)   { return Encode(TypeObservations, in) }
func Tick(in breach.Tick) ([]byte, error)                   { return Encode(TypeTick, in) }
func PutOrder(in breach.PutOrder) ([]byte, error)           { return Encode(TypePutOrder, in) }
func EndOrder(in breach.EndOrder) ([]byte, error)           { return Encode(TypeEndOrder, in) }
func AckAlarm(in breach.AckAlarm) ([]byte, error)           { return Encode(TypeAckAlarm, in) }
func ResolveAlarm(in breach.ResolveAlarm) ([]byte, error)   { return Encode(TypeResolveAlarm, in) }
func AnnotateAlarm(in breach.AnnotateAlarm) ([]byte, error) { return Encode(TypeAnnotateAlarm, in) }
func PluginState(in breach.PluginState) ([]byte, error)     { return Encode(TypePluginState, in) }
func ReceiptEntry(in Receipt) ([]byte, error)               { return Encode(TypeReceipt, in) }

// ErrUnknownEntry is returned (and stops the node) for an entry this build cannot apply.
var ErrUnknownEntry = errors.New("unknown log entry")

// handler applies one decoded entry and returns its result.
type handler func(m *Machine, payload []byte) (any, error)

var handlers = map[Type]handler{}

func register[T any](t Type, apply func(m *Machine, in T) any) {
	handlers[t] = func(m *Machine, payload []byte) (any, error) {
		var in T
		if err := json.Unmarshal(payload, &in); err != nil {
			return nil, fmt.Errorf("decode entry type %d: %w", t, err)
		}
		return apply(m, in), nil
	}
}

// ObservationsResult is the result of an observations entry.
type ObservationsResult struct {
	Accepted int `json:"accepted"`
	Dropped  int `json:"dropped"`
}

func init() {
	register(TypeObservations, func(m *Machine, in breach.Observations) any {
		a, d := m.ev.Observe(in)
		return ObservationsResult{Accepted: a, Dropped: d}
	})
	register(TypeTick, func(m *Machine, in breach.Tick) any {
		m.ev.Tick(in)
		m.pruneBefore, m.pruneMaxSeq = m.ev.Now().Add(-OutboxRetention), m.outboxSeq
		return nil
	})
	register(TypePutOrder, func(m *Machine, in breach.PutOrder) any { return result(m.ev.PutOrder(in)) })
	register(TypeEndOrder, func(m *Machine, in breach.EndOrder) any { return result(m.ev.EndOrder(in)) })
	register(TypeAckAlarm, func(m *Machine, in breach.AckAlarm) any { return result(m.ev.Ack(in)) })
	register(TypeResolveAlarm, func(m *Machine, in breach.ResolveAlarm) any { return result(m.ev.Resolve(in)) })
	register(TypeAnnotateAlarm, func(m *Machine, in breach.AnnotateAlarm) any { return result(m.ev.Annotate(in)) })
	register(TypePluginState, func(m *Machine, in breach.PluginState) any { m.ev.PluginState(in); return nil })
	register(TypeReceipt, func(m *Machine, in Receipt) any {
		if in.Seq > m.cursors[in.Hook] {
			m.cursors[in.Hook] = in.Seq
			m.dirtyCursors[in.Hook] = struct{}{}
		}
		return nil
	})
}

func result[T any](v T, err error) any {
	if err != nil {
		return err
	}
	return v
}
