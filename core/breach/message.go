package breach

import (
	"math"
	"strconv"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
)

// message is an alarm's text, rendered only when an alarm is raised, updated or restored: a static
// render function and its values, so that evaluating a fix that changes nothing allocates nothing. The
// renderers append to a buffer, so that refreshing an open alarm whose text is unchanged allocates
// nothing either.
type message struct {
	render  func(b []byte, m message) []byte
	st      *device.State
	dev     string
	what    string
	x, y    string
	a, b, c float64
	n       int
	dur     time.Duration
}

func (m *message) String() string {
	if m.render == nil {
		return ""
	}
	return string(m.render(nil, *m))
}

// setMessage sets an alarm's text, allocating only when it changes.
func (e *Evaluator) setMessage(a *alarm.Alarm, m *message) {
	if m.render == nil {
		a.Message = ""
		return
	}
	e.msgBuf = m.render(e.msgBuf[:0], *m)
	if string(e.msgBuf) != a.Message {
		a.Message = string(e.msgBuf)
	}
}

func appendDescribe(b []byte, st *device.State) []byte {
	b = append(b, st.Role...)
	b = append(b, ' ')
	return append(b, st.Device...)
}

// appendMetres appends a distance as whole metres, "%.0f m" of the rounded value, negative as 0.
func appendMetres(b []byte, d float64) []byte {
	if d < 0 {
		d = 0
	}
	b = appendFloat(b, math.Round(d), 0)
	return append(b, " m"...)
}

// appendFloat appends v as fmt's %.<prec>f does (fmt formats floats with strconv, signs, NaN and
// infinities included).
func appendFloat(b []byte, v float64, prec int) []byte {
	return strconv.AppendFloat(b, v, 'f', prec, 64)
}

func msgTamper(b []byte, m message) []byte {
	return append(appendDescribe(b, m.st), ": strap or case opened"...)
}

func msgBattery(b []byte, m message) []byte {
	b = append(appendDescribe(b, m.st), ": battery at "...)
	b = strconv.AppendInt(b, int64(m.n), 10)
	return append(b, " %"...)
}

// msgApproach: x and what name the target ("exclusion zone " and its id); a distance, b closing speed,
// c ETA; n = 1 while approaching.
func msgApproach(b []byte, m message) []byte {
	b = append(b, "offender "...)
	b = append(b, m.dev...)
	switch {
	case m.a <= 0:
		b = append(b, " has reached "...)
		b = append(b, m.x...)
		return append(b, m.what...)
	case m.n == 0:
		b = append(b, " is no longer approaching "...)
		b = append(b, m.x...)
		b = append(b, m.what...)
		b = append(b, " ("...)
		b = appendMetres(b, m.a)
		return append(b, " away)"...)
	}
	b = append(b, " is approaching "...)
	b = append(b, m.x...)
	b = append(b, m.what...)
	b = append(b, ": "...)
	b = appendMetres(b, m.a)
	b = append(b, " away, closing at "...)
	b = appendFloat(b, m.b, 1)
	b = append(b, " m/s, about "...)
	return append(b, (time.Duration(m.c) * time.Second).Round(time.Second).String()...)
}

func msgBreach(b []byte, m message) []byte {
	b = append(b, "offender "...)
	b = append(b, m.dev...)
	b = append(b, " is "...)
	b = appendMetres(b, -m.a)
	b = append(b, " inside exclusion zone "...)
	return append(b, m.what...)
}

func msgZoneWarning(b []byte, m message) []byte {
	b = append(b, "offender "...)
	b = append(b, m.dev...)
	b = append(b, " is "...)
	b = appendMetres(b, m.a)
	b = append(b, " from exclusion zone "...)
	return append(b, m.what...)
}

func msgInclusion(b []byte, m message) []byte {
	b = append(b, "offender "...)
	b = append(b, m.dev...)
	b = append(b, " is "...)
	b = appendMetres(b, m.a)
	b = append(b, " outside zone "...)
	b = append(b, m.what...)
	return append(b, " where they must stay"...)
}

func msgDynamicBreach(b []byte, m message) []byte { return appendDynamic(b, m, " (limit ") }

func msgDynamicWarning(b []byte, m message) []byte { return appendDynamic(b, m, " (warning at ") }

// appendDynamic: offender dev is a metres from protected person what (<threshold> b metres).
func appendDynamic(b []byte, m message, threshold string) []byte {
	b = append(b, "offender "...)
	b = append(b, m.dev...)
	b = append(b, " is "...)
	b = appendMetres(b, m.a)
	b = append(b, " from protected person "...)
	b = append(b, m.what...)
	b = append(b, threshold...)
	b = appendMetres(b, m.b)
	return append(b, ')')
}

func msgNoSignal(b []byte, m message) []byte {
	b = append(appendDescribe(b, m.st), ": no report for "...)
	return append(b, m.dur.Truncate(time.Second).String()...)
}

// msgNoFix: n = 1 when the order has a dynamic zone.
func msgNoFix(b []byte, m message) []byte {
	b = append(appendDescribe(b, m.st), ": no position for "...)
	b = append(b, m.dur.Truncate(time.Second).String()...)
	if m.st.Role == device.Protected && m.n == 1 {
		b = append(b, "; the dynamic zone cannot be checked"...)
	}
	return b
}

// msgDelivery: dev the hook, x the node, y the reason; n = 1 when it delivers again.
func msgDelivery(b []byte, m message) []byte {
	b = append(b, "hook "...)
	b = append(b, m.dev...)
	b = append(b, " on "...)
	b = append(b, m.x...)
	if m.n == 1 {
		return append(b, " delivers again"...)
	}
	b = append(b, " cannot deliver: "...)
	return append(b, m.y...)
}

// msgPlugin: dev the plugin, what its kind, x the node, y the reason; n = 1 when it is back.
func msgPlugin(b []byte, m message) []byte {
	b = append(b, m.what...)
	b = append(b, " plugin "...)
	b = append(b, m.dev...)
	b = append(b, " on "...)
	b = append(b, m.x...)
	if m.n == 1 {
		return append(b, " is running again"...)
	}
	b = append(b, " is down: "...)
	return append(b, m.y...)
}
