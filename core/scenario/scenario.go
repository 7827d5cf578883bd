// Package scenario replays a described situation — orders, timed reports, operator actions — through
// the real evaluator and compares the alarm transitions with what the scenario expects. The library in
// docs/scenarios is the evaluator's executable specification; `skjold replay FILE` runs one.
package scenario

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/order"
)

// Scenario is one file of the library.
type Scenario struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Rule        string        `json:"rule"`
	Start       time.Time     `json:"start"`
	Until       Offset        `json:"until"`
	TickEvery   Offset        `json:"tick_every,omitempty"` // default 1s; "0s" disables ticks
	Config      *ConfigPatch  `json:"config,omitempty"`
	Orders      []order.Order `json:"orders"`
	Steps       []Step        `json:"steps"`
	Expect      []Expect      `json:"expect"`
	Ignore      []alarm.Kind  `json:"ignore,omitempty"`
}

// ConfigPatch overrides evaluator settings for one scenario.
type ConfigPatch struct {
	NoSignalAfter      *Offset  `json:"no_signal_after,omitempty"`
	NoFixAfter         *Offset  `json:"no_fix_after,omitempty"`
	ProtectedFixMaxAge *Offset  `json:"protected_fix_max_age,omitempty"`
	LateAfter          *Offset  `json:"late_after,omitempty"`
	BatteryLowPct      *int     `json:"battery_low_pct,omitempty"`
	HysteresisM        *float64 `json:"hysteresis_m,omitempty"`
	ExitFixes          *int     `json:"exit_fixes,omitempty"`
	PoorAccuracyM      *float64 `json:"poor_accuracy_m,omitempty"`
	EscalateAfter      []Offset `json:"escalate_after,omitempty"`
	NoEscalation       bool     `json:"no_escalation,omitempty"`
}

// Offset is a duration after the scenario's start, written like "90s" or "2m30s".
type Offset time.Duration

func (o *Offset) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("offset must be a string like \"90s\": %w", err)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*o = Offset(d)
	return nil
}

func (o Offset) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(o).String()) }

// Step is something that happens at an offset.
type Step struct {
	At Offset `json:"at"`
	// Obs are reports received at At. A report's time is At minus its fix_age.
	Obs []Report `json:"obs,omitempty"`
	// Walk expands to reports every interval from At along a straight line.
	Walk *Walk `json:"walk,omitempty"`
	// Ack and Resolve act on the oldest open alarm of a kind (and zone, when given).
	Ack     *Action `json:"ack,omitempty"`
	Resolve *Action `json:"resolve,omitempty"`
	// Plugin reports a plugin down or up.
	Plugin *breach.PluginState `json:"plugin,omitempty"`
	// Batch sends the step's reports as one batch (a tag emptying its buffer) instead of one by one.
	Batch bool `json:"batch,omitempty"`
}

// Report is one observation in a scenario.
type Report struct {
	Device     string       `json:"device"`
	Lat        *float64     `json:"lat,omitempty"`
	Lon        *float64     `json:"lon,omitempty"`
	AccuracyM  *float64     `json:"accuracy_m,omitempty"`
	SpeedMps   *float64     `json:"speed_mps,omitempty"`
	HeadingDeg *float64     `json:"heading_deg,omitempty"`
	BatteryPct *int         `json:"battery_pct,omitempty"`
	Strap      device.Strap `json:"strap,omitempty"`
	Charging   *bool        `json:"charging,omitempty"`
	FixAge     Offset       `json:"fix_age,omitempty"`
}

// Walk moves a device at a constant speed, reporting every IntervalS seconds until it arrives.
type Walk struct {
	Device    string     `json:"device"`
	From      [2]float64 `json:"from"` // [lon, lat]
	To        [2]float64 `json:"to"`
	SpeedMps  float64    `json:"speed_mps"`
	IntervalS float64    `json:"interval_s"`
	AccuracyM float64    `json:"accuracy_m"`
}

// Action names an alarm by kind and zone.
type Action struct {
	Kind   alarm.Kind `json:"kind"`
	ZoneID string     `json:"zone_id,omitempty"`
	By     string     `json:"by"`
}

// Expect is one expected transition. Optional fields are checked only when given.
type Expect struct {
	Kind        alarm.Kind      `json:"kind"`
	Event       alarm.Event     `json:"event"`
	ZoneID      string          `json:"zone_id,omitempty"`
	Device      string          `json:"device,omitempty"`
	Certainty   alarm.Certainty `json:"certainty,omitempty"`
	Severity    alarm.Severity  `json:"severity,omitempty"`
	Late        *bool           `json:"late,omitempty"`
	Breaches30d *int            `json:"breaches_30d,omitempty"`
	After       *Offset         `json:"after,omitempty"`
	Before      *Offset         `json:"before,omitempty"`
}

// Load reads and checks a scenario file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Name == "" || s.Start.IsZero() || s.Until <= 0 || len(s.Orders) == 0 {
		return nil, fmt.Errorf("%s: name, start, until and at least one order are required", path)
	}
	return &s, nil
}

// Transition is one transition as the replay saw it.
type Transition struct {
	Offset time.Duration
	Change alarm.Change
}

