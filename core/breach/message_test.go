package breach

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/skjold-alarm/skjold/core/device"
)

// The messages as fmt writes them: the renderers must give exactly these texts.
func fmtDescribe(st *device.State) string { return fmt.Sprintf("%s %s", st.Role, st.Device) }

func fmtMetres(d float64) string {
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%.0f m", math.Round(d))
}

var fmtMessages = map[string]func(m message) string{
	"tamper":  func(m message) string { return fmtDescribe(m.st) + ": strap or case opened" },
	"battery": func(m message) string { return fmt.Sprintf("%s: battery at %d %%", fmtDescribe(m.st), m.n) },
	"approach": func(m message) string {
		what := m.x + m.what
		switch {
		case m.a <= 0:
			return fmt.Sprintf("offender %s has reached %s", m.dev, what)
		case m.n == 0:
			return fmt.Sprintf("offender %s is no longer approaching %s (%s away)", m.dev, what, fmtMetres(m.a))
		}
		return fmt.Sprintf("offender %s is approaching %s: %s away, closing at %.1f m/s, about %s",
			m.dev, what, fmtMetres(m.a), m.b, (time.Duration(m.c) * time.Second).Round(time.Second))
	},
	"breach": func(m message) string {
		return fmt.Sprintf("offender %s is %s inside exclusion zone %s", m.dev, fmtMetres(-m.a), m.what)
	},
	"warning": func(m message) string {
		return fmt.Sprintf("offender %s is %s from exclusion zone %s", m.dev, fmtMetres(m.a), m.what)
	},
	"inclusion": func(m message) string {
		return fmt.Sprintf("offender %s is %s outside zone %s where they must stay", m.dev, fmtMetres(m.a), m.what)
	},
	"dynamicBreach": func(m message) string {
		return fmt.Sprintf("offender %s is %s from protected person %s (limit %s)", m.dev, fmtMetres(m.a), m.what, fmtMetres(m.b))
	},
	"dynamicWarning": func(m message) string {
		return fmt.Sprintf("offender %s is %s from protected person %s (warning at %s)", m.dev, fmtMetres(m.a), m.what, fmtMetres(m.b))
	},
	"noSignal": func(m message) string {
		return fmt.Sprintf("%s: no report for %s", fmtDescribe(m.st), m.dur.Truncate(time.Second))
	},
	"noFix": func(m message) string {
		s := fmt.Sprintf("%s: no position for %s", fmtDescribe(m.st), m.dur.Truncate(time.Second))
		if m.st.Role == device.Protected && m.n == 1 {
			s += "; the dynamic zone cannot be checked"
		}
		return s
	},
	"delivery": func(m message) string {
		if m.n == 1 {
			return fmt.Sprintf("hook %s on %s delivers again", m.dev, m.x)
		}
		return fmt.Sprintf("hook %s on %s cannot deliver: %s", m.dev, m.x, m.y)
	},
	"plugin": func(m message) string {
		if m.n == 1 {
			return fmt.Sprintf("%s plugin %s on %s is running again", m.what, m.dev, m.x)
		}
		return fmt.Sprintf("%s plugin %s on %s is down: %s", m.what, m.dev, m.x, m.y)
	},
}

var renderers = map[string]func(b []byte, m message) []byte{
	"tamper": msgTamper, "battery": msgBattery, "approach": msgApproach, "breach": msgBreach, "warning": msgZoneWarning,
	"inclusion": msgInclusion, "dynamicBreach": msgDynamicBreach, "dynamicWarning": msgDynamicWarning,
	"noSignal": msgNoSignal, "noFix": msgNoFix, "delivery": msgDelivery, "plugin": msgPlugin,
}

func TestMessagesAsFmtWritesThem(t *testing.T) {
	names := make([]string, 0, len(renderers))
	for n := range renderers {
		names = append(names, n)
	}
	slices.Sort(names) // rapid's draws must not depend on map order
	special := []float64{0, math.Copysign(0, -1), 0.5, -0.5, 1.5, 2.5, -2.5, 1e15, -1e15, 1e300, math.Inf(1), math.Inf(-1), math.NaN(), 0.05, 0.15, 0.25}
	rapid.Check(t, func(t *rapid.T) {
		name := rapid.SampledFrom(names).Draw(t, "renderer")
		num := func(label string) float64 {
			if rapid.Bool().Draw(t, label+"special") {
				return rapid.SampledFrom(special).Draw(t, label)
			}
			return rapid.Float64Range(-1e6, 1e6).Draw(t, label)
		}
		m := message{
			st:   &device.State{Device: rapid.StringN(0, 12, -1).Draw(t, "device"), Role: rapid.SampledFrom([]device.Role{device.Offender, device.Protected}).Draw(t, "role")},
			dev:  rapid.StringN(0, 12, -1).Draw(t, "dev"),
			what: rapid.StringN(0, 12, -1).Draw(t, "what"),
			x:    rapid.StringN(0, 12, -1).Draw(t, "x"),
			y:    rapid.StringN(0, 12, -1).Draw(t, "y"),
			a:    num("a"), b: num("b"), c: num("c"),
			n:   rapid.IntRange(-2, 120).Draw(t, "n"),
			dur: time.Duration(rapid.Int64().Draw(t, "dur")),
		}
		m.render = renderers[name]
		want := fmtMessages[name](m)
		if got := m.String(); got != want {
			t.Fatalf("%s: %q, fmt writes %q", name, got, want)
		}
		used := []byte("left over from an earlier message")
		if got := string(m.render(used[:0], m)); got != want {
			t.Fatalf("%s into a used buffer: %q, want %q", name, got, want)
		}
	})
}
