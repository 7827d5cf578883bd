package breach

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/order"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

const (
	offender  = "864717003283581"
	protected = "unit-0017"
)

// square is a ~111 m × 56 m box in Oslo: lon 10.750–10.752, lat 59.910–59.911.
func square() order.Zone {
	c, _ := json.Marshal([][][]float64{{{10.750, 59.910}, {10.752, 59.910}, {10.752, 59.911}, {10.750, 59.911}, {10.750, 59.910}}})
	return order.Zone{ID: "home", Kind: order.Exclusion, WarningM: 200, Geometry: order.Geometry{Type: "Polygon", Coordinates: c}}
}

func testOrder(zones ...order.Zone) order.Order {
	return order.Order{
		ID: "ord-1", Reference: "REF-1", Basis: order.Court, ValidFrom: t0.Add(-time.Hour),
		Offender:  order.Party{Device: offender},
		Protected: []order.Party{{Device: protected}},
		Zones:     zones,
	}
}

func newEval(t *testing.T, o order.Order) *Evaluator {
	t.Helper()
	e := New(DefaultConfig())
	if _, err := e.PutOrder(PutOrder{At: t0, By: "test", Order: o}); err != nil {
		t.Fatalf("PutOrder: %v", err)
	}
	e.Finish()
	return e
}

func fix(dev string, at time.Time, lat, lon, acc float64) device.Observation {
	return device.Observation{Device: dev, Time: at, Lat: &lat, Lon: &lon, AccuracyM: &acc}
}

// observe applies one observation received at its own time and returns the transitions.
func observe(e *Evaluator, o device.Observation) []alarm.Change {
	e.Begin()
	e.Observe(Observations{At: o.Time, By: "test", Obs: []device.Observation{o}})
	return e.Finish().Changes
}

func tick(e *Evaluator, at time.Time) *Effects {
	e.Begin()
	e.Tick(Tick{At: at})
	return e.Finish()
}

type ev struct {
	kind  alarm.Kind
	event alarm.Event
}

func events(chs []alarm.Change) []ev {
	var out []ev
	for _, c := range chs {
		out = append(out, ev{c.Alarm.Kind, c.Transition.Event})
	}
	return out
}

func only(chs []alarm.Change, kinds ...alarm.Kind) []alarm.Change {
	var out []alarm.Change
	for _, c := range chs {
		if slices.Contains(kinds, c.Alarm.Kind) {
			out = append(out, c)
		}
	}
	return out
}

func sameEvents(t *testing.T, step string, got []alarm.Change, want ...ev) {
	t.Helper()
	g := events(got)
	if len(g) != len(want) {
		t.Fatalf("%s: transitions %v, want %v", step, g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("%s: transitions %v, want %v", step, g, want)
		}
	}
}

func TestExclusionZoneWarningThenBreachThenLeave(t *testing.T) {
	e := newEval(t, testOrder(square()))
	// 59.9085 is ~167 m south of the zone: inside the 200 m warning buffer.
	steps := []struct {
		name     string
		lat      float64
		want     []ev
		distSign float64
	}{
		{"far away", 59.900, nil, 1},
		{"in the buffer", 59.9085, []ev{{alarm.Warning, alarm.EventRaised}}, 1},
		{"inside", 59.9105, []ev{{alarm.Breach, alarm.EventRaised}}, -1},
		{"still inside", 59.9106, nil, -1},
		{"out, still near (one fix is not enough to leave)", 59.9095, nil, 1},
		{"out again", 59.9094, []ev{{alarm.Breach, alarm.EventRestored}}, 1},
		{"far", 59.900, nil, 1},
		{"far again", 59.899, []ev{{alarm.Warning, alarm.EventRestored}}, 1},
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		chs := observe(e, fix(offender, at, s.lat, 10.751, 5))
		sameEvents(t, s.name, chs, s.want...)
	}
	breaches := e.Alarms(true, "ord-1")
	if len(breaches) != 2 {
		t.Fatalf("open alarms = %d, want 2 (warning and breach stay open until resolved)", len(breaches))
	}
	b := breaches[1]
	if b.Kind != alarm.Breach || b.Active || b.State != alarm.Raised || b.ZoneID != "home" || b.Class != alarm.Police || b.Severity != alarm.Critical {
		t.Fatalf("breach alarm = %+v", b)
	}
	if len(b.Evidence) < 2 {
		t.Fatalf("breach evidence has %d fixes, want the fixes inside and the one that left", len(b.Evidence))
	}
}

