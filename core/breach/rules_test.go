package breach

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/order"
)

// One degree of latitude is about 111.3 km here; 0.0001° ≈ 11.1 m. The square's southern edge is 59.910.

func firstOf(chs []alarm.Change, k alarm.Kind) *alarm.Alarm {
	for i := range chs {
		if chs[i].Alarm.Kind == k {
			return &chs[i].Alarm
		}
	}
	return nil
}

func TestCertaintyFromAccuracy(t *testing.T) {
	cases := []struct {
		name string
		lat  float64 // the square spans 59.910–59.911, so its centre is ~55 m from the edges
		acc  float64
		want alarm.Certainty
	}{
		{"accurate, deep inside", 59.9105, 5, alarm.Certain},
		{"circle crosses the edge", 59.9101, 30, alarm.Probable},
		{"poor fix never certain", 59.9105, 150, alarm.Probable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEval(t, testOrder(square()))
			// Shallow fixes raise on the second report; a deep one on the first.
			chs := observe(e, fix(offender, t0, c.lat, 10.751, c.acc))
			if firstOf(chs, alarm.Breach) == nil {
				chs = observe(e, fix(offender, t0.Add(10*time.Second), c.lat, 10.751, c.acc))
			}
			a := firstOf(chs, alarm.Breach)
			if a == nil || a.Certainty != c.want {
				t.Fatalf("breach = %+v, want certainty %s", a, c.want)
			}
		})
	}
	// A probable breach that becomes certain says so.
	e := newEval(t, testOrder(square()))
	observe(e, fix(offender, t0, 59.9101, 10.751, 30))
	observe(e, fix(offender, t0.Add(5*time.Second), 59.9101, 10.751, 30))
	chs := observe(e, fix(offender, t0.Add(10*time.Second), 59.9105, 10.751, 5))
	sameEvents(t, "now certain", only(chs, alarm.Breach), ev{alarm.Breach, alarm.EventUpdated})
	if chs[0].Alarm.Certainty != alarm.Certain || chs[0].Transition.Note != "now certain" {
		t.Fatalf("%+v", chs[0])
	}
}

// Walking along the boundary with GPS noise of ±10 m raises one alarm, not dozens.
// One shallow fix inside is not enough; two in a row are, and a deep one is at once.
func TestShallowBreachNeedsASecondFix(t *testing.T) {
	e := newEval(t, testOrder(square()))
	observe(e, fix(offender, t0, 59.900, 10.751, 10))
	sameEvents(t, "an outlier 20 m inside", only(observe(e, fix(offender, t0.Add(time.Minute), 59.9102, 10.751, 10)), alarm.Breach))
	sameEvents(t, "back outside", only(observe(e, fix(offender, t0.Add(2*time.Minute), 59.900, 10.751, 10)), alarm.Breach))
	sameEvents(t, "inside", only(observe(e, fix(offender, t0.Add(3*time.Minute), 59.9102, 10.751, 10)), alarm.Breach))
	chs := only(observe(e, fix(offender, t0.Add(4*time.Minute), 59.9102, 10.751, 10)), alarm.Breach)
	sameEvents(t, "still inside", chs, ev{alarm.Breach, alarm.EventRaised})
	if chs[0].Alarm.Certainty != alarm.Certain {
		t.Fatalf("two fixes with their circles inside: %s", chs[0].Alarm.Certainty)
	}
	cfg := DefaultConfig()
	cfg.EnterFixes = 1
	e1 := New(cfg)
	e1.PutOrder(PutOrder{At: t0, Order: testOrder(square())})
	chs = only(observe(e1, fix(offender, t0, 59.9102, 10.751, 10)), alarm.Breach)
	if len(chs) != 1 || chs[0].Alarm.Certainty != alarm.Probable {
		t.Fatalf("enter_fixes = 1: %v", events(chs))
	}
}

