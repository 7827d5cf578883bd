// Package breach is the evaluator: a deterministic state machine that turns orders, device reports and
// clock ticks into alarm transitions. It reads no wall clock and no randomness, and never lets map order
// reach its output: the same entries give the same alarms on every node and at every replay.
package breach

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/geo"
	"github.com/skjold-alarm/skjold/core/order"
)

// Config holds the evaluator's thresholds. It is part of the replicated behaviour: every node must use
// the same values.
type Config struct {
	NoSignalAfter      time.Duration   // no report for this long raises no_signal
	BatteryLowPct      int             // battery at or below raises battery_low
	BatteryRestorePct  int             // battery at or above restores it
	FixWindow          time.Duration   // how long a fix is kept for the track when it causes no alarm
	ProtectedFixMaxAge time.Duration   // an older protected-unit fix is not used for the dynamic zone
	EvidenceMax        int             // fixes kept on one alarm
	EvidenceBefore     time.Duration   // track kept as evidence from before the fix that raised an alarm
	NoFixAfter         time.Duration   // reports without a position for this long raise no_fix
	PoorAccuracyM      float64         // a fix less accurate than this never raises a certain alarm
	ConfirmDepthM      float64         // a single fix is certain only this deep (or 6 × its accuracy); else a second one confirms
	HysteresisM        float64         // how far beyond a boundary a fix must be to count as out
	ExitFixes          int             // fixes in a row beyond the margin that restore an alarm
	EnterFixes         int             // fixes in a row on the wrong side that raise a breach, unless one is deep
	LateAfter          time.Duration   // a fix reported this long after it was taken makes its alarm late
	ApproachLead       time.Duration   // default lead time of approach alarms (an order may set its own)
	ApproachWindow     time.Duration   // how far back the track is read for the closing speed
	ApproachMinSpan    time.Duration   // the shortest track span a closing speed is computed over
	ApproachMinSpeed   float64         // closing speeds below this (m/s) are not an approach
	RepetitionWindow   time.Duration   // breaches of an order counted for repetition
	RepetitionEscalate int             // from this many breaches in the window, lesser alarms are critical
	EscalateAfter      []time.Duration // a police alarm not acknowledged this long after it was raised is escalated, once per step
	FastReportS        int             // report interval asked of an offender's tag near a zone (0: never)
	NormalReportS      int             // report interval asked again when the offender has left (0: never)
}

// DefaultConfig is used where the configuration says nothing.
func DefaultConfig() Config {
	return Config{
		NoSignalAfter:      5 * time.Minute,
		BatteryLowPct:      20,
		BatteryRestorePct:  25,
		FixWindow:          10 * time.Minute,
		ProtectedFixMaxAge: 5 * time.Minute,
		EvidenceMax:        50,
		EvidenceBefore:     5 * time.Minute,
		NoFixAfter:         10 * time.Minute,
		PoorAccuracyM:      100,
		ConfirmDepthM:      50,
		HysteresisM:        15,
		ExitFixes:          2,
		EnterFixes:         2,
		LateAfter:          2 * time.Minute,
		ApproachLead:       10 * time.Minute,
		ApproachWindow:     2 * time.Minute,
		ApproachMinSpan:    20 * time.Second,
		ApproachMinSpeed:   0.5,
		RepetitionWindow:   30 * 24 * time.Hour,
		RepetitionEscalate: 3,
		EscalateAfter:      []time.Duration{2 * time.Minute, 5 * time.Minute},
		FastReportS:        10,
		NormalReportS:      60,
	}
}

// Meta is the evaluator's own scalar state.
type Meta struct {
	Now        time.Time `json:"now"`
	AlarmSeq   uint64    `json:"alarm_seq"`
	CommandSeq uint64    `json:"command_seq,omitempty"`
}

// StoredFix is a fix kept on disk for the track window.
type StoredFix struct {
	Device string
	Fix    device.Fix
}

// Effects is what applying one or more entries changed: the alarm transitions to publish and deliver, and
// the records the store must write or delete. Keys are sorted so that writes are deterministic.
type Effects struct {
	Changes        []alarm.Change
	Commands       []device.Command // to devices, in the order they were decided
	Orders         []string
	Devices        []string
	DevicesDeleted []string
	Alarms         []string
	Repeats        []string // orders whose breach history changed
	FixesAdded     []StoredFix
	FixesDeleted   []StoredFix
	Accepted       int // observations from bound devices
	Dropped        int // observations from devices bound to no order
	Late           int // fixes older than the device's latest fix

	dirtyOrders, dirtyDevices, deletedDevices, dirtyAlarms, dirtyRepeats map[string]struct{}
}

func newEffects() *Effects {
	return &Effects{
		dirtyOrders:    map[string]struct{}{},
		dirtyDevices:   map[string]struct{}{},
		deletedDevices: map[string]struct{}{},
		dirtyAlarms:    map[string]struct{}{},
		dirtyRepeats:   map[string]struct{}{},
	}
}

func (fx *Effects) finish() {
	fx.Orders = sortedKeys(fx.dirtyOrders)
	fx.Devices = sortedKeys(fx.dirtyDevices)
	fx.DevicesDeleted = sortedKeys(fx.deletedDevices)
	fx.Alarms = sortedKeys(fx.dirtyAlarms)
	fx.Repeats = sortedKeys(fx.dirtyRepeats)
}