func TestBreachDistanceIsDepthInside(t *testing.T) {
	e := newEval(t, testOrder(square()))
	// The square's southern edge is lat 59.910; 59.9101 is ~11.1 m inside it, ~100 m from the others. A
	// shallow fix raises a breach when the next one confirms it.
	observe(e, fix(offender, t0, 59.9101, 10.751, 3))
	chs := observe(e, fix(offender, t0.Add(10*time.Second), 59.9101, 10.751, 3))
	var breach *alarm.Alarm
	for i := range chs {
		if chs[i].Alarm.Kind == alarm.Breach {
			breach = &chs[i].Alarm
		}
	}
	if breach == nil || breach.DistanceM == nil {
		t.Fatalf("no breach with a distance: %v", events(chs))
	}
	if d := *breach.DistanceM; d > -10.9 || d < -11.4 {
		t.Fatalf("distance_m = %v, want about -11.1", d)
	}
}

func TestHoleIsOutside(t *testing.T) {
	outer := [][]float64{{10.740, 59.900}, {10.760, 59.900}, {10.760, 59.920}, {10.740, 59.920}, {10.740, 59.900}}
	hole := [][]float64{{10.745, 59.905}, {10.755, 59.905}, {10.755, 59.915}, {10.745, 59.915}, {10.745, 59.905}}
	c, _ := json.Marshal([][][]float64{outer, hole})
	z := order.Zone{ID: "donut", Kind: order.Exclusion, Geometry: order.Geometry{Type: "Polygon", Coordinates: c}}
	e := newEval(t, testOrder(z))
	sameEvents(t, "in the hole", observe(e, fix(offender, t0, 59.910, 10.750, 5)))
	sameEvents(t, "in the ring", observe(e, fix(offender, t0.Add(time.Second), 59.902, 10.750, 5)), ev{alarm.Breach, alarm.EventRaised})
}

func TestCircleAndMultiPolygon(t *testing.T) {
	circle, _ := json.Marshal([]float64{10.70, 59.93})
	mp, _ := json.Marshal([][][][]float64{
		{{{10.80, 59.90}, {10.81, 59.90}, {10.81, 59.91}, {10.80, 59.91}, {10.80, 59.90}}},
		{{{10.90, 59.90}, {10.91, 59.90}, {10.91, 59.91}, {10.90, 59.91}, {10.90, 59.90}}},
	})
	e := newEval(t, testOrder(
		order.Zone{ID: "work", Kind: order.Exclusion, RadiusM: 300, Geometry: order.Geometry{Type: "Point", Coordinates: circle}},
		order.Zone{ID: "cabins", Kind: order.Exclusion, Geometry: order.Geometry{Type: "MultiPolygon", Coordinates: mp}},
	))
	// 0.0025° of latitude is ~278 m: 22 m inside the 300 m circle; shallow, so the second fix raises it.
	sameEvents(t, "in circle, first fix", observe(e, fix(offender, t0, 59.9325, 10.70, 5)))
	chs := observe(e, fix(offender, t0.Add(500*time.Millisecond), 59.9325, 10.70, 5))
	sameEvents(t, "in circle", chs, ev{alarm.Breach, alarm.EventRaised})
	if chs[0].Alarm.ZoneID != "work" {
		t.Fatalf("zone = %q", chs[0].Alarm.ZoneID)
	}
	sameEvents(t, "second polygon", observe(e, fix(offender, t0.Add(time.Second), 59.905, 10.905, 5)), ev{alarm.Breach, alarm.EventRaised})
	sameEvents(t, "still there: the circle's breach ends", observe(e, fix(offender, t0.Add(2*time.Second), 59.905, 10.905, 5)), ev{alarm.Breach, alarm.EventRestored})
}