func TestHysteresisAlongTheBoundary(t *testing.T) {
	e := newEval(t, testOrder(square()))
	var all []alarm.Change
	noise := []float64{-8, 6, -3, 9, -10, 4, 7, -6, 10, -2, 5, -9, 8, -4, 3, -7, 10, -5, 2, -10}
	for i, n := range noise {
		lat := 59.910 + n/111300
		all = append(all, observe(e, fix(offender, t0.Add(time.Duration(i)*5*time.Second), lat, 10.7505+float64(i)*0.00005, 8))...)
	}
	breaches := only(all, alarm.Breach)
	// One alarm; at most one update when it becomes certain; never restored and raised again.
	if len(breaches) == 0 || breaches[0].Transition.Event != alarm.EventRaised || len(breaches) > 2 {
		t.Fatalf("along the edge: %v", events(breaches))
	}
	for _, b := range breaches[1:] {
		if b.Transition.Event != alarm.EventUpdated || b.Transition.Note != "now certain" || b.Alarm.ID != breaches[0].Alarm.ID {
			t.Fatalf("along the edge: %v", events(breaches))
		}
	}
	a, _ := e.Alarm(breaches[0].Alarm.ID)
	if !a.Active {
		t.Fatal("the breach was restored while the offender walked on the edge")
	}
	// Two fixes clearly out (beyond the 15 m margin) end it.
	observe(e, fix(offender, t0.Add(200*time.Second), 59.9097, 10.751, 8))
	sameEvents(t, "clearly out", only(observe(e, fix(offender, t0.Add(205*time.Second), 59.9097, 10.751, 8)), alarm.Breach),
		ev{alarm.Breach, alarm.EventRestored})
}

func TestApproachBeforeTheZone(t *testing.T) {
	e := newEval(t, testOrder(square()))
	// Walking north at ~1.5 m/s from ~1.5 km south; fixes every 10 s. The lead time is 10 minutes, so
	// the approach alarm comes at about 900 m, long before the 200 m warning.
	var raised *alarm.Alarm
	var distAtRaise float64
	for i := 0; i < 120 && raised == nil; i++ {
		dist := 1500 - float64(i)*15
		lat := 59.910 - dist/111300
		chs := observe(e, fix(offender, t0.Add(time.Duration(i)*10*time.Second), lat, 10.751, 8))
		if w := firstOf(chs, alarm.Warning); w != nil {
			t.Fatalf("warning before approach at %.0f m", dist)
		}
		if a := firstOf(chs, alarm.Approach); a != nil {
			raised, distAtRaise = a, dist
		}
	}
	if raised == nil {
		t.Fatal("no approach alarm")
	}
	if distAtRaise > 905 || distAtRaise < 850 || raised.ETAS == nil || *raised.ETAS > 600 || raised.ClosingMps == nil || *raised.ClosingMps < 1.4 || *raised.ClosingMps > 1.6 {
		t.Fatalf("approach at %.0f m: eta %v closing %v", distAtRaise, raised.ETAS, raised.ClosingMps)
	}
	if raised.Class != alarm.Police || raised.ZoneID != "home" {
		t.Fatalf("approach alarm %+v", raised)
	}
	// Standing still far away raises nothing.
	e2 := newEval(t, testOrder(square()))
	for i := 0; i < 20; i++ {
		if chs := observe(e2, fix(offender, t0.Add(time.Duration(i)*10*time.Second), 59.903, 10.751, 8)); len(chs) != 0 {
			t.Fatalf("stationary offender: %v", events(chs))
		}
	}
}

func TestApproachToAProtectedPerson(t *testing.T) {
	o := testOrder(square())
	o.DynamicZone = &order.DynamicZone{RadiusM: 200}
	o.ApproachLeadS = 120
	e := newEval(t, o)
	observe(e, fix(protected, t0, 59.95, 10.80, 5))
	var got *alarm.Alarm
	for i := 0; i < 60 && got == nil; i++ {
		// Driving toward them at 10 m/s from 3 km south.
		lat := 59.95 - (3000-float64(i)*100)/111300
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		observe(e, fix(protected, at, 59.95, 10.80, 5))
		got = firstOf(observe(e, fix(offender, at, lat, 10.80, 8)), alarm.Approach)
	}
	if got == nil || got.ZoneID != "dynamic:"+protected || got.ETAS == nil || *got.ETAS > 120 {
		t.Fatalf("approach to the protected person: %+v", got)
	}
}