func sortedKeys(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Rejection is a deterministic refusal of an entry (a conflict or an invalid transition). It is the
// entry's result; the state is unchanged.
type Rejection struct {
	Code    string // "conflict", "not_found", "invalid"
	Field   string
	Message string
}

func (r *Rejection) Error() string { return r.Message }

// condKey identifies the condition an open alarm stands for; at most one open alarm per key.
type condKey struct {
	order, device, subject string
	kind                   alarm.Kind
}

// Evaluator holds the hot state. It is not safe for concurrent use; the state machine serialises access.
type Evaluator struct {
	cfg          Config
	meta         Meta
	orders       map[string]*compiledOrder
	orderIDs     []string // sorted
	devices      map[string]*device.State
	deviceIDs    []string // sorted, bound devices
	tracks       map[string][]device.Fix
	alarms       map[string]*alarm.Alarm
	open         map[condKey]string
	repeats      map[string][]time.Time // per order: when its breaches were raised, within the window
	ticking      bool                   // evaluating on a tick, not on a report
	waiting      []string               // police alarms raised and not acknowledged, sorted by id
	siren        int                    // alarms that sound the siren: police alarms and monitoring faults, raised
	activePolice int
	fx           *Effects
}

// New returns an empty evaluator.
func New(cfg Config) *Evaluator {
	return &Evaluator{
		cfg:     cfg,
		orders:  map[string]*compiledOrder{},
		devices: map[string]*device.State{},
		tracks:  map[string][]device.Fix{},
		alarms:  map[string]*alarm.Alarm{},
		open:    map[condKey]string{},
		repeats: map[string][]time.Time{},
	}
}

// Begin starts collecting effects; Finish returns them. Several entries may be applied between the two
// (one Raft batch).
func (e *Evaluator) Begin() { e.fx = newEffects() }

// Finish returns the effects collected since Begin.
func (e *Evaluator) Finish() *Effects {
	fx := e.fx
	fx.finish()
	e.fx = nil
	return fx
}

func (e *Evaluator) effects() *Effects {
	if e.fx == nil {
		e.fx = newEffects()
	}
	return e.fx
}

func (e *Evaluator) advance(at time.Time) {
	if at.After(e.meta.Now) {
		e.meta.Now = at
	}
}

// Pending returns the transitions and commands collected since Begin, in order. The slices must not be
// modified.
func (e *Evaluator) Pending() ([]alarm.Change, []device.Command) {
	fx := e.effects()
	return fx.Changes, fx.Commands
}

// Meta returns the evaluator's scalar state.
func (e *Evaluator) Meta() Meta { return e.meta }

// Now is the log's time: the latest At applied.
func (e *Evaluator) Now() time.Time { return e.meta.Now }

// ---- Orders ----

// PutOrder creates or replaces an order.
func (e *Evaluator) PutOrder(in PutOrder) (*order.Order, error) {
	o := in.Order
	if err := o.Validate(); err != nil {
		return nil, &Rejection{Code: "invalid", Field: err.Field, Message: err.Error()}
	}
	if o.ID == "" {
		return nil, &Rejection{Code: "invalid", Field: "id", Message: "id: is required in the log entry"}
	}
	prev := e.orders[o.ID]
	if prev != nil && in.Create {
		return nil, &Rejection{Code: "conflict", Field: "id", Message: fmt.Sprintf("order %q already exists; PUT /v1/orders/%s replaces it", o.ID, o.ID)}
	}
	if prev != nil && prev.order.State == order.Ended {
		return nil, &Rejection{Code: "conflict", Field: "id", Message: fmt.Sprintf("order %q has ended and cannot be changed", o.ID)}
	}
	for i, d := range o.Devices() {
		if st, ok := e.devices[d]; ok && st.OrderID != o.ID {
			f := "offender.device"
			if i > 0 {
				f = fmt.Sprintf("protected[%d].device", i-1)
			}
			return nil, &Rejection{Code: "conflict", Field: f, Message: fmt.Sprintf("%s: device %q is bound to active order %q", f, d, st.OrderID)}
		}
	}
	e.advance(in.At)
	o.State = order.Active
	o.UpdatedAt, o.UpdatedBy = in.At, in.By
	o.EndedAt, o.EndedBy, o.EndReason = nil, "", ""
	if prev == nil {
		o.Version = 1
		o.CreatedAt, o.CreatedBy = in.At, in.By
	} else {
		o.Version = prev.order.Version + 1
		o.CreatedAt, o.CreatedBy = prev.order.CreatedAt, prev.order.CreatedBy
	}
	c, err := compile(&o)
	if err != nil {
		return nil, &Rejection{Code: "invalid", Message: err.Error()}
	}
	if prev != nil {
		keep := map[string]bool{}
		for _, d := range o.Devices() {
			keep[d] = true
		}
		for _, d := range prev.order.Devices() {
			if !keep[d] {
				e.unbind(d)
			}
		}
	} else {
		e.orderIDs = insertSorted(e.orderIDs, o.ID)
	}
	e.orders[o.ID] = c
	for i, d := range o.Devices() {
		role := device.Protected
		if i == 0 {
			role = device.Offender
		}
		if st, ok := e.devices[d]; ok {
			st.Role = role
		} else {
			e.devices[d] = &device.State{Device: d, OrderID: o.ID, Role: role, BoundAt: in.At}
			e.deviceIDs = insertSorted(e.deviceIDs, d)
		}
		e.effects().dirtyDevices[d] = struct{}{}
	}
	e.effects().dirtyOrders[o.ID] = struct{}{}
	out := o
	return &out, nil
}

// EndOrder ends an order and unbinds its devices. Its open alarms stay open until resolved.
func (e *Evaluator) EndOrder(in EndOrder) (*order.Order, error) {
	c, ok := e.orders[in.ID]
	if !ok {
		return nil, &Rejection{Code: "not_found", Message: fmt.Sprintf("order %q does not exist", in.ID)}
	}
	if c.order.State == order.Ended {
		return nil, &Rejection{Code: "conflict", Message: fmt.Sprintf("order %q has already ended", in.ID)}
	}
	e.advance(in.At)
	e.endOrder(c, in.At, in.By, in.Reason)
	out := *c.order
	return &out, nil
}

func (e *Evaluator) endOrder(c *compiledOrder, at time.Time, by, reason string) {
	t := at
	c.order.State = order.Ended
	c.order.EndedAt, c.order.EndedBy, c.order.EndReason = &t, by, reason
	c.order.Version++
	c.order.UpdatedAt, c.order.UpdatedBy = at, by
	for _, d := range c.order.Devices() {
		e.unbind(d)
	}
	e.effects().dirtyOrders[c.order.ID] = struct{}{}
}

func (e *Evaluator) unbind(d string) {
	if _, ok := e.devices[d]; !ok {
		return
	}
	delete(e.devices, d)
	e.deviceIDs = removeSorted(e.deviceIDs, d)
	fx := e.effects()
	for _, f := range e.tracks[d] {
		fx.FixesDeleted = append(fx.FixesDeleted, StoredFix{d, f})
	}
	delete(e.tracks, d)
	delete(fx.dirtyDevices, d)
	fx.deletedDevices[d] = struct{}{}
}

// ---- Observations ----

// Observe applies a batch of device reports, in fix-time order (a tag that buffered while out of
// coverage sends its fixes late and in bulk; evidence must read in the order things happened).
// It returns how many came from bound devices and how many were dropped (from devices bound to no order).
func (e *Evaluator) Observe(in Observations) (accepted, dropped int) {
	e.advance(in.At)
	fx := e.effects()
	obs := in.Obs
	if !sort.SliceIsSorted(obs, func(i, j int) bool { return obs[i].Time.Before(obs[j].Time) }) {
		obs = slices.Clone(obs)
		sort.SliceStable(obs, func(i, j int) bool { return obs[i].Time.Before(obs[j].Time) })
	}
	for i := range obs {
		o := &obs[i]
		st, ok := e.devices[o.Device]
		if !ok {
			dropped++
			continue
		}
		accepted++
		e.observe(st, o, in.At)
	}
	fx.Accepted += accepted
	fx.Dropped += dropped
	return accepted, dropped
}

func (e *Evaluator) observe(st *device.State, o *device.Observation, at time.Time) {
	fx := e.effects()
	fx.dirtyDevices[st.Device] = struct{}{}
	if at.After(st.LastSeen) {
		st.LastSeen = at
	}
	if o.Driver != "" {
		st.Driver, st.Node = o.Driver, o.Node
	}
	c := e.orders[st.OrderID]
	inForce := c.order.InForce(at)
	if inForce {
		e.condition(condKey{order: c.order.ID, device: st.Device, kind: alarm.NoSignal}, signal{clear: true, at: at})
	}
	latest := st.LastFix == nil || !o.Time.Before(st.LastFix.Time)
	if latest {
		if o.BatteryPct != nil {
			v := *o.BatteryPct
			st.BatteryPct = &v
		}
		if o.Strap != device.StrapUnknown {
			st.Strap = o.Strap
		}
		if o.Charging != nil {
			v := *o.Charging
			st.Charging = &v
		}
	}
	if inForce {
		e.deviceConditions(c, st, at)
	}
	f, hasFix := o.Fix()
	if !hasFix {
		return
	}
	e.keepFix(st.Device, f)
	if !latest {
		fx.Late++
		if inForce && st.Role == device.Offender {
			e.lateBreaches(c, st, f, at)
		}
		return
	}
	// Overwrite in place: reads copy the state (cloneState), and alarms copy positions.
	if st.LastFix == nil {
		st.LastFix = new(device.Fix)
	}
	*st.LastFix = f
	st.SpeedMps, st.HeadingDeg = o.SpeedMps, o.HeadingDeg
	if !inForce {
		return
	}
	e.condition(condKey{order: c.order.ID, device: st.Device, kind: alarm.NoFix}, signal{clear: true, at: at})
	if st.Role == device.Offender {
		e.evaluateZones(c, st, at)
	}
	e.evaluateDynamic(c, at)
}

func (e *Evaluator) keepFix(d string, f device.Fix) {
	t := e.tracks[d]
	if n := len(t); n == 0 || !t[n-1].Time.After(f.Time) {
		t = append(t, f) // the usual case: fixes arrive in order
	} else {
		i := sort.Search(n, func(i int) bool { return t[i].Time.After(f.Time) })
		t = slices.Insert(t, i, f)
	}
	e.tracks[d] = t
	fx := e.effects()
	fx.FixesAdded = append(fx.FixesAdded, StoredFix{d, f})
}

func (e *Evaluator) deviceConditions(c *compiledOrder, st *device.State, at time.Time) {
	open := st.Strap == device.StrapOpen
	e.condition(condKey{order: c.order.ID, device: st.Device, kind: alarm.Tamper}, signal{
		active: open, clear: !open, at: at, fix: st.LastFix,
		msg: message{render: msgTamper, st: st}})
	if st.BatteryPct != nil {
		pct := *st.BatteryPct
		// Charging ends a low battery as surely as a charged one does.
		charging := st.Charging != nil && *st.Charging
		e.condition(condKey{order: c.order.ID, device: st.Device, kind: alarm.BatteryLow}, signal{
			active: pct <= e.cfg.BatteryLowPct && !charging, clear: pct >= e.cfg.BatteryRestorePct || charging, at: at, fix: st.LastFix,
			msg: message{render: msgBattery, st: st, n: pct}})
	}
}

func describe(st *device.State) string {
	return fmt.Sprintf("%s %s", st.Role, st.Device)
}

// certainty grades a signed distance (negative = on the wrong side) given the fix's accuracy radius.
func (e *Evaluator) certainty(wrongSide, acc float64) alarm.Certainty {
	if wrongSide+acc <= 0 && acc <= e.cfg.PoorAccuracyM {
		return alarm.Certain
	}
	return alarm.Probable
}

// deep reports whether a fix is so far on the wrong side (wrongSide < 0) that no multipath outlier from
// outside could have put it there: one fix is then enough for a certain alarm.
func (e *Evaluator) deep(wrongSide, acc float64) bool {
	return -wrongSide >= math.Max(e.cfg.ConfirmDepthM, 6*acc)
}

// confirmed reports whether the device's previous fix was on the wrong side too (wrong tells). A single
// shallow fix inside a zone may be a multipath outlier, which reports a good accuracy and a wrong
// position: a zone breach is raised on it only when it is deep, and otherwise one report later.
func (e *Evaluator) confirmed(dev string, f *device.Fix, wrong func(device.Fix) bool) bool {
	t := e.tracks[dev]
	for i := len(t) - 1; i >= 0; i-- {
		if t[i].Time.Before(f.Time) {
			return wrong(t[i])
		}
	}
	return false
}

// lateness is how long after it was taken a fix was reported, when that is long enough to matter.
func (e *Evaluator) lateness(f *device.Fix, at time.Time) time.Duration {
	if d := at.Sub(f.Time); d > e.cfg.LateAfter {
		return d
	}
	return 0
}

func (c *compiledOrder) lead(cfg Config) time.Duration {
	if c.order.ApproachLeadS > 0 {
		return time.Duration(c.order.ApproachLeadS) * time.Second
	}
	return cfg.ApproachLead
}

// approachRef is the fix the closing speed is measured against: the most recent one at least
// ApproachMinSpan older than cur and within ApproachWindow, so a turn away shows at once. ok is false
// without enough track.
func (e *Evaluator) approachRef(track []device.Fix, cur *device.Fix) (ref device.Fix, span float64, ok bool) {
	from := cur.Time.Add(-e.cfg.ApproachWindow)
	for i := len(track) - 1; i >= 0; i-- {
		old := track[i]
		if old.Time.Before(from) {
			return device.Fix{}, 0, false
		}
		if d := cur.Time.Sub(old.Time); d >= e.cfg.ApproachMinSpan {
			return old, d.Seconds(), true
		}
	}
	return device.Fix{}, 0, false
}

// approach raises an approach alarm while the offender would reach the target within the order's lead
// time at the closing speed seen on the track; ok is false when there is no usable closing speed.
func (e *Evaluator) approach(c *compiledOrder, st *device.State, subject string, at time.Time, d float64, closing float64, ok bool, what string) {
	lead := c.lead(e.cfg).Seconds()
	active, clear := false, true
	var eta float64
	if ok && d > 0 && closing >= e.cfg.ApproachMinSpeed {
		eta = d / closing
		active = eta <= lead
		clear = eta > lead*1.25
	}
	// Once inside, the approach is over at once: the breach has taken over.
	e.condition(condKey{order: c.order.ID, device: st.Device, subject: subject, kind: alarm.Approach}, signal{
		active: active, clear: clear, hyst: d > 0, spec: alarmSpec{zone: subject}, at: at, fix: st.LastFix,
		dist: d, hasDist: true, eta: eta, closingMps: closing, hasETA: true,
		msg: message{render: msgApproach, dev: st.Device, what: what, a: d, b: closing, c: eta, n: b2i(active)}})
}

// evaluateZones checks the offender's latest fix against the order's zones.
func (e *Evaluator) evaluateZones(c *compiledOrder, st *device.State, at time.Time) {
	f := st.LastFix
	p := c.proj.Forward(geo.LatLon{Lat: f.Lat, Lon: f.Lon})
	late := e.lateness(f, at)
	// The closing speed compares each zone's distance now with its distance at one earlier fix: project
	// that fix once for all zones.
	ref, span, hasRef := e.approachRef(e.tracks[st.Device], f)
	var refXY geo.XY
	if hasRef {
		refXY = c.proj.Forward(geo.LatLon{Lat: ref.Lat, Lon: ref.Lon})
	}
	margin := e.cfg.HysteresisM
	for i := range c.zones {
		z := &c.zones[i]
		applies := z.zone.Schedule.Applies(at)
		d := z.shape.SignedDistance(p)
		spec := alarmSpec{zone: z.zone.ID}
		distAt := func(old device.Fix) float64 {
			return z.shape.SignedDistance(c.proj.Forward(geo.LatLon{Lat: old.Lat, Lon: old.Lon}))
		}
		switch z.zone.Kind {
		case order.Exclusion:
			deep := e.deep(d, f.AccuracyM)
			conf := applies && d <= 0 && e.confirmed(st.Device, f, func(old device.Fix) bool { return distAt(old) <= 0 })
			e.condition(condKey{order: c.order.ID, device: st.Device, subject: z.zone.ID, kind: alarm.Breach}, signal{
				active: applies && d <= 0 && (deep || conf || e.cfg.EnterFixes <= 1), clear: !applies || d > margin, hyst: applies, spec: spec, at: at, fix: f, dist: d, hasDist: true,
				certainty: e.certainty(d, f.AccuracyM), deep: deep, confirmed: conf, late: late,
				msg: message{render: msgBreach, dev: st.Device, what: z.zone.ID, a: d}})
			if z.zone.WarningM > 0 {
				e.condition(condKey{order: c.order.ID, device: st.Device, subject: z.zone.ID, kind: alarm.Warning}, signal{
					active: applies && d <= z.zone.WarningM, clear: !applies || d > z.zone.WarningM+margin, hyst: applies,
					spec: spec, at: at, fix: f, dist: d, hasDist: true, certainty: e.certainty(d-z.zone.WarningM, f.AccuracyM), late: late,
					msg: message{render: msgZoneWarning, dev: st.Device, what: z.zone.ID, a: d}})
			}
			if applies && d > 0 && d <= c.lead(e.cfg).Seconds()*maxSpeed {
				var closing float64
				if hasRef {
					closing = (z.shape.SignedDistance(refXY) - d) / span
				}
				e.approach(c, st, z.zone.ID, at, d, closing, hasRef, "exclusion zone "+z.zone.ID)
			} else {
				e.approach(c, st, z.zone.ID, at, d, 0, false, "exclusion zone "+z.zone.ID)
			}
		case order.Inclusion:
			deep := e.deep(-d, f.AccuracyM)
			conf := applies && d > 0 && e.confirmed(st.Device, f, func(old device.Fix) bool { return distAt(old) > 0 })
			e.condition(condKey{order: c.order.ID, device: st.Device, subject: z.zone.ID, kind: alarm.InclusionBreach}, signal{
				active: applies && d > 0 && (deep || conf || e.cfg.EnterFixes <= 1), clear: !applies || d < -margin, hyst: applies, spec: spec, at: at, fix: f, dist: d, hasDist: true,
				certainty: e.certainty(-d, f.AccuracyM), deep: deep, confirmed: conf, late: late,
				msg: message{render: msgInclusion, dev: st.Device, what: z.zone.ID, a: d}})
		}
	}
}

// maxSpeed bounds how far away (lead time × this, m/s) an approach is looked for.
const maxSpeed = 40.0

// lateBreaches evaluates a fix older than the device's latest one: it cannot change where the offender
// is now, but a breach it shows is raised as a late alarm, already restored, for the evidence.
func (e *Evaluator) lateBreaches(c *compiledOrder, st *device.State, f device.Fix, at time.Time) {
	p := c.proj.Forward(geo.LatLon{Lat: f.Lat, Lon: f.Lon})
	for i := range c.zones {
		z := &c.zones[i]
		if z.zone.Kind != order.Exclusion || !z.zone.Schedule.Applies(f.Time) {
			continue
		}
		d := z.shape.SignedDistance(p)
		if d > 0 {
			continue
		}
		fix := f
		a := e.newAlarm(condKey{order: c.order.ID, device: st.Device, subject: z.zone.ID, kind: alarm.Breach}, &alarmSpec{zone: z.zone.ID}, at,
			fmt.Sprintf("late report: offender %s was %s inside exclusion zone %s at %s", st.Device, metres(-d), z.zone.ID, f.Time.UTC().Format(time.RFC3339)))
		a.Active = false
		a.Certainty = e.certainty(d, f.AccuracyM)
		a.Late, a.LateByS = true, at.Sub(f.Time).Seconds()
		e.setPosition(a, &fix, &d)
		e.transition(a, alarm.Raised, alarm.EventRaised, at, "evaluator", "late fix")
	}
}

// evaluateDynamic checks the distance between the offender and every protected person of the order.
func (e *Evaluator) evaluateDynamic(c *compiledOrder, at time.Time) {
	dz := c.order.DynamicZone
	if dz == nil {
		return
	}
	off := e.devices[c.order.Offender.Device]
	if off == nil || off.LastFix == nil {
		return
	}
	margin := e.cfg.HysteresisM
	offLL := geo.LatLon{Lat: off.LastFix.Lat, Lon: off.LastFix.Lon}
	late := e.lateness(off.LastFix, at)
	for _, p := range c.order.Protected {
		pst := e.devices[p.Device]
		if pst == nil || pst.LastFix == nil {
			continue
		}
		subject := c.dynSubject(p.Device)
		spec := alarmSpec{zone: subject}
		// A protected unit's old fix is not trusted: it raises no_fix on ticks instead.
		fresh := absDur(off.LastFix.Time.Sub(pst.LastFix.Time)) <= e.cfg.ProtectedFixMaxAge
		pLL := geo.LatLon{Lat: pst.LastFix.Lat, Lon: pst.LastFix.Lon}
		d := geo.Distance(offLL, pLL)
		acc := off.LastFix.AccuracyM + pst.LastFix.AccuracyM
		// Next to a person nobody waits for a second report: the dynamic breach is raised on the first fix,
		// probable until confirmed.
		deep := e.deep(d-dz.RadiusM, acc)
		conf := fresh && d <= dz.RadiusM && e.confirmed(off.Device, off.LastFix, func(old device.Fix) bool {
			return geo.Distance(geo.LatLon{Lat: old.Lat, Lon: old.Lon}, pLL) <= dz.RadiusM
		})
		e.condition(condKey{order: c.order.ID, device: off.Device, subject: subject, kind: alarm.DynamicBreach}, signal{
			active: fresh && d <= dz.RadiusM, clear: !fresh || d > dz.RadiusM+margin, hyst: true, spec: spec, at: at,
			fix: off.LastFix, dist: d, hasDist: true, certainty: e.certainty(d-dz.RadiusM, acc), deep: deep, confirmed: conf, late: late,
			msg: message{render: msgDynamicBreach, dev: off.Device, what: p.Device, a: d, b: dz.RadiusM}})
		if dz.WarningM > 0 {
			e.condition(condKey{order: c.order.ID, device: off.Device, subject: subject, kind: alarm.Warning}, signal{
				active: fresh && d <= dz.WarningM, clear: !fresh || d > dz.WarningM+margin, hyst: true, spec: spec, at: at,
				fix: off.LastFix, dist: d, hasDist: true, certainty: e.certainty(d-dz.WarningM, acc), late: late,
				msg: message{render: msgDynamicWarning, dev: off.Device, what: p.Device, a: d, b: dz.WarningM}})
		}
		if fresh && d > dz.RadiusM && d-dz.RadiusM <= c.lead(e.cfg).Seconds()*maxSpeed {
			var closing float64
			ref, span, ok := e.approachRef(e.tracks[off.Device], off.LastFix)
			if ok {
				closing = (geo.Distance(geo.LatLon{Lat: ref.Lat, Lon: ref.Lon}, pLL) - d) / span
			}
			e.approach(c, off, subject, at, d-dz.RadiusM, closing, ok, "protected person "+p.Device)
		} else {
			e.approach(c, off, subject, at, d-dz.RadiusM, 0, false, "protected person "+p.Device)
		}
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func metres(d float64) string {
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%.0f m", math.Round(d))
}

// ---- Ticks ----

// Tick advances the log's clock and fires timers: orders that expire, tags that fall silent or lose
// their fix, schedules that open or close, fixes that leave the track window.
func (e *Evaluator) Tick(in Tick) {
	e.advance(in.At)
	e.ticking = true
	defer func() { e.ticking = false }()
	now := e.meta.Now
	for _, id := range e.orderIDs {
		c := e.orders[id]
		if c.order.State != order.Active {
			continue
		}
		if c.order.ValidUntil != nil && !now.Before(*c.order.ValidUntil) {
			e.endOrder(c, now, "tick", "validity ended")
			continue
		}
		if c.scheduled && c.order.InForce(now) {
			if off := e.devices[c.order.Offender.Device]; off != nil && off.LastFix != nil {
				e.evaluateZones(c, off, now)
			}
		}
	}
	e.escalate(now)
	cutoff := now.Add(-e.cfg.FixWindow)
	fx := e.effects()
	for _, d := range e.deviceIDs {
		st := e.devices[d]
		c := e.orders[st.OrderID]
		if c.order.InForce(now) {
			e.silence(c, st, now)
		}
		t := e.tracks[d]
		n := 0
		for n < len(t) && t[n].Time.Before(cutoff) {
			fx.FixesDeleted = append(fx.FixesDeleted, StoredFix{d, t[n]})
			n++
		}
		if n > 0 {
			e.tracks[d] = slices.Delete(t, 0, n)
		}
	}
}

// escalate raises the severity of police alarms nobody has acknowledged: one step (up to critical) and
// an escalated transition each time a threshold of EscalateAfter passes.
func (e *Evaluator) escalate(now time.Time) {
	if len(e.cfg.EscalateAfter) == 0 || len(e.waiting) == 0 {
		return
	}
	for _, id := range slices.Clone(e.waiting) {
		a := e.alarms[id]
		level := 0
		for _, after := range e.cfg.EscalateAfter {
			if now.Sub(a.RaisedAt) >= after {
				level++
			}
		}
		if level <= a.Escalation {
			continue
		}
		a.Escalation = level
		if a.Severity.Rank() < alarm.Critical.Rank() {
			a.Severity = [...]alarm.Severity{alarm.Info, alarm.Minor, alarm.Major, alarm.Critical}[a.Severity.Rank()]
		}
		e.transition(a, a.State, alarm.EventEscalated, now, "evaluator",
			fmt.Sprintf("not acknowledged after %s", now.Sub(a.RaisedAt).Truncate(time.Second)))
	}
}

// silence raises no_signal for a device that stopped reporting, and no_fix for one that reports without
// a usable position: a protected unit whose fix is too old to check the dynamic zone, or any device
// without a fix for NoFixAfter.
func (e *Evaluator) silence(c *compiledOrder, st *device.State, now time.Time) {
	since := st.LastSeen
	if since.IsZero() || since.Before(c.order.ValidFrom) {
		since = laterOf(st.BoundAt, c.order.ValidFrom)
	}
	if now.Sub(since) >= e.cfg.NoSignalAfter {
		e.condition(condKey{order: c.order.ID, device: st.Device, kind: alarm.NoSignal}, signal{active: true, at: now, fix: st.LastFix,
			msg: message{render: msgNoSignal, st: st, dur: now.Sub(since)}})
		return
	}
	limit := e.cfg.NoFixAfter
	if st.Role == device.Protected && c.order.DynamicZone != nil {
		limit = e.cfg.ProtectedFixMaxAge
	}
	fixAt := laterOf(st.BoundAt, c.order.ValidFrom)
	if st.LastFix != nil {
		fixAt = st.LastFix.Time
	}
	if now.Sub(fixAt) >= limit {
		e.condition(condKey{order: c.order.ID, device: st.Device, kind: alarm.NoFix}, signal{active: true, at: now, fix: st.LastFix,
			msg: message{render: msgNoFix, st: st, dur: now.Sub(fixAt), n: b2i(c.order.DynamicZone != nil)}})
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ---- Plugins ----

// PluginState raises a monitoring fault while a plugin is down, and restores it when it is back.
func (e *Evaluator) PluginState(in PluginState) {
	e.advance(in.At)
	subject := fmt.Sprintf("plugin:%s/%s", in.Node, in.Name)
	msg := message{render: msgPlugin, dev: in.Name, what: in.Kind, x: in.Node, y: in.Reason}
	if in.What == "delivery" {
		subject = fmt.Sprintf("delivery:%s/%s", in.Node, in.Name)
		msg.render = msgDelivery
	}
	if in.Up {
		msg.n = 1
	}
	e.condition(condKey{subject: subject, kind: alarm.MonitoringFault}, signal{
		active: !in.Up, clear: in.Up, spec: alarmSpec{subject: subject}, at: in.At, msg: msg})
}

// ---- Alarm lifecycle ----
// Ack acknowledges an alarm.
func (e *Evaluator) Ack(in AckAlarm) (*alarm.Alarm, error) {
	a, ok := e.alarms[in.ID]
	if !ok {
		return nil, &Rejection{Code: "not_found", Message: fmt.Sprintf("alarm %q does not exist", in.ID)}
	}
	if a.State != alarm.Raised {
		return nil, &Rejection{Code: "conflict", Message: fmt.Sprintf("alarm %q is %s, only a raised alarm can be acknowledged", in.ID, a.State)}
	}
	e.advance(in.At)
	e.transition(a, alarm.Acknowledged, alarm.EventAcknowledged, in.At, in.By, in.Note)
	out := cloneAlarm(a)
	return &out, nil
}

// EventAnnotated is the event of a transition that only adds a note; the alarm's state is unchanged.
const EventAnnotated alarm.Event = "annotated"

// Annotate adds a note to an alarm, in any state, without changing the state.
func (e *Evaluator) Annotate(in AnnotateAlarm) (*alarm.Alarm, error) {
	a, ok := e.alarms[in.ID]
	if !ok {
		return nil, &Rejection{Code: "not_found", Message: fmt.Sprintf("alarm %q does not exist", in.ID)}
	}
	if strings.TrimSpace(in.Note) == "" {
		return nil, &Rejection{Code: "invalid", Field: "note", Message: "an annotation needs a note"}
	}
	e.advance(in.At)
	e.transition(a, a.State, EventAnnotated, in.At, in.By, in.Note)
	out := cloneAlarm(a)
	return &out, nil
}

// Resolve closes an alarm.
func (e *Evaluator) Resolve(in ResolveAlarm) (*alarm.Alarm, error) {
	a, ok := e.alarms[in.ID]
	if !ok {
		return nil, &Rejection{Code: "not_found", Message: fmt.Sprintf("alarm %q does not exist", in.ID)}
	}
	if a.State == alarm.Resolved {
		return nil, &Rejection{Code: "conflict", Message: fmt.Sprintf("alarm %q is already resolved", in.ID)}
	}
	e.advance(in.At)
	e.transition(a, alarm.Resolved, alarm.EventResolved, in.At, in.By, in.Reason)
	for k, id := range e.open {
		if id == a.ID {
			delete(e.open, k) // the key is unique per open alarm; order of this scan cannot matter
		}
	}
	out := cloneAlarm(a)
	return &out, nil
}

// kindInfo gives each kind its class and base severity.
var kindInfo = map[alarm.Kind]struct {
	class    alarm.Class
	severity alarm.Severity
}{
	alarm.Breach:          {alarm.Police, alarm.Critical},
	alarm.DynamicBreach:   {alarm.Police, alarm.Critical},
	alarm.InclusionBreach: {alarm.Police, alarm.Critical},
	alarm.Approach:        {alarm.Police, alarm.Major},
	alarm.Warning:         {alarm.Police, alarm.Major},
	alarm.Tamper:          {alarm.Police, alarm.Major},
	alarm.NoSignal:        {alarm.Technical, alarm.Major},
	alarm.NoFix:           {alarm.Technical, alarm.Minor},
	alarm.BatteryLow:      {alarm.Technical, alarm.Minor},
	alarm.DeviceFault:     {alarm.Technical, alarm.Major},
	alarm.MonitoringFault: {alarm.Technical, alarm.Critical},
}

// isBreach reports whether an alarm kind counts for repetition.
func isBreach(k alarm.Kind) bool {
	return k == alarm.Breach || k == alarm.DynamicBreach || k == alarm.InclusionBreach
}

// signal is one observation of a condition.
type signal struct {
	active  bool // the condition holds
	clear   bool // the condition clearly does not hold (beyond any margin); ignored when active
	hyst    bool // restoring needs ExitFixes clear signals in a row; otherwise one clear signal restores
	spec    alarmSpec
	at      time.Time
	fix     *device.Fix
	dist    float64 // valid when hasDist
	hasDist bool

	certainty       alarm.Certainty
	deep            bool // so far on the wrong side that one fix is enough to be certain
	confirmed       bool // the previous fix was on the wrong side too
	late            time.Duration
	eta, closingMps float64 // valid when hasETA
	hasETA          bool
	msg             message
}

func (s *signal) distance() *float64 {
	if !s.hasDist {
		return nil
	}
	return &s.dist
}

// condition reconciles a condition with its open alarm: raise when it starts, update while it lasts,
// restore when it has clearly ended (with hysteresis where the signal asks for it). Only the start, a
// return, a rise in certainty and the end are transitions; other updates refresh the position.
func (e *Evaluator) condition(k condKey, s signal) {
	id, isOpen := e.open[k]
	if !isOpen {
		if !s.active {
			return
		}
		a := e.newAlarm(k, &s.spec, s.at, s.msg.String())
		if s.certainty == alarm.Certain && !s.deep && !s.confirmed {
			// One fix can be a multipath outlier that reports a good accuracy: the next fix confirms.
			s.certainty = alarm.Probable
		}
		e.apply(a, s)
		e.open[k] = a.ID
		e.transition(a, alarm.Raised, alarm.EventRaised, s.at, "evaluator", "")
		return
	}
	a := e.alarms[id]
	switch {
	case s.active && !a.Active:
		a.Active, a.ExitStreak, a.Message = true, 0, s.msg.String()
		// A return is judged afresh: one fix is not certain unless it is deep or confirmed.
		a.Certainty = ""
		if s.certainty == alarm.Certain && !s.deep && !s.confirmed {
			s.certainty = alarm.Probable
		}
		e.apply(a, s)
		e.transition(a, a.State, alarm.EventUpdated, s.at, "evaluator", "condition returned")
	case s.active:
		upgrade := isBreach(a.Kind) && a.Certainty == alarm.Probable && s.certainty == alarm.Certain
		moved := s.fix != nil && (a.Position == nil || !s.fix.Time.Equal(a.Position.Time))
		if moved || upgrade || a.ExitStreak != 0 {
			a.ExitStreak, a.Message = 0, s.msg.String()
			e.apply(a, s)
			e.effects().dirtyAlarms[a.ID] = struct{}{}
		}
		if upgrade {
			e.transition(a, a.State, alarm.EventUpdated, s.at, "evaluator", "now certain")
		}
	case a.Active && s.clear:
		// Count reports, not evaluations: a tick re-reading the same fixes is no new evidence.
		if !e.ticking {
			a.ExitStreak++
		}
		if !s.hyst || a.ExitStreak >= e.cfg.ExitFixes {
			a.Active, a.ExitStreak = false, 0
			e.setPosition(a, s.fix, s.distance())
			note := s.msg.String()
			e.transition(a, a.State, alarm.EventRestored, s.at, "evaluator", note)
			return
		}
		e.setPosition(a, s.fix, s.distance())
		e.effects().dirtyAlarms[a.ID] = struct{}{}
	case a.Active && a.ExitStreak != 0:
		// Between the boundary and the margin: neither in nor clearly out; start counting again.
		a.ExitStreak = 0
		e.effects().dirtyAlarms[a.ID] = struct{}{}
	}
}

// newAlarm creates an alarm (not yet indexed or transitioned), with severity raised by repetition.
func (e *Evaluator) newAlarm(k condKey, spec *alarmSpec, at time.Time, msg string) *alarm.Alarm {
	e.meta.AlarmSeq++
	info := kindInfo[k.kind]
	a := &alarm.Alarm{
		ID:       fmt.Sprintf("alm-%08d", e.meta.AlarmSeq),
		OrderID:  k.order,
		Kind:     k.kind,
		Class:    info.class,
		Severity: info.severity,
		Active:   true,
		Device:   k.device,
		RaisedAt: at,
		Message:  msg,
	}
	if spec != nil {
		a.ZoneID, a.Subject = spec.zone, spec.subject
	}
	if k.order != "" {
		a.Breaches30d = e.countBreaches(k.order, at, isBreach(k.kind))
		if a.Class == alarm.Police && a.Breaches30d >= e.cfg.RepetitionEscalate {
			a.Severity = alarm.Critical
		}
	}
	e.alarms[a.ID] = a
	return a
}

// countBreaches returns the order's breaches in the repetition window before at, recording a new one
// when add is set.
func (e *Evaluator) countBreaches(orderID string, at time.Time, add bool) int {
	times := e.repeats[orderID]
	from := at.Add(-e.cfg.RepetitionWindow)
	n := 0
	for n < len(times) && times[n].Before(from) {
		n++
	}
	changed := n > 0
	times = times[n:]
	if add {
		times = append(times, at)
		changed = true
	}
	if changed {
		e.repeats[orderID] = times
		e.effects().dirtyRepeats[orderID] = struct{}{}
	}
	return len(times)
}

// apply copies a signal's details onto its alarm.
func (e *Evaluator) apply(a *alarm.Alarm, s signal) {
	// Certainty only rises while an alarm lasts: a noisy fix must not make a certain breach doubtful.
	if a.Certainty == "" || s.certainty == alarm.Certain {
		a.Certainty = s.certainty
	}
	if s.late > 0 {
		a.Late, a.LateByS = true, math.Round(s.late.Seconds())
	} else if s.fix != nil {
		a.Late, a.LateByS = false, 0
	}
	if s.hasETA {
		eta, cl := math.Round(s.eta), math.Round(s.closingMps*10)/10
		a.ETAS, a.ClosingMps = &eta, &cl
	}
	first := len(a.Evidence) == 0
	e.setPosition(a, s.fix, s.distance())
	if first && s.fix != nil && a.Device != "" {
		// The track leading up to the alarm is evidence too.
		var before []device.Fix
		from := s.fix.Time.Add(-e.cfg.EvidenceBefore)
		for _, f := range e.tracks[a.Device] {
			if !f.Time.Before(from) && f.Time.Before(s.fix.Time) {
				before = append(before, f)
			}
		}
		if n := len(before) + len(a.Evidence); n > e.cfg.EvidenceMax {
			before = before[n-e.cfg.EvidenceMax:]
		}
		a.Evidence = append(before, a.Evidence...)
	}
}

type alarmSpec struct {
	zone, subject string
}

func (e *Evaluator) setPosition(a *alarm.Alarm, f *device.Fix, dist *float64) {
	if f == nil {
		return
	}
	p := *f
	a.Position = &p
	if dist != nil {
		d := math.Round(*dist*10) / 10
		a.DistanceM = &d
	}
	if n := len(a.Evidence); n == 0 || !a.Evidence[n-1].Time.Equal(p.Time) {
		a.Evidence = append(a.Evidence, p)
		if len(a.Evidence) > e.cfg.EvidenceMax {
			// Keep the first fix and the most recent ones.
			a.Evidence = append(a.Evidence[:1], a.Evidence[len(a.Evidence)-e.cfg.EvidenceMax+1:]...)
		}
	}
}

func (e *Evaluator) transition(a *alarm.Alarm, to alarm.State, ev alarm.Event, at time.Time, by, note string) {
	wasRaised := a.State == alarm.Raised && len(a.Transitions) > 0
	wasActivePolice := a.Class == alarm.Police && wasRaised
	a.State = to
	t := alarm.Transition{Seq: uint32(len(a.Transitions) + 1), State: to, Event: ev, At: at, By: by, Note: note}
	a.Transitions = append(a.Transitions, t)
	isActivePolice := a.Class == alarm.Police && a.State == alarm.Raised
	wasSiren := sounds(a.Class, a.Kind) && wasRaised
	isSiren := sounds(a.Class, a.Kind) && a.State == alarm.Raised
	switch {
	case isSiren && !wasSiren:
		e.siren++
	case wasSiren && !isSiren:
		e.siren--
	}
	switch {
	case isActivePolice && !wasActivePolice:
		e.activePolice++
		e.waiting = insertSorted(e.waiting, a.ID)
	case wasActivePolice && !isActivePolice:
		e.activePolice--
		e.waiting = removeSorted(e.waiting, a.ID)
	}
	fx := e.effects()
	fx.dirtyAlarms[a.ID] = struct{}{}
	esc := 0
	for _, id := range e.waiting {
		esc = max(esc, e.alarms[id].Escalation)
	}
	fx.Changes = append(fx.Changes, alarm.Change{Alarm: summary(a), Transition: t, ActivePolice: e.activePolice, PoliceEscalation: esc, SirenAlarms: e.siren})
	e.commandsFor(a, ev, at)
}

// commandsFor decides the device commands a transition calls for: the offender's tag vibrates at a
// warning or breach and reports faster while near; the protected person's unit is warned when the
// offender approaches or comes near them.
func (e *Evaluator) commandsFor(a *alarm.Alarm, ev alarm.Event, at time.Time) {
	c := e.orders[a.OrderID]
	if c == nil || a.Late || (ev != alarm.EventRaised && ev != alarm.EventRestored) {
		return
	}
	offender := c.order.Offender.Device
	dynamic := strings.HasPrefix(a.ZoneID, "dynamic:")
	raised := ev == alarm.EventRaised
	switch {
	case raised && (a.Kind == alarm.Warning || a.Kind == alarm.Breach || a.Kind == alarm.DynamicBreach || a.Kind == alarm.InclusionBreach):
		e.command(offender, device.CommandVibrate, nil, a.ID, at)
		if a.Kind == alarm.Warning && e.cfg.FastReportS > 0 {
			e.command(offender, device.CommandReportInterval, map[string]string{"interval_s": strconv.Itoa(e.cfg.FastReportS)}, a.ID, at)
		}
	case !raised && a.Kind == alarm.Warning && e.cfg.NormalReportS > 0:
		e.command(offender, device.CommandReportInterval, map[string]string{"interval_s": strconv.Itoa(e.cfg.NormalReportS)}, a.ID, at)
	}
	if raised && (a.Kind == alarm.Approach || a.Kind == alarm.DynamicBreach || (a.Kind == alarm.Warning && dynamic)) {
		for _, p := range c.order.Protected {
			if dynamic && a.ZoneID != "dynamic:"+p.Device {
				continue
			}
			e.command(p.Device, device.CommandWarn, map[string]string{"alarm": string(a.Kind)}, a.ID, at)
		}
	}
}

func (e *Evaluator) command(dev, kind string, args map[string]string, reason string, at time.Time) {
	e.meta.CommandSeq++
	fx := e.effects()
	fx.Commands = append(fx.Commands, device.Command{
		ID: fmt.Sprintf("cmd-%08d", e.meta.CommandSeq), Device: dev, Kind: kind, Args: args, Reason: reason, At: at})
}

// summary is an alarm as a transition carries it: without its history and evidence, which stay in the
// state (GET /v1/alarms/{id}). A flapping alarm must not make every later delivery larger.
func summary(a *alarm.Alarm) alarm.Alarm {
	c := *a
	c.Transitions, c.Evidence = nil, nil
	if a.Position != nil {
		p := *a.Position
		c.Position = &p
	}
	if a.DistanceM != nil {
		d := *a.DistanceM
		c.DistanceM = &d
	}
	return c
}

func cloneAlarm(a *alarm.Alarm) alarm.Alarm {
	c := *a
	c.Transitions = slices.Clone(a.Transitions)
	c.Evidence = slices.Clone(a.Evidence)
	if a.Position != nil {
		p := *a.Position
		c.Position = &p
	}
	if a.DistanceM != nil {
		d := *a.DistanceM
		c.DistanceM = &d
	}
	return c
}

// ---- Reads (callers hold the state machine's read lock) ----

// ActivePolice counts police alarms raised and not yet acknowledged.
func (e *Evaluator) ActivePolice() int { return e.activePolice }

// Order returns a copy of an order.
func (e *Evaluator) Order(id string) (order.Order, bool) {
	c, ok := e.orders[id]
	if !ok {
		return order.Order{}, false
	}
	return *c.order, true
}

// Orders returns every order, sorted by id.
func (e *Evaluator) Orders() []order.Order {
	out := make([]order.Order, 0, len(e.orderIDs))
	for _, id := range e.orderIDs {
		out = append(out, *e.orders[id].order)
	}
	return out
}

// Device returns a copy of a bound device's state.
func (e *Evaluator) Device(id string) (device.State, bool) {
	st, ok := e.devices[id]
	if !ok {
		return device.State{}, false
	}
	return cloneState(st), true
}

// cloneState copies a device state deeply: the evaluator changes its fix in place.
func cloneState(st *device.State) device.State {
	c := *st
	if st.LastFix != nil {
		f := *st.LastFix
		c.LastFix = &f
	}
	return c
}

// Devices returns every bound device, sorted by id.
func (e *Evaluator) Devices() []device.State {
	out := make([]device.State, 0, len(e.deviceIDs))
	for _, id := range e.deviceIDs {
		out = append(out, cloneState(e.devices[id]))
	}
	return out
}

// Track returns the fixes kept for a device, in fix-time order.
func (e *Evaluator) Track(id string) []device.Fix { return slices.Clone(e.tracks[id]) }

// Alarm returns a copy of an alarm.
func (e *Evaluator) Alarm(id string) (alarm.Alarm, bool) {
	a, ok := e.alarms[id]
	if !ok {
		return alarm.Alarm{}, false
	}
	return cloneAlarm(a), true
}

// Alarms returns alarms matching the filter, sorted by id (which is the order they were raised in).
func (e *Evaluator) Alarms(openOnly bool, orderID string) []alarm.Alarm {
	ids := make([]string, 0, len(e.alarms))
	for id, a := range e.alarms {
		if openOnly && !a.Open() {
			continue
		}
		if orderID != "" && a.OrderID != orderID {
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]alarm.Alarm, 0, len(ids))
	for _, id := range ids {
		out = append(out, cloneAlarm(e.alarms[id]))
	}
	return out
}

// ---- Loading from the store ----

// ErrCorrupt marks a record that cannot be loaded.
var ErrCorrupt = errors.New("corrupt state record")

// LoadMeta sets the scalar state.
func (e *Evaluator) LoadMeta(m Meta) { e.meta = m }

// LoadOrder adds an order read from the store.
func (e *Evaluator) LoadOrder(o order.Order) error {
	c, err := compile(&o)
	if err != nil {
		return fmt.Errorf("%w: order %s: %v", ErrCorrupt, o.ID, err)
	}
	e.orders[o.ID] = c
	e.orderIDs = insertSorted(e.orderIDs, o.ID)
	return nil
}

// LoadDevice adds a device state read from the store.
func (e *Evaluator) LoadDevice(st device.State) error {
	if _, ok := e.orders[st.OrderID]; !ok {
		return fmt.Errorf("%w: device %s is bound to unknown order %q", ErrCorrupt, st.Device, st.OrderID)
	}
	s := st
	e.devices[st.Device] = &s
	e.deviceIDs = insertSorted(e.deviceIDs, st.Device)
	return nil
}

// LoadFix adds a kept fix read from the store.
func (e *Evaluator) LoadFix(d string, f device.Fix) {
	t := e.tracks[d]
	i := sort.Search(len(t), func(i int) bool { return t[i].Time.After(f.Time) })
	e.tracks[d] = slices.Insert(t, i, f)
}

// Area returns the zone an alarm is about, for hooks: the zone's geometry, or for a dynamic zone a circle
// around the protected person's latest fix. ok is false for alarms without a zone.
func (e *Evaluator) Area(a *alarm.Alarm) (*alarm.Area, bool) {
	c, ok := e.orders[a.OrderID]
	if !ok || a.ZoneID == "" {
		return nil, false
	}
	if dev, dynamic := strings.CutPrefix(a.ZoneID, "dynamic:"); dynamic {
		st, ok := e.devices[dev]
		if !ok || st.LastFix == nil || c.order.DynamicZone == nil {
			return nil, false
		}
		coords, _ := json.Marshal([]float64{st.LastFix.Lon, st.LastFix.Lat})
		return &alarm.Area{Type: "Point", Coordinates: coords, RadiusM: c.order.DynamicZone.RadiusM}, true
	}
	for i := range c.order.Zones {
		if z := &c.order.Zones[i]; z.ID == a.ZoneID {
			return &alarm.Area{Type: z.Geometry.Type, Coordinates: z.Geometry.Coordinates, RadiusM: z.RadiusM}, true
		}
	}
	return nil, false
}

// Repeats returns when an order's breaches in the repetition window were raised.
func (e *Evaluator) Repeats(orderID string) []time.Time { return slices.Clone(e.repeats[orderID]) }

// LoadRepeats sets an order's breach history read from the store.
func (e *Evaluator) LoadRepeats(orderID string, times []time.Time) { e.repeats[orderID] = times }

// LoadAlarm adds an alarm read from the store and rebuilds its index entries.
func (e *Evaluator) LoadAlarm(a alarm.Alarm) {
	c := cloneAlarm(&a)
	e.alarms[a.ID] = &c
	if c.Open() {
		k := condKey{order: c.OrderID, device: c.Device, kind: c.Kind, subject: c.ZoneID}
		if c.Kind == alarm.MonitoringFault {
			k = condKey{subject: c.Subject, kind: c.Kind}
		}
		e.open[k] = c.ID
	}
	if c.Class == alarm.Police && c.State == alarm.Raised {
		e.activePolice++
		e.waiting = insertSorted(e.waiting, c.ID)
	}
	if sounds(c.Class, c.Kind) && c.State == alarm.Raised {
		e.siren++
	}
}

func insertSorted(s []string, v string) []string {
	i, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	return slices.Insert(s, i, v)
}

func removeSorted(s []string, v string) []string {
	i, found := slices.BinarySearch(s, v)
	if !found {
		return s
	}
	return slices.Delete(s, i, i+1)
}

// Config returns the evaluator's configuration.
func (e *Evaluator) Config() Config { return e.cfg }

// message is an alarm's text, rendered only when an alarm is raised, updated or restored: a static
// render function and its values, so that evaluating a fix that changes nothing allocates nothing.
type message struct {
	render  func(m message) string
	st      *device.State
	dev     string
	what    string
	x, y    string
	a, b, c float64
	n       int
	dur     time.Duration
}

func (m message) String() string {
	if m.render == nil {
		return ""
	}
	return m.render(m)
}

func msgTamper(m message) string  { return describe(m.st) + ": strap or case opened" }
func msgBattery(m message) string { return fmt.Sprintf("%s: battery at %d %%", describe(m.st), m.n) }

// msgApproach: a distance, b closing speed, c ETA; n = 1 while approaching.
func msgApproach(m message) string {
	switch {
	case m.a <= 0:
		return fmt.Sprintf("offender %s has reached %s", m.dev, m.what)
	case m.n == 0:
		return fmt.Sprintf("offender %s is no longer approaching %s (%s away)", m.dev, m.what, metres(m.a))
	}
	return fmt.Sprintf("offender %s is approaching %s: %s away, closing at %.1f m/s, about %s",
		m.dev, m.what, metres(m.a), m.b, (time.Duration(m.c) * time.Second).Round(time.Second))
}

func msgBreach(m message) string {
	return fmt.Sprintf("offender %s is %s inside exclusion zone %s", m.dev, metres(-m.a), m.what)
}

func msgZoneWarning(m message) string {
	return fmt.Sprintf("offender %s is %s from exclusion zone %s", m.dev, metres(m.a), m.what)
}

func msgInclusion(m message) string {
	return fmt.Sprintf("offender %s is %s outside zone %s where they must stay", m.dev, metres(m.a), m.what)
}

func msgDynamicBreach(m message) string {
	return fmt.Sprintf("offender %s is %s from protected person %s (limit %s)", m.dev, metres(m.a), m.what, metres(m.b))
}

func msgDynamicWarning(m message) string {
	return fmt.Sprintf("offender %s is %s from protected person %s (warning at %s)", m.dev, metres(m.a), m.what, metres(m.b))
}

func msgNoSignal(m message) string {
	return fmt.Sprintf("%s: no report for %s", describe(m.st), m.dur.Truncate(time.Second))
}

// msgNoFix: n = 1 when the order has a dynamic zone.
func msgNoFix(m message) string {
	s := fmt.Sprintf("%s: no position for %s", describe(m.st), m.dur.Truncate(time.Second))
	if m.st.Role == device.Protected && m.n == 1 {
		s += "; the dynamic zone cannot be checked"
	}
	return s
}

// msgDelivery: dev the hook, x the node, y the reason; n = 1 when it delivers again.
func msgDelivery(m message) string {
	if m.n == 1 {
		return fmt.Sprintf("hook %s on %s delivers again", m.dev, m.x)
	}
	return fmt.Sprintf("hook %s on %s cannot deliver: %s", m.dev, m.x, m.y)
}

// msgPlugin: dev the plugin, what its kind, x the node, y the reason; n = 1 when it is back.
func msgPlugin(m message) string {
	if m.n == 1 {
		return fmt.Sprintf("%s plugin %s on %s is running again", m.what, m.dev, m.x)
	}
	return fmt.Sprintf("%s plugin %s on %s is down: %s", m.what, m.dev, m.x, m.y)
}

// sounds says which raised alarms sound the operations room's siren: every police alarm, and every
// monitoring fault, because Skjold going blind needs someone as surely as a breach does.
func sounds(c alarm.Class, k alarm.Kind) bool { return c == alarm.Police || k == alarm.MonitoringFault }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