func TestDynamicZone(t *testing.T) {
	o := testOrder(square())
	o.DynamicZone = &order.DynamicZone{RadiusM: 100, WarningM: 500}
	e := newEval(t, o)
	// Protected person far from home.
	sameEvents(t, "protected fix", observe(e, fix(protected, t0, 59.95, 10.80, 10)))
	// Offender ~333 m north of them: warning.
	sameEvents(t, "offender near", observe(e, fix(offender, t0.Add(10*time.Second), 59.953, 10.80, 10)), ev{alarm.Warning, alarm.EventRaised})
	// Offender ~56 m away: dynamic breach; warning stays active.
	chs := observe(e, fix(offender, t0.Add(20*time.Second), 59.9505, 10.80, 10))
	sameEvents(t, "offender close", chs, ev{alarm.DynamicBreach, alarm.EventRaised})
	if chs[0].Alarm.ZoneID != "dynamic:"+protected {
		t.Fatalf("zone = %q", chs[0].Alarm.ZoneID)
	}
	// The protected person walks away: the breach restores on their fix, not only on the offender's.
	sameEvents(t, "protected leaves", observe(e, fix(protected, t0.Add(30*time.Second), 59.94, 10.80, 10)))
	sameEvents(t, "protected still away", observe(e, fix(protected, t0.Add(40*time.Second), 59.94, 10.80, 10)),
		ev{alarm.DynamicBreach, alarm.EventRestored}, ev{alarm.Warning, alarm.EventRestored})
}

func TestDynamicZoneIgnoresStaleProtectedFix(t *testing.T) {
	o := testOrder(square())
	o.DynamicZone = &order.DynamicZone{RadiusM: 100}
	e := newEval(t, o)
	observe(e, fix(protected, t0, 59.95, 10.80, 10))
	late := t0.Add(DefaultConfig().ProtectedFixMaxAge + time.Minute)
	sameEvents(t, "stale", observe(e, fix(offender, late, 59.9501, 10.80, 10)))
}

func TestTamperAndBattery(t *testing.T) {
	e := newEval(t, testOrder(square()))
	pct := func(v int) *int { return &v }
	status := func(at time.Time, strap device.Strap, batt int) device.Observation {
		return device.Observation{Device: offender, Time: at, Strap: strap, BatteryPct: pct(batt)}
	}
	steps := []struct {
		name  string
		strap device.Strap
		batt  int
		want  []ev
	}{
		{"normal", device.StrapClosed, 80, nil},
		{"strap cut", device.StrapOpen, 80, []ev{{alarm.Tamper, alarm.EventRaised}}},
		{"battery low", device.StrapOpen, 15, []ev{{alarm.BatteryLow, alarm.EventRaised}}},
		{"battery in hysteresis band", device.StrapOpen, 22, nil},
		{"strap closed, charged", device.StrapClosed, 60, []ev{{alarm.Tamper, alarm.EventRestored}, {alarm.BatteryLow, alarm.EventRestored}}},
	}
	for i, s := range steps {
		sameEvents(t, s.name, observe(e, status(t0.Add(time.Duration(i)*time.Minute), s.strap, s.batt)), s.want...)
	}
}

func TestNoSignalOnTicks(t *testing.T) {
	e := newEval(t, testOrder(square()))
	observe(e, fix(offender, t0, 59.90, 10.75, 5))
	observe(e, fix(protected, t0, 59.95, 10.80, 5))
	limit := DefaultConfig().NoSignalAfter
	if fx := tick(e, t0.Add(limit-time.Second)); len(fx.Changes) != 0 {
		t.Fatalf("no_signal before the limit: %v", events(fx.Changes))
	}
	observe(e, fix(protected, t0.Add(limit-time.Second), 59.95, 10.80, 5))
	fx := tick(e, t0.Add(limit))
	sameEvents(t, "offender silent", fx.Changes, ev{alarm.NoSignal, alarm.EventRaised})
	if fx.Changes[0].Alarm.Device != offender || fx.Changes[0].Alarm.Class != alarm.Technical {
		t.Fatalf("no_signal alarm = %+v", fx.Changes[0].Alarm)
	}
	sameEvents(t, "again on the next tick", tick(e, t0.Add(limit+time.Second)).Changes)
	sameEvents(t, "reports again", observe(e, fix(offender, t0.Add(limit+2*time.Second), 59.90, 10.75, 5)), ev{alarm.NoSignal, alarm.EventRestored})
}

func TestNoSignalForDeviceThatNeverReported(t *testing.T) {
	e := newEval(t, testOrder(square()))
	fx := tick(e, t0.Add(DefaultConfig().NoSignalAfter))
	sameEvents(t, "both silent since binding", fx.Changes, ev{alarm.NoSignal, alarm.EventRaised}, ev{alarm.NoSignal, alarm.EventRaised})
	if fx.Changes[0].Alarm.Device != offender || fx.Changes[1].Alarm.Device != protected {
		t.Fatalf("devices in order %s, %s; want sorted ids", fx.Changes[0].Alarm.Device, fx.Changes[1].Alarm.Device)
	}
}