func (t Transition) String() string {
	a := t.Change.Alarm
	s := fmt.Sprintf("%7s %-16s %-9s zone=%s certainty=%s severity=%s", t.Offset, a.Kind, t.Change.Transition.Event, a.ZoneID, a.Certainty, a.Severity)
	if a.Late {
		s += " late"
	}
	if a.Breaches30d > 0 {
		s += fmt.Sprintf(" breaches_30d=%d", a.Breaches30d)
	}
	return s
}

// Result is the outcome of one replay.
type Result struct {
	Name        string
	Pass        bool
	Problems    []string
	Transitions []Transition // every transition, ignored kinds included
}

// Run replays the scenario through a fresh evaluator.
func Run(s *Scenario) Result {
	cfg := breach.DefaultConfig()
	s.Config.apply(&cfg)
	e := breach.New(cfg)
	res := Result{Name: s.Name, Pass: true}
	fail := func(format string, args ...any) {
		res.Pass = false
		res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
	}
	collect := func(at time.Time) {
		for _, ch := range e.Finish().Changes {
			res.Transitions = append(res.Transitions, Transition{Offset: at.Sub(s.Start), Change: ch})
		}
	}
	for i, o := range s.Orders {
		e.Begin()
		if _, err := e.PutOrder(breach.PutOrder{At: s.Start, By: "scenario", Order: o}); err != nil {
			fail("orders[%d]: %v", i, err)
			return res
		}
		collect(s.Start)
	}
	for _, ev := range s.timeline() {
		at := s.Start.Add(ev.at)
		e.Begin()
		switch {
		case ev.tick:
			e.Tick(breach.Tick{At: at})
		case ev.obs != nil:
			e.Observe(breach.Observations{At: at, By: "scenario", Obs: ev.obs})
		case ev.step.Ack != nil || ev.step.Resolve != nil:
			act, resolve := ev.step.Ack, false
			if act == nil {
				act, resolve = ev.step.Resolve, true
			}
			id := oldestOpen(e, act)
			if id == "" {
				fail("at %s: no open %s alarm to act on", time.Duration(ev.at), act.Kind)
				break
			}
			var err error
			if resolve {
				_, err = e.Resolve(breach.ResolveAlarm{At: at, By: act.By, ID: id})
			} else {
				_, err = e.Ack(breach.AckAlarm{At: at, By: act.By, ID: id})
			}
			if err != nil {
				fail("at %s: %v", time.Duration(ev.at), err)
			}
		case ev.step.Plugin != nil:
			p := *ev.step.Plugin
			p.At = at
			e.PluginState(p)
		}
		collect(at)
	}
	res.compare(s)
	return res
}

func (c *ConfigPatch) apply(cfg *breach.Config) {
	if c == nil {
		return
	}
	dur := func(src *Offset, dst *time.Duration) {
		if src != nil {
			*dst = time.Duration(*src)
		}
	}
	dur(c.NoSignalAfter, &cfg.NoSignalAfter)
	dur(c.NoFixAfter, &cfg.NoFixAfter)
	dur(c.ProtectedFixMaxAge, &cfg.ProtectedFixMaxAge)
	dur(c.LateAfter, &cfg.LateAfter)
	if c.BatteryLowPct != nil {
		cfg.BatteryLowPct, cfg.BatteryRestorePct = *c.BatteryLowPct, *c.BatteryLowPct+5
	}
	if c.HysteresisM != nil {
		cfg.HysteresisM = *c.HysteresisM
	}
	if c.ExitFixes != nil {
		cfg.ExitFixes = *c.ExitFixes
	}
	if c.PoorAccuracyM != nil {
		cfg.PoorAccuracyM = *c.PoorAccuracyM
	}
	if c.NoEscalation {
		cfg.EscalateAfter = nil
	}
	if len(c.EscalateAfter) > 0 {
		cfg.EscalateAfter = nil
		for _, o := range c.EscalateAfter {
			cfg.EscalateAfter = append(cfg.EscalateAfter, time.Duration(o))
		}
	}
}

func oldestOpen(e *breach.Evaluator, a *Action) string {
	for _, al := range e.Alarms(true, "") {
		if al.Kind == a.Kind && (a.ZoneID == "" || al.ZoneID == a.ZoneID) {
			return al.ID
		}
	}
	return ""
}

type event struct {
	at   time.Duration
	seq  int // order among events at the same time: steps in file order, then the tick
	tick bool
	obs  []device.Observation
	step *Step
}