func TestLateBatchIsEvaluatedInFixOrderAndMarkedLate(t *testing.T) {
	e := newEval(t, testOrder(square()))
	observe(e, fix(offender, t0, 59.900, 10.751, 5))
	// Out of coverage for ten minutes; the tag then sends its buffer in one batch, newest first.
	at := t0.Add(15 * time.Minute)
	batch := []device.Observation{
		fix(offender, t0.Add(9*time.Minute), 59.9105, 10.751, 5),
		fix(offender, t0.Add(8*time.Minute), 59.9085, 10.751, 5),
		fix(offender, t0.Add(7*time.Minute), 59.905, 10.751, 5),
	}
	e.Begin()
	e.Observe(Observations{At: at, Obs: batch})
	fx := e.Finish()
	sameEvents(t, "buffered walk in", only(fx.Changes, alarm.Warning, alarm.Breach), ev{alarm.Warning, alarm.EventRaised}, ev{alarm.Breach, alarm.EventRaised})
	b := firstOf(fx.Changes, alarm.Breach)
	if !b.Late || b.LateByS != 360 || !b.Position.Time.Equal(t0.Add(9*time.Minute)) {
		t.Fatalf("breach from a buffered fix: late=%v by %vs at %v", b.Late, b.LateByS, b.Position.Time)
	}
	full, _ := e.Alarm(b.ID)
	if len(full.Evidence) < 3 {
		t.Fatalf("evidence has %d fixes, want the track before the breach too", len(full.Evidence))
	}
	// A current fix inside clears the late mark.
	observe(e, fix(offender, at, 59.9105, 10.751, 5))
	if a, _ := e.Alarm(b.ID); a.Late {
		t.Fatal("still marked late after a current fix")
	}
}

func TestRepetitionRaisesSeverity(t *testing.T) {
	e := newEval(t, testOrder(square()))
	at := t0
	var last []alarm.Change
	for round := 1; round <= 3; round++ {
		at = at.Add(24 * time.Hour)
		last = observe(e, fix(offender, at, 59.9105, 10.751, 5))
		b := firstOf(last, alarm.Breach)
		if b == nil || b.Breaches30d != round {
			t.Fatalf("round %d: breach %+v", round, b)
		}
		for _, c := range last {
			e.Begin()
			e.Resolve(ResolveAlarm{At: at, By: "op", ID: c.Alarm.ID})
			e.Finish()
		}
		observe(e, fix(offender, at.Add(time.Minute), 59.900, 10.751, 5))
	}
	if w := firstOf(last, alarm.Warning); w == nil || w.Severity != alarm.Critical {
		t.Fatalf("warning after three breaches in 30 days: %+v", w)
	}
	// Thirty days later the history has expired.
	far := at.Add(31 * 24 * time.Hour)
	b := firstOf(observe(e, fix(offender, far, 59.9105, 10.751, 5)), alarm.Breach)
	if b == nil || b.Breaches30d != 1 {
		t.Fatalf("breach after a quiet month: %+v", b)
	}
}

func TestStaleProtectedFixRaisesNoFix(t *testing.T) {
	o := testOrder(square())
	o.DynamicZone = &order.DynamicZone{RadiusM: 100}
	e := newEval(t, o)
	observe(e, fix(protected, t0, 59.95, 10.80, 10))
	observe(e, fix(offender, t0, 59.90, 10.75, 10))
	// The unit keeps reporting, but without a position.
	limit := DefaultConfig().ProtectedFixMaxAge
	for s := time.Duration(0); s <= limit; s += time.Minute {
		observe(e, device.Observation{Device: protected, Time: t0.Add(s)})
		observe(e, fix(offender, t0.Add(s), 59.90, 10.75, 10))
	}
	fx := tick(e, t0.Add(limit))
	sameEvents(t, "protected fix too old", fx.Changes, ev{alarm.NoFix, alarm.EventRaised})
	if a := fx.Changes[0].Alarm; a.Device != protected || a.Class != alarm.Technical {
		t.Fatalf("no_fix = %+v", a)
	}
	sameEvents(t, "fix again", only(observe(e, fix(protected, t0.Add(limit+time.Second), 59.95, 10.80, 10)), alarm.NoFix), ev{alarm.NoFix, alarm.EventRestored})
}