func TestAlarmLifecycleAndActivePolice(t *testing.T) {
	e := newEval(t, testOrder(square()))
	chs := observe(e, fix(offender, t0, 59.9105, 10.751, 5))
	sameEvents(t, "inside", chs, ev{alarm.Breach, alarm.EventRaised}, ev{alarm.Warning, alarm.EventRaised})
	if got := chs[1].ActivePolice; got != 2 {
		t.Fatalf("active police after two raises = %d", got)
	}
	br, warn := chs[0].Alarm.ID, chs[1].Alarm.ID
	e.Begin()
	a, err := e.Ack(AckAlarm{At: t0.Add(time.Minute), By: "operator-1", ID: br, Note: "patrol sent"})
	fx := e.Finish()
	if err != nil || a.State != alarm.Acknowledged || fx.Changes[0].ActivePolice != 1 {
		t.Fatalf("ack: %v %+v active=%d", err, a, fx.Changes[0].ActivePolice)
	}
	last := a.Last()
	if last.By != "operator-1" || !last.At.Equal(t0.Add(time.Minute)) || last.Note != "patrol sent" || last.Seq != 2 {
		t.Fatalf("ack transition = %+v", last)
	}
	if _, err := e.Ack(AckAlarm{At: t0, By: "x", ID: br}); err == nil {
		t.Fatal("second ack accepted")
	}
	if _, err := e.Ack(AckAlarm{At: t0, By: "x", ID: "alm-nope"}); err == nil {
		t.Fatal("ack of a missing alarm accepted")
	}
	e.Begin()
	if _, err := e.Ack(AckAlarm{At: t0.Add(time.Minute), By: "operator-1", ID: warn}); err != nil {
		t.Fatal(err)
	}
	if got := e.Finish().Changes[0].ActivePolice; got != 0 {
		t.Fatalf("active police after both acks = %d", got)
	}
	e.Begin()
	r, err := e.Resolve(ResolveAlarm{At: t0.Add(2 * time.Minute), By: "operator-2", ID: br, Reason: "arrested"})
	e.Finish()
	if err != nil || r.State != alarm.Resolved || r.Open() {
		t.Fatalf("resolve: %v %+v", err, r)
	}
	// Still inside: the next fix raises a new breach, since the old one is closed.
	chs = observe(e, fix(offender, t0.Add(3*time.Minute), 59.9105, 10.751, 5))
	sameEvents(t, "inside after resolve", chs, ev{alarm.Breach, alarm.EventRaised})
	if chs[0].Alarm.ID == br {
		t.Fatal("resolved alarm reused")
	}
}

func TestUnboundDevicesAreDroppedAndOrdersOutOfForceIgnored(t *testing.T) {
	o := testOrder(square())
	o.ValidFrom = t0.Add(time.Hour)
	until := t0.Add(2 * time.Hour)
	o.ValidUntil = &until
	e := newEval(t, o)
	e.Begin()
	acc, drop := e.Observe(Observations{At: t0, Obs: []device.Observation{fix("stranger", t0, 59.9105, 10.751, 5), fix(offender, t0, 59.9105, 10.751, 5)}})
	fx := e.Finish()
	if acc != 1 || drop != 1 || len(fx.Changes) != 0 {
		t.Fatalf("accepted=%d dropped=%d changes=%v; want 1, 1, none (order not yet in force)", acc, drop, events(fx.Changes))
	}
	for _, f := range fx.FixesAdded {
		if f.Device == "stranger" {
			t.Fatal("a fix from an unbound device was stored")
		}
	}
	sameEvents(t, "in force", observe(e, fix(offender, t0.Add(90*time.Minute), 59.9105, 10.751, 5)), ev{alarm.Breach, alarm.EventRaised}, ev{alarm.Warning, alarm.EventRaised})
	tick(e, until)
	got, _ := e.Order("ord-1")
	if got.State != order.Ended || got.EndedBy != "tick" {
		t.Fatalf("order after validity = %s by %q", got.State, got.EndedBy)
	}
	if _, bound := e.Device(offender); bound {
		t.Fatal("device still bound after the order ended")
	}
}