// timeline expands steps and ticks into events in time order.
func (s *Scenario) timeline() []event {
	var evs []event
	seq := 0
	add := func(ev event) {
		ev.seq = seq
		seq++
		evs = append(evs, ev)
	}
	for i := range s.Steps {
		st := &s.Steps[i]
		at := time.Duration(st.At)
		if len(st.Obs) > 0 {
			var obs []device.Observation
			for _, r := range st.Obs {
				obs = append(obs, r.observation(s.Start.Add(at)))
			}
			if st.Batch {
				add(event{at: at, obs: obs})
			} else {
				for _, o := range obs {
					add(event{at: at, obs: []device.Observation{o}})
				}
			}
		}
		if w := st.Walk; w != nil {
			for _, p := range w.points() {
				t := at + p.after
				lat, lon, acc := p.lat, p.lon, w.AccuracyM
				add(event{at: t, obs: []device.Observation{{Device: w.Device, Time: s.Start.Add(t), Lat: &lat, Lon: &lon, AccuracyM: &acc}}})
			}
		}
		if st.Ack != nil || st.Resolve != nil || st.Plugin != nil {
			add(event{at: at, step: st})
		}
	}
	every := time.Second
	if s.TickEvery != 0 {
		every = time.Duration(s.TickEvery)
	}
	if every > 0 {
		for t := every; t <= time.Duration(s.Until); t += every {
			evs = append(evs, event{at: t, seq: math.MaxInt, tick: true})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].at != evs[j].at {
			return evs[i].at < evs[j].at
		}
		return evs[i].seq < evs[j].seq
	})
	var out []event
	for _, ev := range evs {
		if ev.at <= time.Duration(s.Until) {
			out = append(out, ev)
		}
	}
	return out
}

func (r Report) observation(at time.Time) device.Observation {
	return device.Observation{
		Device: r.Device, Time: at.Add(-time.Duration(r.FixAge)),
		Lat: r.Lat, Lon: r.Lon, AccuracyM: r.AccuracyM, SpeedMps: r.SpeedMps, HeadingDeg: r.HeadingDeg,
		BatteryPct: r.BatteryPct, Strap: r.Strap, Charging: r.Charging,
	}
}

type walkPoint struct {
	after    time.Duration
	lat, lon float64
}

// points interpolates the walk on a local flat approximation, which is ample for a few kilometres.
func (w *Walk) points() []walkPoint {
	lat0 := (w.From[1] + w.To[1]) / 2
	mx := 111320 * math.Cos(lat0*math.Pi/180)
	dx, dy := (w.To[0]-w.From[0])*mx, (w.To[1]-w.From[1])*111320
	length := math.Hypot(dx, dy)
	if w.SpeedMps <= 0 || w.IntervalS <= 0 {
		return nil
	}
	total := length / w.SpeedMps
	var out []walkPoint
	for t := 0.0; ; t += w.IntervalS {
		f := math.Min(t/total, 1)
		out = append(out, walkPoint{
			after: time.Duration(t * float64(time.Second)),
			lat:   w.From[1] + f*(w.To[1]-w.From[1]),
			lon:   w.From[0] + f*(w.To[0]-w.From[0]),
		})
		if f >= 1 {
			return out
		}
	}
}

func (r *Result) compare(s *Scenario) {
	ignored := map[alarm.Kind]bool{}
	for _, k := range s.Ignore {
		ignored[k] = true
	}
	var got []Transition
	for _, t := range r.Transitions {
		if !ignored[t.Change.Alarm.Kind] {
			got = append(got, t)
		}
	}
	for i := 0; i < len(s.Expect) || i < len(got); i++ {
		switch {
		case i >= len(got):
			r.Pass = false
			r.Problems = append(r.Problems, fmt.Sprintf("expected #%d %s %s, but nothing more happened", i+1, s.Expect[i].Kind, s.Expect[i].Event))
		case i >= len(s.Expect):
			r.Pass = false
			r.Problems = append(r.Problems, fmt.Sprintf("unexpected #%d: %s", i+1, got[i]))
		default:
			if msg := s.Expect[i].mismatch(got[i]); msg != "" {
				r.Pass = false
				r.Problems = append(r.Problems, fmt.Sprintf("#%d: %s (got %s)", i+1, msg, strings.TrimSpace(got[i].String())))
			}
		}
	}
}

func (x Expect) mismatch(t Transition) string {
	a := t.Change.Alarm
	switch {
	case a.Kind != x.Kind || t.Change.Transition.Event != x.Event:
		return fmt.Sprintf("expected %s %s", x.Kind, x.Event)
	case x.ZoneID != "" && a.ZoneID != x.ZoneID:
		return fmt.Sprintf("expected zone %s", x.ZoneID)
	case x.Device != "" && a.Device != x.Device:
		return fmt.Sprintf("expected device %s", x.Device)
	case x.Certainty != "" && a.Certainty != x.Certainty:
		return fmt.Sprintf("expected certainty %s", x.Certainty)
	case x.Severity != "" && a.Severity != x.Severity:
		return fmt.Sprintf("expected severity %s", x.Severity)
	case x.Late != nil && a.Late != *x.Late:
		return fmt.Sprintf("expected late=%v", *x.Late)
	case x.Breaches30d != nil && a.Breaches30d != *x.Breaches30d:
		return fmt.Sprintf("expected breaches_30d=%d", *x.Breaches30d)
	case x.After != nil && t.Offset < time.Duration(*x.After):
		return fmt.Sprintf("expected after %s", time.Duration(*x.After))
	case x.Before != nil && t.Offset > time.Duration(*x.Before):
		return fmt.Sprintf("expected before %s", time.Duration(*x.Before))
	}
	return ""
}