func TestOrderApproachLeadValidated(t *testing.T) {
	o := testOrder(square())
	o.ApproachLeadS = -1
	if fe := o.Validate(); fe == nil || fe.Field != "approach_lead_s" {
		t.Fatalf("%v", fe)
	}
	_ = json.Marshal
}

func TestDeviceCommands(t *testing.T) {
	o := testOrder(square())
	o.DynamicZone = &order.DynamicZone{RadiusM: 100, WarningM: 300}
	o.ApproachLeadS = 1 // this test jumps between places; approach alarms would warn as well
	e := newEval(t, o)
	observe(e, fix(protected, t0, 59.95, 10.80, 5))
	cmds := func(obs device.Observation) []string {
		e.Begin()
		e.Observe(Observations{At: obs.Time, Obs: []device.Observation{obs}})
		var out []string
		for _, c := range e.Finish().Commands {
			s := c.Kind + ">" + c.Device
			if v := c.Args["interval_s"]; v != "" {
				s += ":" + v
			}
			out = append(out, s)
		}
		return out
	}
	same := func(step string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: commands %v, want %v", step, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: commands %v, want %v", step, got, want)
			}
		}
	}
	same("far away", cmds(fix(offender, t0, 59.900, 10.751, 5)))
	same("in the buffer: vibrate and report faster", cmds(fix(offender, t0.Add(time.Minute), 59.9085, 10.751, 5)),
		"vibrate>"+offender, "report_interval>"+offender+":10")
	same("away again", cmds(fix(offender, t0.Add(2*time.Minute), 59.900, 10.751, 5)))
	same("still away: back to the normal rate", cmds(fix(offender, t0.Add(3*time.Minute), 59.899, 10.751, 5)),
		"report_interval>"+offender+":60")
	// Near the protected person (167 m, warning at 300): the offender vibrates, the unit is warned.
	same("near the protected person", cmds(fix(offender, t0.Add(4*time.Minute), 59.9515, 10.80, 5)),
		"vibrate>"+offender, "report_interval>"+offender+":10", "warn>"+protected)
	same("within the radius", cmds(fix(offender, t0.Add(5*time.Minute), 59.9505, 10.80, 5)),
		"vibrate>"+offender, "warn>"+protected)
}

func TestApproachWarnsTheProtectedPerson(t *testing.T) {
	e := newEval(t, testOrder(square()))
	var warned []string
	for i := 0; i < 120 && len(warned) == 0; i++ {
		e.Begin()
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		lat := 59.910 - (1500-float64(i)*15)/111300
		e.Observe(Observations{At: at, Obs: []device.Observation{fix(offender, at, lat, 10.751, 8)}})
		for _, c := range e.Finish().Commands {
			if c.Kind == device.CommandWarn {
				warned = append(warned, c.Device)
			}
		}
	}
	if len(warned) != 1 || warned[0] != protected {
		t.Fatalf("warned %v", warned)
	}
}