func TestBindingConflicts(t *testing.T) {
	e := newEval(t, testOrder(square()))
	o2 := testOrder(square())
	o2.ID = "ord-2"
	o2.Offender.Device = "other"
	_, err := e.PutOrder(PutOrder{At: t0, Order: o2})
	rej, ok := err.(*Rejection)
	if !ok || rej.Code != "conflict" || rej.Field != "protected[0].device" {
		t.Fatalf("err = %v", err)
	}
	if _, exists := e.Order("ord-2"); exists {
		t.Fatal("rejected order stored")
	}
	if _, err := e.PutOrder(PutOrder{At: t0, Create: true, Order: testOrder(square())}); err == nil {
		t.Fatal("create over an existing order accepted")
	}
	// A replacement bumps the version and keeps the creator.
	repl := testOrder(square())
	repl.Reference = "REF-1b"
	got, err := e.PutOrder(PutOrder{At: t0.Add(time.Minute), By: "officer-2", Order: repl})
	if err != nil || got.Version != 2 || got.CreatedBy != "test" || got.UpdatedBy != "officer-2" {
		t.Fatalf("replace: %v %+v", err, got)
	}
	e.Begin()
	if _, err := e.EndOrder(EndOrder{At: t0.Add(2 * time.Minute), By: "officer-2", ID: "ord-1", Reason: "lifted"}); err != nil {
		t.Fatal(err)
	}
	e.Finish()
	o2.Protected = nil
	o2.Offender.Device = offender
	if _, err := e.PutOrder(PutOrder{At: t0.Add(3 * time.Minute), Order: o2}); err != nil {
		t.Fatalf("device of an ended order could not be bound again: %v", err)
	}
}

func TestInclusionZoneWithNightSchedule(t *testing.T) {
	c, _ := json.Marshal([]float64{10.60, 59.95})
	z := order.Zone{ID: "night", Kind: order.Inclusion, RadiusM: 150, Geometry: order.Geometry{Type: "Point", Coordinates: c},
		Schedule: &order.Schedule{Timezone: "Europe/Oslo", Windows: []order.Window{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, From: "22:00", To: "06:00"}}}}
	o := testOrder(z)
	o.ValidFrom = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	e := newEval(t, o)
	// 12:00 UTC is 13:00 in Oslo: outside the home is allowed.
	day := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	sameEvents(t, "day, away", observe(e, fix(offender, day, 59.90, 10.70, 5)))
	// 21:30 UTC is 22:30 in Oslo: the window is open and the offender is away. The tick notices it even
	// without a new fix.
	night := time.Date(2026, 11, 26, 21, 30, 0, 0, time.UTC)
	observe(e, device.Observation{Device: protected, Time: night})
	observe(e, device.Observation{Device: offender, Time: night}) // a status report, no fix
	sameEvents(t, "night, away", only(tick(e, night).Changes, alarm.InclusionBreach), ev{alarm.InclusionBreach, alarm.EventRaised})
	observe(e, fix(offender, night.Add(time.Minute), 59.95, 10.60, 5))
	sameEvents(t, "night, home", only(observe(e, fix(offender, night.Add(2*time.Minute), 59.95, 10.60, 5)), alarm.InclusionBreach), ev{alarm.InclusionBreach, alarm.EventRestored})
}

func TestPluginStateRaisesMonitoringFault(t *testing.T) {
	e := New(DefaultConfig())
	e.Begin()
	e.PluginState(PluginState{At: t0, Node: "node-1", Name: "sim", Kind: "driver", Up: false, Reason: "exited"})
	fx := e.Finish()
	sameEvents(t, "down", fx.Changes, ev{alarm.MonitoringFault, alarm.EventRaised})
	if a := fx.Changes[0].Alarm; a.Class != alarm.Technical || a.Subject != "plugin:node-1/sim" {
		t.Fatalf("alarm = %+v", a)
	}
	e.Begin()
	e.PluginState(PluginState{At: t0, Node: "node-1", Name: "sim", Kind: "driver", Up: false, Reason: "exited again"})
	e.PluginState(PluginState{At: t0, Node: "node-1", Name: "sim", Kind: "driver", Up: true})
	sameEvents(t, "down again, then up", e.Finish().Changes, ev{alarm.MonitoringFault, alarm.EventRestored})
}