func TestEscalationWhileNobodyAcknowledges(t *testing.T) {
	e := newEval(t, testOrder(square()))
	chs := observe(e, fix(offender, t0, 59.9105, 10.751, 5))
	breach := firstOf(chs, alarm.Breach)
	warn := firstOf(chs, alarm.Warning)
	// Someone takes the warning; nobody takes the breach.
	e.Begin()
	e.Ack(AckAlarm{At: t0.Add(time.Minute), By: "op", ID: warn.ID})
	e.Finish()
	var esc []alarm.Change
	for s := time.Duration(0); s <= 6*time.Minute; s += time.Second {
		esc = append(esc, only(tick(e, t0.Add(s)).Changes, alarm.Breach, alarm.Warning)...)
	}
	sameEvents(t, "unacknowledged breach", esc, ev{alarm.Breach, alarm.EventEscalated}, ev{alarm.Breach, alarm.EventEscalated})
	if !esc[0].Transition.At.Equal(t0.Add(2*time.Minute)) || !esc[1].Transition.At.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("escalated at %s and %s", esc[0].Transition.At, esc[1].Transition.At)
	}
	if esc[1].Alarm.Escalation != 2 || esc[1].Alarm.Severity != alarm.Critical || esc[1].Alarm.State != alarm.Raised {
		t.Fatalf("after two escalations: %+v", esc[1].Alarm)
	}
	if esc[0].Alarm.ID != breach.ID || esc[0].PoliceEscalation != 1 || esc[1].PoliceEscalation != 2 {
		t.Fatalf("escalated %s, police escalation %d then %d", esc[0].Alarm.ID, esc[0].PoliceEscalation, esc[1].PoliceEscalation)
	}
	e.Begin()
	e.Ack(AckAlarm{At: t0.Add(6 * time.Minute), By: "op", ID: breach.ID})
	if ch := e.Finish().Changes[0]; ch.PoliceEscalation != 0 || ch.ActivePolice != 0 {
		t.Fatalf("after the ack: escalation %d, active %d", ch.PoliceEscalation, ch.ActivePolice)
	}
	// A major alarm rises one step per escalation.
	e2 := newEval(t, testOrder(square()))
	observe(e2, device.Observation{Device: offender, Time: t0, Strap: device.StrapOpen})
	var sev []alarm.Severity
	for s := time.Duration(0); s <= 6*time.Minute; s += 10 * time.Second {
		for _, c := range tick(e2, t0.Add(s)).Changes {
			if c.Transition.Event == alarm.EventEscalated {
				sev = append(sev, c.Alarm.Severity)
			}
		}
	}
	if len(sev) != 2 || sev[0] != alarm.Critical || sev[1] != alarm.Critical {
		t.Fatalf("tamper escalations: %v", sev)
	}
}

func TestChargingRestoresALowBattery(t *testing.T) {
	e := newEval(t, testOrder(square()))
	pct := func(v int) *int { return &v }
	yes, no := true, false
	sameEvents(t, "low", observe(e, device.Observation{Device: offender, Time: t0, BatteryPct: pct(10), Charging: &no}),
		ev{alarm.BatteryLow, alarm.EventRaised})
	sameEvents(t, "plugged in", observe(e, device.Observation{Device: offender, Time: t0.Add(time.Minute), BatteryPct: pct(11), Charging: &yes}),
		ev{alarm.BatteryLow, alarm.EventRestored})
	sameEvents(t, "unplugged, still low", observe(e, device.Observation{Device: offender, Time: t0.Add(2 * time.Minute), BatteryPct: pct(12), Charging: &no}),
		ev{alarm.BatteryLow, alarm.EventUpdated})
}

func TestAreaForHooks(t *testing.T) {
	o := testOrder(square())
	o.DynamicZone = &order.DynamicZone{RadiusM: 100}
	e := newEval(t, o)
	observe(e, fix(protected, t0, 59.95, 10.80, 5))
	chs := observe(e, fix(offender, t0.Add(time.Second), 59.9105, 10.751, 5))
	b := firstOf(chs, alarm.Breach)
	area, ok := e.Area(b)
	if !ok || area.Type != "Polygon" || !strings.Contains(string(area.Coordinates), "10.752") {
		t.Fatalf("zone area %+v", area)
	}
	d := firstOf(observe(e, fix(offender, t0.Add(2*time.Second), 59.9501, 10.80, 5)), alarm.DynamicBreach)
	area, ok = e.Area(d)
	if !ok || area.Type != "Point" || area.RadiusM != 100 || string(area.Coordinates) != "[10.8,59.95]" {
		t.Fatalf("dynamic area %+v %s", area, area.Coordinates)
	}
	if _, ok := e.Area(&alarm.Alarm{OrderID: o.ID, Kind: alarm.Tamper}); ok {
		t.Fatal("a tamper alarm has an area")
	}
}