func TestLateFixDoesNotMoveTheDevice(t *testing.T) {
	e := newEval(t, testOrder(square()))
	observe(e, fix(offender, t0, 59.90, 10.75, 5))
	e.Begin()
	e.Observe(Observations{At: t0.Add(time.Minute), Obs: []device.Observation{fix(offender, t0.Add(-time.Minute), 59.9105, 10.751, 5)}})
	fx := e.Finish()
	if fx.Late != 1 {
		t.Fatalf("late=%d", fx.Late)
	}
	// The late fix was inside the zone: a late breach, for the evidence, not an active one.
	sameEvents(t, "late fix inside", fx.Changes, ev{alarm.Breach, alarm.EventRaised})
	if a := fx.Changes[0].Alarm; a.Active || !a.Late || a.LateByS != 120 || a.State != alarm.Raised {
		t.Fatalf("late breach = %+v", a)
	}
	st, _ := e.Device(offender)
	if st.LastFix.Lat != 59.90 {
		t.Fatalf("last fix moved to the late fix: %+v", st.LastFix)
	}
	if n := len(e.Track(offender)); n != 2 {
		t.Fatalf("track has %d fixes, want 2 (the late one is kept in fix-time order)", n)
	}
}

func TestFixesLeaveTheWindow(t *testing.T) {
	e := newEval(t, testOrder(square()))
	observe(e, fix(offender, t0, 59.90, 10.75, 5))
	observe(e, fix(offender, t0.Add(5*time.Minute), 59.90, 10.75, 5))
	fx := tick(e, t0.Add(DefaultConfig().FixWindow+time.Second))
	if len(fx.FixesDeleted) != 1 || !fx.FixesDeleted[0].Fix.Time.Equal(t0) {
		t.Fatalf("deleted %v, want the first fix only", fx.FixesDeleted)
	}
	if n := len(e.Track(offender)); n != 1 {
		t.Fatalf("track has %d fixes", n)
	}
}

// TestLargeBatchAsSmallOnes: a batch larger than a read-ahead group (readAheadGroup) gives the same
// effects and state as the same reports applied in small batches, unknown devices included.
func TestLargeBatchAsSmallOnes(t *testing.T) {
	build := func() *Evaluator {
		e := New(DefaultConfig())
		for i := 0; i < 3; i++ {
			o := testOrder(square())
			o.ID, o.Offender.Device, o.Protected[0].Device = fmt.Sprintf("ord-%d", i), fmt.Sprintf("tag-%d", i), fmt.Sprintf("unit-%d", i)
			if _, err := e.PutOrder(PutOrder{At: t0, By: "test", Order: o}); err != nil {
				t.Fatal(err)
			}
		}
		e.Finish()
		return e
	}
	// Each offender walks north into the square (lat 59.910–59.911) and out again; the units stand
	// still; a stranger reports too.
	var obs []device.Observation
	for k := 0; k < 700; k++ {
		at := t0.Add(time.Duration(k) * time.Second)
		switch k % 4 {
		case 3:
			obs = append(obs, fix(fmt.Sprintf("unit-%d", k%3), at, 59.905, 10.751, 10), fix("stranger", at, 59.9, 10.7, 10))
		default:
			lat := 59.9085 + 0.0045*float64(k)/700
			obs = append(obs, fix(fmt.Sprintf("tag-%d", k%3), at, lat, 10.751, 10))
		}
	}
	at := obs[len(obs)-1].Time
	whole, parts := build(), build()
	whole.Begin()
	a1, d1 := whole.Observe(Observations{At: at, By: "test", Obs: obs})
	fxWhole := dumpEffects(whole.Finish())
	parts.Begin()
	var a2, d2 int
	for i := 0; i < len(obs); i += 50 {
		a, d := parts.Observe(Observations{At: at, By: "test", Obs: obs[i:min(i+50, len(obs))]})
		a2, d2 = a2+a, d2+d
	}
	fxParts := dumpEffects(parts.Finish())
	if len(obs) <= readAheadGroup || a1 != a2 || d1 != d2 || d1 == 0 {
		t.Fatalf("%d reports: whole accepted %d dropped %d, parts %d and %d", len(obs), a1, d1, a2, d2)
	}
	if fxWhole != fxParts {
		t.Fatalf("effects differ\nwhole %s\nparts %s", fxWhole, fxParts)
	}
	if a, b := dumpState(whole), dumpState(parts); a != b {
		t.Fatalf("state differs\nwhole %s\nparts %s", a, b)
	}
	if !strings.Contains(fxWhole, `"kind":"breach"`) {
		t.Fatal("no breach raised: the walk does not test what it should")
	}
}
