// Package breach is the evaluator: a deterministic state machine that turns orders, device reports and
// clock ticks into alarm transitions. It reads no wall clock and no randomness, and never lets map order
// reach its output: the same entries give the same alarms on every node and at every replay.
package breach

import (
	"cmp"
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
//
// The evaluator reuses one Effects and its slices from batch to batch: what Finish returns is valid until
// the next Begin (or the next entry applied without one). Copy what must outlive it.
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

	dirtyOrders, deletedDevices, dirtyAlarms, dirtyRepeats map[string]struct{}
	// Devices changed in this batch are marked with its epoch (devState.dirty) and listed once here;
	// an unbound one loses its mark.
	epoch        uint64
	dirtyDevices []*devState
	// The slices' storage, kept while the exported fields are nil.
	bufs effectBufs
}

type effectBufs struct {
	changes                                          []alarm.Change
	commands                                         []device.Command
	orders, devices, devicesDeleted, alarms, repeats []string
	fixesAdded, fixesDeleted                         []StoredFix
	devKeys, devKeysTmp                              []devKey
}

type devKey struct {
	key [2]uint64
	ds  *devState
}

// reset empties fx for a new batch, keeping its storage.
func (fx *Effects) reset(epoch uint64) {
	if fx.dirtyOrders == nil {
		fx.dirtyOrders = map[string]struct{}{}
		fx.deletedDevices = map[string]struct{}{}
		fx.dirtyAlarms = map[string]struct{}{}
		fx.dirtyRepeats = map[string]struct{}{}
	}
	clear(fx.dirtyOrders)
	clear(fx.deletedDevices)
	clear(fx.dirtyAlarms)
	clear(fx.dirtyRepeats)
	clear(fx.dirtyDevices)
	b := &fx.bufs
	*fx = Effects{
		Changes: b.changes[:0], Commands: b.commands[:0], FixesAdded: b.fixesAdded[:0], FixesDeleted: b.fixesDeleted[:0],
		dirtyOrders: fx.dirtyOrders, deletedDevices: fx.deletedDevices, dirtyAlarms: fx.dirtyAlarms, dirtyRepeats: fx.dirtyRepeats,
		epoch: epoch, dirtyDevices: fx.dirtyDevices[:0], bufs: fx.bufs,
	}
}

func (fx *Effects) finish() {
	b := &fx.bufs
	b.orders = sortedKeys(b.orders, fx.dirtyOrders)
	b.devicesDeleted = sortedKeys(b.devicesDeleted, fx.deletedDevices)
	b.alarms = sortedKeys(b.alarms, fx.dirtyAlarms)
	b.repeats = sortedKeys(b.repeats, fx.dirtyRepeats)
	// Sorted by device id: by the ids' first 16 bytes as two integers, copied next to each other, and
	// the ids themselves only on a tie.
	keys := b.devKeys[:0]
	for _, d := range fx.dirtyDevices {
		if d.dirty == fx.epoch {
			keys = append(keys, devKey{d.key, d})
		}
	}
	sorted, spare := sortDevKeys(keys, b.devKeysTmp)
	b.devices = b.devices[:0]
	for _, k := range sorted {
		b.devices = append(b.devices, k.ds.st.Device)
	}
	clear(sorted)
	clear(spare[:min(len(sorted), cap(spare))])
	b.devKeys, b.devKeysTmp = sorted[:0], spare[:0]
	// Keep the storage; expose nil for nothing, as a fresh Effects has.
	b.changes, b.commands, b.fixesAdded, b.fixesDeleted = fx.Changes, fx.Commands, fx.FixesAdded, fx.FixesDeleted
	fx.Changes, fx.Commands = orNil(fx.Changes), orNil(fx.Commands)
	fx.FixesAdded, fx.FixesDeleted = orNil(fx.FixesAdded), orNil(fx.FixesDeleted)
	fx.Orders, fx.Devices, fx.DevicesDeleted = orNil(b.orders), orNil(b.devices), orNil(b.devicesDeleted)
	fx.Alarms, fx.Repeats = orNil(b.alarms), orNil(b.repeats)
}

// devKeyLess orders device keys as their ids compare.
func devKeyLess(a, b *devKey) bool {
	if a.key[0] != b.key[0] {
		return a.key[0] < b.key[0]
	}
	if a.key[1] != b.key[1] {
		return a.key[1] < b.key[1]
	}
	return a.ds.st.Device < b.ds.st.Device
}

// sortDevKeys sorts keys by device id and returns them sorted (in keys or in tmp, whose storage it
// returns for reuse). A batch's devices are many and their ids share a prefix, so it is a radix sort,
// least significant byte first, over only the bytes of the 16-byte keys that differ between them; ids
// with equal keys (longer than 16 bytes, alike in their first 16) are then ordered by the ids themselves.
// The result is the order of the ids, whatever the input order: ids are distinct.
func sortDevKeys(keys, tmp []devKey) (sorted, spare []devKey) {
	if len(keys) <= 32 {
		for i := 1; i < len(keys); i++ {
			for j := i; j > 0 && devKeyLess(&keys[j], &keys[j-1]); j-- {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
		return keys, tmp
	}
	var diff [2]uint64
	for i := range keys {
		diff[0] |= keys[i].key[0] ^ keys[0].key[0]
		diff[1] |= keys[i].key[1] ^ keys[0].key[1]
	}
	tmp = slices.Grow(tmp[:0], len(keys))[:len(keys)]
	src, dst := keys, tmp
	for b := 15; b >= 0; b-- {
		w, shift := b/8, uint(56-8*(b%8))
		if (diff[w]>>shift)&0xff == 0 {
			continue
		}
		var count [257]int
		for i := range src {
			count[1+(src[i].key[w]>>shift)&0xff]++
		}
		for d := 1; d < len(count); d++ {
			count[d] += count[d-1]
		}
		for i := range src {
			d := (src[i].key[w] >> shift) & 0xff
			dst[count[d]] = src[i]
			count[d]++
		}
		src, dst = dst, src
	}
	// Equal keys: order by the ids.
	for i := 0; i < len(src); {
		j := i + 1
		for j < len(src) && src[j].key == src[i].key {
			j++
		}
		if run := src[i:j]; len(run) > 1 {
			slices.SortFunc(run, func(a, b devKey) int { return strings.Compare(a.ds.st.Device, b.ds.st.Device) })
		}
		i = j
	}
	if &src[0] == &keys[0] {
		return keys, tmp
	}
	return src, keys
}

func orNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// timeKey is an observation's fix time as an instant (seconds, nanoseconds) and its place in the batch.
type timeKey struct {
	sec  int64
	nsec int32
	i    int32
}

// sortByTime orders idx by the observations' fix times, ties in batch order: what a stable sort by
// Time.Before gives, compared on integers.
func (e *Evaluator) sortByTime(obs []device.Observation, idx []int32) []int32 {
	keys := e.timeKeys[:0]
	for i := range obs {
		keys = append(keys, timeKey{obs[i].Time.Unix(), int32(obs[i].Time.Nanosecond()), int32(i)})
	}
	slices.SortFunc(keys, func(a, b timeKey) int {
		return cmp.Or(cmp.Compare(a.sec, b.sec), cmp.Compare(a.nsec, b.nsec), cmp.Compare(a.i, b.i))
	})
	for k := range keys {
		idx[k] = keys[k].i
	}
	e.timeKeys = keys[:0]
	return idx
}

// markDirty records that a device's state must be written.
func (fx *Effects) markDirty(ds *devState) {
	if ds.dirty != fx.epoch {
		ds.dirty = fx.epoch
		fx.dirtyDevices = append(fx.dirtyDevices, ds)
	}
}

func sortedKeys(out []string, m map[string]struct{}) []string {
	out = out[:0]
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
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

// devState is a bound device: its state as the store keeps it and what the evaluator derives from it.
type devState struct {
	st      device.State // st.LastFix points to lastFix once the device has a fix
	lastFix device.Fix
	order   *compiledOrder // the order st.OrderID names (follow next when it was replaced)
	conds   *condSet       // open alarms of (st.OrderID, st.Device): own, unless the device had a set before
	own     condSet
	track   track
	dirty   uint64    // the epoch of the batch that last marked it changed
	key     [2]uint64 // the device id's first 16 bytes, big-endian, zero-padded: its sort order but for ties
}

// sortKey returns the first 16 bytes of id as two big-endian integers, zero-padded. Comparing keys orders
// ids as comparing the strings does, except that equal keys need the strings compared.
func sortKey(id string) (k [2]uint64) {
	for i := 0; i < 16 && i < len(id); i++ {
		k[i/8] |= uint64(id[i]) << (56 - 8*(i%8))
	}
	return k
}

// compiled returns the device's order.
func (ds *devState) compiled() *compiledOrder {
	for ds.order.next != nil {
		ds.order = ds.order.next
	}
	return ds.order
}

// Evaluator holds the hot state. It is not safe for concurrent use; the state machine serialises access.
type Evaluator struct {
	cfg          Config
	meta         Meta
	orders       map[string]*compiledOrder
	orderIDs     []string          // sorted
	devices      devTable          // bound devices by id
	bound        []*devState       // bound devices, sorted by id: ticks visit them without a look-up
	loose        map[string]*track // fixes loaded for devices not bound (yet)
	alarms       map[string]*alarm.Alarm
	open         map[condOwner]*condSet // open alarms by owner; see conds.go
	repeats      map[string][]time.Time // per order: when its breaches were raised, within the window
	ticking      bool                   // evaluating on a tick, not on a report
	waiting      []string               // police alarms raised and not acknowledged, sorted by id
	escalated    map[int]int            // waiting alarms per escalation level
	siren        int                    // alarms that sound the siren: police alarms and monitoring faults, raised
	activePolice int
	fx           *Effects

	// slow turns the fast paths off: every zone and protected person is evaluated exactly on every fix.
	// The results are the same; tests compare the two.
	slow bool

	// Reused between calls; nothing in them outlives one.
	spare    Effects
	epoch    uint64
	cands    []int32
	order    []int32
	timeKeys []timeKey
	batch    []*devState
	touched  uint64
	msgBuf   []byte
	lookups  []lookup
}

// lookup is a device id's sort key and hash.
type lookup struct {
	k [2]uint64
	h uint64
}

// New returns an empty evaluator.
func New(cfg Config) *Evaluator {
	return &Evaluator{
		cfg:     cfg,
		orders:  map[string]*compiledOrder{},
		loose:   map[string]*track{},
		alarms:  map[string]*alarm.Alarm{},
		open:    map[condOwner]*condSet{},
		repeats: map[string][]time.Time{},
	}
}

// Begin starts collecting effects; Finish returns them. Several entries may be applied between the two
// (one Raft batch).
func (e *Evaluator) Begin() {
	e.epoch++
	e.spare.reset(e.epoch)
	e.fx = &e.spare
}

// Finish returns the effects collected since Begin. They are valid until the next Begin.
func (e *Evaluator) Finish() *Effects {
	fx := e.effects()
	fx.finish()
	e.fx = nil
	return fx
}

func (e *Evaluator) effects() *Effects {
	if e.fx == nil {
		e.Begin()
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
		if ds := e.devices.get(d); ds != nil && ds.st.OrderID != o.ID {
			f := "offender.device"
			if i > 0 {
				f = fmt.Sprintf("protected[%d].device", i-1)
			}
			return nil, &Rejection{Code: "conflict", Field: f, Message: fmt.Sprintf("%s: device %q is bound to active order %q", f, d, ds.st.OrderID)}
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
	e.setOrder(c)
	for i, d := range o.Devices() {
		role := device.Protected
		if i == 0 {
			role = device.Offender
		}
		ds := e.devices.get(d)
		if ds != nil {
			ds.st.Role = role
		} else {
			ds = e.bind(device.State{Device: d, OrderID: o.ID, Role: role, BoundAt: in.At})
		}
		e.effects().markDirty(ds)
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
	c.active = false
	c.order.EndedAt, c.order.EndedBy, c.order.EndReason = &t, by, reason
	c.order.Version++
	c.order.UpdatedAt, c.order.UpdatedBy = at, by
	for _, d := range c.order.Devices() {
		e.unbind(d)
	}
	e.effects().dirtyOrders[c.order.ID] = struct{}{}
}

func (e *Evaluator) unbind(d string) {
	ds := e.devices.get(d)
	if ds == nil {
		return
	}
	e.devices.remove(d)
	if i, found := e.boundAt(d); found {
		e.bound = slices.Delete(e.bound, i, i+1)
	}
	fx := e.effects()
	for i := 0; i < ds.track.len(); i++ {
		fx.FixesDeleted = append(fx.FixesDeleted, StoredFix{d, *ds.track.at(i)})
	}
	ds.dirty = 0
	fx.deletedDevices[d] = struct{}{}
}

// bind adds a device state and indexes it. A track loaded for the device before it was bound becomes its
// track.
func (e *Evaluator) bind(st device.State) *devState {
	ds := &devState{st: st, order: e.orders[st.OrderID], key: sortKey(st.Device)}
	ds.conds = e.condsIn(st.OrderID, st.Device, &ds.own)
	if st.LastFix != nil {
		ds.lastFix = *st.LastFix
		ds.st.LastFix = &ds.lastFix
	}
	if t, ok := e.loose[st.Device]; ok {
		ds.track = *t
		delete(e.loose, st.Device)
	}
	e.devices.put(ds)
	if i, found := e.boundAt(st.Device); found {
		e.bound[i] = ds
	} else {
		e.bound = slices.Insert(e.bound, i, ds)
	}
	return ds
}

// setOrder makes c the compiled order of its id; devices that held the one it replaces follow.
func (e *Evaluator) setOrder(c *compiledOrder) {
	if prev := e.orders[c.order.ID]; prev != nil && prev != c {
		prev.next = c
	}
	e.orders[c.order.ID] = c
}

// trackOf returns the fixes kept for a device, nil when there are none.
func (e *Evaluator) trackOf(d string) *track {
	if ds := e.devices.get(d); ds != nil {
		return &ds.track
	}
	return e.loose[d]
}

// ---- Observations ----

// Observe applies a batch of device reports, in fix-time order (a tag that buffered while out of
// coverage sends its fixes late and in bulk; evidence must read in the order things happened).
// It returns how many came from bound devices and how many were dropped (from devices bound to no order).
func (e *Evaluator) Observe(in Observations) (accepted, dropped int) {
	e.advance(in.At)
	fx := e.effects()
	obs := in.Obs
	// Fix-time order, stably: a permutation, so the batch is neither copied nor changed.
	idx := e.order[:0]
	for i := range obs {
		idx = append(idx, int32(i))
	}
	for i := 1; i < len(obs); i++ {
		if obs[i].Time.Before(obs[i-1].Time) {
			idx = e.sortByTime(obs, idx)
			break
		}
	}
	e.order = idx[:0]
	// A group at a time: read ahead what its reports will read, then evaluate them.
	dss := e.batch[:0]
	for g := 0; g < len(idx); g += readAheadGroup {
		grp := idx[g:min(g+readAheadGroup, len(idx))]
		dss = e.readAhead(obs, grp, dss[:0])
		for k, i := range grp {
			if dss[k] == nil {
				dropped++
				continue
			}
			accepted++
			e.observe(dss[k], &obs[i], in.At)
		}
	}
	clear(dss)
	e.batch = dss[:0]
	fx.Accepted += accepted
	fx.Dropped += dropped
	return accepted, dropped
}

// readAheadGroup is how many reports are read ahead at once: the more, the more misses the processor
// waits for together (measured: 250 at a time is 10–15 % faster than 64), up to what the second-level
// cache holds (about fifteen lines a report).
const readAheadGroup = 256

// readAhead looks up the devices of the reports obs[i], i in grp, appends them to dss (nil for a device
// bound to no order) and reads every cache line their evaluation will read far from a zone: the device
// table's slots, the devices' states, their orders' first lines and their latest fixes. At national scale
// each of these is a cache miss, and evaluating report after report would wait for each in turn; read
// here, with no branch in between that depends on them, the processor waits for many at once. Each
// pass reads what the previous one found, so a pass waits once for all of the group.
func (e *Evaluator) readAhead(obs []device.Observation, grp []int32, dss []*devState) []*devState {
	var touch uint64
	keys := e.lookups[:0]
	for _, i := range grp {
		k := sortKey(obs[i].Device)
		h := devHash(k, obs[i].Device)
		keys = append(keys, lookup{k, h})
		touch += e.devices.home(h)
	}
	e.lookups = keys[:0]
	for j, i := range grp {
		ds := e.devices.find(keys[j].k, keys[j].h, obs[i].Device)
		dss = append(dss, ds)
		if ds != nil {
			// A devState spans six lines: one field of each.
			touch += ds.dirty + uint64(ds.track.n) + uint64(len(ds.st.Device)) + uint64(ds.st.LastSeen.Nanosecond()) +
				uint64(len(ds.st.Strap)) + uint64(ds.lastFix.AccuracyM) + uint64(ds.own.active)
		}
	}
	for _, ds := range dss {
		if ds == nil {
			continue
		}
		// The compiled order's lines that a fix far from its zones reads: header, region, discs, always,
		// id and zones.
		c := ds.order
		touch += uint64(len(c.discs)) + uint64(c.leadS) + uint64(c.region.lon0) + uint64(len(c.always)) +
			uint64(len(c.ord.ID)) + uint64(len(c.zones)) + uint64(b2i(c.active))
		if len(c.discs) > 1 {
			touch += uint64(c.discs[1].radius)
		}
		// The two latest fixes: the closing speed is measured against one of them. A fix may span two
		// lines; its position starts it and its time ends it.
		for k := max(ds.track.n-2, 0); k < ds.track.n; k++ {
			f := ds.track.at(k)
			touch += math.Float64bits(f.Lat) + uint64(f.Time.Unix())
		}
	}
	// Kept, so that the compiler cannot drop the reads.
	e.touched += touch
	return dss
}

func (e *Evaluator) observe(ds *devState, o *device.Observation, at time.Time) {
	fx := e.effects()
	fx.markDirty(ds)
	st := &ds.st
	if at.After(st.LastSeen) {
		st.LastSeen = at
	}
	if o.Driver != "" {
		st.Driver, st.Node = o.Driver, o.Node
	}
	c := ds.compiled()
	inForce := c.inForce(at)
	// A condition that is not active and has no open alarm changes nothing: skip it when the device has
	// no open alarm at all.
	if inForce && ds.conds.anyActive() {
		e.condition(ds.conds, condKey{order: c.order.ID, device: st.Device, kind: alarm.NoSignal}, &signal{clear: true, at: at})
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
		e.deviceConditions(c, ds, at)
	}
	f, hasFix := o.Fix()
	if !hasFix {
		return
	}
	e.keepFix(ds, f)
	if !latest {
		fx.Late++
		if inForce && st.Role == device.Offender {
			e.lateBreaches(c, ds, f, at)
		}
		return
	}
	// Overwrite in place: reads copy the state (cloneState), and alarms copy positions.
	if st.LastFix == nil {
		st.LastFix = &ds.lastFix
	}
	*st.LastFix = f
	st.SpeedMps, st.HeadingDeg = o.SpeedMps, o.HeadingDeg
	if !inForce {
		return
	}
	if ds.conds.anyActive() {
		e.condition(ds.conds, condKey{order: c.order.ID, device: st.Device, kind: alarm.NoFix}, &signal{clear: true, at: at})
	}
	if st.Role == device.Offender {
		e.evaluateZones(c, ds, at)
	}
	e.evaluateDynamic(c, at)
}

func (e *Evaluator) keepFix(ds *devState, f device.Fix) {
	t := &ds.track
	if n := t.len(); n == 0 || !t.at(n-1).Time.After(f.Time) {
		t.push(f) // the usual case: fixes arrive in order
	} else {
		t.insert(t.firstAfter(&f), f)
	}
	fx := e.effects()
	fx.FixesAdded = append(fx.FixesAdded, StoredFix{ds.st.Device, f})
}

func (e *Evaluator) deviceConditions(c *compiledOrder, ds *devState, at time.Time) {
	st := &ds.st
	open := st.Strap == device.StrapOpen
	if open || ds.conds.anyActive() {
		e.condition(ds.conds, condKey{order: c.order.ID, device: st.Device, kind: alarm.Tamper}, &signal{
			active: open, clear: !open, at: at, fix: st.LastFix,
			msg: message{render: msgTamper, st: st}})
	}
	if st.BatteryPct != nil {
		pct := *st.BatteryPct
		// Charging ends a low battery as surely as a charged one does.
		charging := st.Charging != nil && *st.Charging
		if low := pct <= e.cfg.BatteryLowPct && !charging; low || ds.conds.anyActive() {
			e.condition(ds.conds, condKey{order: c.order.ID, device: st.Device, kind: alarm.BatteryLow}, &signal{
				active: low, clear: pct >= e.cfg.BatteryRestorePct || charging, at: at, fix: st.LastFix,
				msg: message{render: msgBattery, st: st, n: pct}})
		}
	}
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
func (e *Evaluator) confirmed(t *track, f *device.Fix, wrong func(device.Fix) bool) bool {
	for i := t.len() - 1; i >= 0; i-- {
		if old := t.at(i); old.Time.Before(f.Time) {
			return wrong(*old)
		}
	}
	return false
}

// needConfirm reports whether a breach condition's confirmation (from the previous fix, which costs a
// projection and a distance) can matter: for whether the condition holds, unless the fix is deep or one
// fix is enough; and for the certainty of a breach being raised or returning, unless its alarm is open
// and active, when condition reads neither.
func (e *Evaluator) needConfirm(ds *devState, kind alarm.Kind, subject string, deep bool) bool {
	if !deep && e.cfg.EnterFixes > 1 {
		return true
	}
	a := ds.conds.find(kind, subject)
	return a == nil || !a.Active
}

// lateness is how long after it was taken a fix was reported, when that is long enough to matter.
func (e *Evaluator) lateness(f *device.Fix, at time.Time) time.Duration {
	if d := at.Sub(f.Time); d > e.cfg.LateAfter {
		return d
	}
	return 0
}

func (c *compiledOrder) lead(cfg Config) time.Duration {
	if c.leadS > 0 {
		return time.Duration(c.leadS) * time.Second
	}
	return cfg.ApproachLead
}

// approachRef is the fix the closing speed is measured against: the most recent one at least
// ApproachMinSpan older than cur and within ApproachWindow, so a turn away shows at once. ok is false
// without enough track.
func (e *Evaluator) approachRef(t *track, cur *device.Fix) (ref *device.Fix, span float64, ok bool) {
	from := cur.Time.Add(-e.cfg.ApproachWindow)
	for i := t.len() - 1; i >= 0; i-- {
		old := t.at(i)
		if old.Time.Before(from) {
			return nil, 0, false
		}
		if d := cur.Time.Sub(old.Time); d >= e.cfg.ApproachMinSpan {
			return old, d.Seconds(), true
		}
	}
	return nil, 0, false
}

// approach raises an approach alarm while the offender would reach the target within the order's lead
// time at the closing speed seen on the track; ok is false when there is no usable closing speed.
// what and id name the target for the message: "exclusion zone " and the zone, "protected person " and
// the device.
func (e *Evaluator) approach(c *compiledOrder, ds *devState, subject string, at time.Time, d float64, closing float64, ok bool, what, id string) {
	lead := c.lead(e.cfg).Seconds()
	active, clear := false, true
	var eta float64
	if ok && d > 0 && closing >= e.cfg.ApproachMinSpeed {
		eta = d / closing
		active = eta <= lead
		clear = eta > lead*1.25
	}
	if !active && !ds.conds.anyActive() {
		return
	}
	st := &ds.st
	// Once inside, the approach is over at once: the breach has taken over.
	e.condition(ds.conds, condKey{order: c.order.ID, device: st.Device, subject: subject, kind: alarm.Approach}, &signal{
		active: active, clear: clear, hyst: d > 0, spec: alarmSpec{zone: subject}, at: at, fix: st.LastFix,
		dist: d, hasDist: true, eta: eta, closingMps: closing, hasETA: true,
		msg: message{render: msgApproach, dev: st.Device, x: what, what: id, a: d, b: closing, c: eta, n: b2i(active)}})
}

// evaluateZones checks the offender's latest fix against the order's zones: against those it may be near
// or has an open alarm for (candidates); the others would find every condition inactive and no alarm to
// update.
func (e *Evaluator) evaluateZones(c *compiledOrder, ds *devState, at time.Time) {
	st := &ds.st
	f := st.LastFix
	fll := geo.LatLon{Lat: f.Lat, Lon: f.Lon}
	// The closing speed compares each zone's distance now with its distance at one earlier fix.
	ref, span, hasRef := e.approachRef(&ds.track, f)
	cands, limit := e.candidates(c, ds, fll, e.reach(c, fll, ref, span, hasRef))
	if len(cands) == 0 {
		return
	}
	p := c.proj.Forward(fll)
	late := e.lateness(f, at)
	// Project the reference fix once for all zones, when one needs it.
	var refXY geo.XY
	refDone := false
	margin := e.cfg.HysteresisM
	for _, i := range cands {
		z := &c.zones[i]
		var d float64
		if z.kind == order.Exclusion && !ds.conds.activeAbout(z.id) {
			// A candidate because it is near by its disc; not nearer than limit, it changes nothing
			// (see candidates), and its exact distance is not needed.
			if d = z.shape.SignedDistanceWithin(p, limit); d >= limit {
				continue
			}
		} else {
			d = z.shape.SignedDistance(p)
		}
		applies := z.sched.Applies(at)
		spec := alarmSpec{zone: z.id}
		distAt := func(old device.Fix) float64 {
			return z.shape.SignedDistance(c.proj.Forward(geo.LatLon{Lat: old.Lat, Lon: old.Lon}))
		}
		switch z.kind {
		case order.Exclusion:
			deep := e.deep(d, f.AccuracyM)
			conf := applies && d <= 0 && e.needConfirm(ds, alarm.Breach, z.id, deep) &&
				e.confirmed(&ds.track, f, func(old device.Fix) bool { return distAt(old) <= 0 })
			e.condition(ds.conds, condKey{order: c.order.ID, device: st.Device, subject: z.id, kind: alarm.Breach}, &signal{
				active: applies && d <= 0 && (deep || conf || e.cfg.EnterFixes <= 1), clear: !applies || d > margin, hyst: applies, spec: spec, at: at, fix: f, dist: d, hasDist: true,
				certainty: e.certainty(d, f.AccuracyM), deep: deep, confirmed: conf, late: late,
				msg: message{render: msgBreach, dev: st.Device, what: z.id, a: d}})
			if z.warningM > 0 {
				e.condition(ds.conds, condKey{order: c.order.ID, device: st.Device, subject: z.id, kind: alarm.Warning}, &signal{
					active: applies && d <= z.warningM, clear: !applies || d > z.warningM+margin, hyst: applies,
					spec: spec, at: at, fix: f, dist: d, hasDist: true, certainty: e.certainty(d-z.warningM, f.AccuracyM), late: late,
					msg: message{render: msgZoneWarning, dev: st.Device, what: z.id, a: d}})
			}
			if applies && d > 0 && d <= c.lead(e.cfg).Seconds()*maxSpeed {
				var closing float64
				if hasRef {
					if !refDone {
						refXY, refDone = c.proj.Forward(geo.LatLon{Lat: ref.Lat, Lon: ref.Lon}), true
					}
					closing = (z.shape.SignedDistance(refXY) - d) / span
				}
				e.approach(c, ds, z.id, at, d, closing, hasRef, "exclusion zone ", z.id)
			} else {
				e.approach(c, ds, z.id, at, d, 0, false, "exclusion zone ", z.id)
			}
		case order.Inclusion:
			deep := e.deep(-d, f.AccuracyM)
			conf := applies && d > 0 && e.needConfirm(ds, alarm.InclusionBreach, z.id, deep) &&
				e.confirmed(&ds.track, f, func(old device.Fix) bool { return distAt(old) > 0 })
			e.condition(ds.conds, condKey{order: c.order.ID, device: st.Device, subject: z.id, kind: alarm.InclusionBreach}, &signal{
				active: applies && d > 0 && (deep || conf || e.cfg.EnterFixes <= 1), clear: !applies || d < -margin, hyst: applies, spec: spec, at: at, fix: f, dist: d, hasDist: true,
				certainty: e.certainty(-d, f.AccuracyM), deep: deep, confirmed: conf, late: late,
				msg: message{render: msgInclusion, dev: st.Device, what: z.id, a: d}})
		}
	}
}

// maxSpeed bounds how far away (lead time × this, m/s) an approach is looked for.
const maxSpeed = 40.0

// lateBreaches evaluates a fix older than the device's latest one: it cannot change where the offender
// is now, but a breach it shows is raised as a late alarm, already restored, for the evidence.
func (e *Evaluator) lateBreaches(c *compiledOrder, ds *devState, f device.Fix, at time.Time) {
	st := &ds.st
	fll := geo.LatLon{Lat: f.Lat, Lon: f.Lon}
	cands, limit := e.candidates(c, ds, fll, 0) // only a fix inside (m = 0) raises one
	if len(cands) == 0 {
		return
	}
	p := c.proj.Forward(fll)
	for _, i := range cands {
		z := &c.zones[i]
		if z.kind != order.Exclusion || !z.sched.Applies(f.Time) {
			continue
		}
		d := z.shape.SignedDistanceWithin(p, limit)
		if d > 0 {
			continue
		}
		fix := f
		a := e.newAlarm(condKey{order: c.order.ID, device: st.Device, subject: z.id, kind: alarm.Breach}, &alarmSpec{zone: z.id}, at,
			fmt.Sprintf("late report: offender %s was %s inside exclusion zone %s at %s", st.Device, metres(-d), z.id, f.Time.UTC().Format(time.RFC3339)))
		a.Active = false
		a.Certainty = e.certainty(d, f.AccuracyM)
		a.Late, a.LateByS = true, at.Sub(f.Time).Seconds()
		e.setPosition(a, &fix, &d)
		e.transition(a, alarm.Raised, alarm.EventRaised, at, "evaluator", "late fix")
	}
}

// evaluateDynamic checks the distance between the offender and every protected person of the order.
// Where the offender has no open alarm about a person and cheap bounds of the geodesic show that no
// condition can hold (far beyond the warning distance, and no closing speed the track allows reaches
// the radius within the lead time), the exact geodesic is not needed: every condition would be inactive
// with no alarm to update.
func (e *Evaluator) evaluateDynamic(c *compiledOrder, at time.Time) {
	dz := c.dz
	if dz == nil {
		return
	}
	off := e.devices.get(c.order.Offender.Device)
	if off == nil || off.st.LastFix == nil {
		return
	}
	margin := e.cfg.HysteresisM
	offFix := off.st.LastFix
	offLL := geo.LatLon{Lat: offFix.Lat, Lon: offFix.Lon}
	late := e.lateness(offFix, at)
	lead := c.lead(e.cfg).Seconds()
	for _, p := range c.order.Protected {
		pst := e.devices.get(p.Device)
		if pst == nil || pst.st.LastFix == nil {
			continue
		}
		subject := c.dynSubject(p.Device)
		spec := alarmSpec{zone: subject}
		// A protected unit's old fix is not trusted: it raises no_fix on ticks instead.
		fresh := absDur(offFix.Time.Sub(pst.st.LastFix.Time)) <= e.cfg.ProtectedFixMaxAge
		pLL := geo.LatLon{Lat: pst.st.LastFix.Lat, Lon: pst.st.LastFix.Lon}
		if !e.slow && !off.conds.activeAbout(subject) && (!fresh || e.dynamicQuiet(off, offLL, pLL, dz, lead)) {
			continue
		}
		d := geo.Distance(offLL, pLL)
		acc := offFix.AccuracyM + pst.st.LastFix.AccuracyM
		// Next to a person nobody waits for a second report: the dynamic breach is raised on the first fix,
		// probable until confirmed.
		deep := e.deep(d-dz.RadiusM, acc)
		conf := fresh && d <= dz.RadiusM && e.needConfirm(off, alarm.DynamicBreach, subject, deep) && e.confirmed(&off.track, offFix, func(old device.Fix) bool {
			return geo.Distance(geo.LatLon{Lat: old.Lat, Lon: old.Lon}, pLL) <= dz.RadiusM
		})
		e.condition(off.conds, condKey{order: c.order.ID, device: off.st.Device, subject: subject, kind: alarm.DynamicBreach}, &signal{
			active: fresh && d <= dz.RadiusM, clear: !fresh || d > dz.RadiusM+margin, hyst: true, spec: spec, at: at,
			fix: offFix, dist: d, hasDist: true, certainty: e.certainty(d-dz.RadiusM, acc), deep: deep, confirmed: conf, late: late,
			msg: message{render: msgDynamicBreach, dev: off.st.Device, what: p.Device, a: d, b: dz.RadiusM}})
		if dz.WarningM > 0 {
			e.condition(off.conds, condKey{order: c.order.ID, device: off.st.Device, subject: subject, kind: alarm.Warning}, &signal{
				active: fresh && d <= dz.WarningM, clear: !fresh || d > dz.WarningM+margin, hyst: true, spec: spec, at: at,
				fix: offFix, dist: d, hasDist: true, certainty: e.certainty(d-dz.WarningM, acc), late: late,
				msg: message{render: msgDynamicWarning, dev: off.st.Device, what: p.Device, a: d, b: dz.WarningM}})
		}
		if fresh && d > dz.RadiusM && d-dz.RadiusM <= lead*maxSpeed {
			var closing float64
			ref, span, ok := e.approachRef(&off.track, offFix)
			if ok {
				closing = (geo.Distance(geo.LatLon{Lat: ref.Lat, Lon: ref.Lon}, pLL) - d) / span
			}
			e.approach(c, off, subject, at, d-dz.RadiusM, closing, ok, "protected person ", p.Device)
		} else {
			e.approach(c, off, subject, at, d-dz.RadiusM, 0, false, "protected person ", p.Device)
		}
	}
}

// dynamicQuiet reports whether, with the protected person fresh, the bounds prove every dynamic-zone
// condition inactive: the geodesic d between the two is at least lo; a breach or warning needs d within
// the radius or the warning distance, an approach needs d - radius ≤ lead × closing speed, and the
// closing speed (how much nearer to the person the offender came since the reference fix, over the
// span) is at most the geodesic between the reference fix and the current one (triangle inequality)
// over the span.
func (e *Evaluator) dynamicQuiet(off *devState, offLL, pLL geo.LatLon, dz *order.DynamicZone, lead float64) bool {
	lo, _ := geo.DistanceBounds(offLL, pLL)
	lo = lo*(1-1e-9) - boundSlack
	if !(lo > dz.RadiusM && lo > dz.WarningM) {
		return false
	}
	gap := lo - dz.RadiusM // at most d - radius
	if gap > lead*maxSpeed {
		return true // beyond where an approach is looked for
	}
	ref, span, ok := e.approachRef(&off.track, off.st.LastFix)
	if !ok {
		return true // no closing speed
	}
	if !(e.cfg.ApproachMinSpeed > 0) {
		return false
	}
	_, moved := geo.DistanceBounds(geo.LatLon{Lat: ref.Lat, Lon: ref.Lon}, offLL)
	v := moved * (1 + 1e-9) / span
	return v < e.cfg.ApproachMinSpeed || gap > lead*v
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
		if c.scheduled && c.inForce(now) {
			if off := e.devices.get(c.order.Offender.Device); off != nil && off.st.LastFix != nil {
				e.evaluateZones(c, off, now)
			}
		}
	}
	e.escalate(now)
	cutoff := now.Add(-e.cfg.FixWindow)
	fx := e.effects()
	for _, ds := range e.bound {
		d := ds.st.Device
		c := ds.compiled()
		if c.inForce(now) {
			e.silence(c, ds, now)
		}
		t := &ds.track
		n := 0
		for n < t.len() && t.at(n).Time.Before(cutoff) {
			fx.FixesDeleted = append(fx.FixesDeleted, StoredFix{d, *t.at(n)})
			n++
		}
		if n > 0 {
			t.dropFront(n)
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
		e.uncountEscalation(a.Escalation)
		e.countEscalation(level)
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
func (e *Evaluator) silence(c *compiledOrder, ds *devState, now time.Time) {
	st := &ds.st
	since := st.LastSeen
	if since.IsZero() || since.Before(c.order.ValidFrom) {
		since = laterOf(st.BoundAt, c.order.ValidFrom)
	}
	if now.Sub(since) >= e.cfg.NoSignalAfter {
		e.condition(ds.conds, condKey{order: c.order.ID, device: st.Device, kind: alarm.NoSignal}, &signal{active: true, at: now, fix: st.LastFix,
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
		e.condition(ds.conds, condKey{order: c.order.ID, device: st.Device, kind: alarm.NoFix}, &signal{active: true, at: now, fix: st.LastFix,
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
	e.condition(e.conds("", ""), condKey{subject: subject, kind: alarm.MonitoringFault}, &signal{
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
	if owner, _ := ownerOf(a); e.open[owner] == nil || !e.open[owner].remove(a.ID) {
		for _, set := range e.open {
			set.remove(a.ID) // the id is unique; the order of this scan cannot matter
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
func (e *Evaluator) condition(set *condSet, k condKey, s *signal) {
	a := set.find(k.kind, k.subject)
	if a == nil {
		if !s.active {
			return
		}
		a = e.newAlarm(k, &s.spec, s.at, s.msg.String())
		if s.certainty == alarm.Certain && !s.deep && !s.confirmed {
			// One fix can be a multipath outlier that reports a good accuracy: the next fix confirms.
			s.certainty = alarm.Probable
		}
		e.apply(a, s)
		set.put(k.kind, k.subject, a)
		e.transition(a, alarm.Raised, alarm.EventRaised, s.at, "evaluator", "")
		return
	}
	switch {
	case s.active && !a.Active:
		set.setActive(k.subject, a, true)
		a.ExitStreak, a.Message = 0, s.msg.String()
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
			a.ExitStreak = 0
			e.setMessage(a, &s.msg)
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
			set.setActive(k.subject, a, false)
			a.ExitStreak = 0
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
func (e *Evaluator) apply(a *alarm.Alarm, s *signal) {
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
		if t := e.trackOf(a.Device); t != nil {
			for i := 0; i < t.len(); i++ {
				if f := t.at(i); !f.Time.Before(from) && f.Time.Before(s.fix.Time) {
					before = append(before, *f)
				}
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
	// In place: reads and transitions copy the alarm's position and distance.
	p := *f
	if a.Position == nil {
		a.Position = new(device.Fix)
	}
	*a.Position = p
	if dist != nil {
		if a.DistanceM == nil {
			a.DistanceM = new(float64)
		}
		*a.DistanceM = math.Round(*dist*10) / 10
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
		e.wait(a)
	case wasActivePolice && !isActivePolice:
		e.activePolice--
		e.unwait(a)
	}
	fx := e.effects()
	fx.dirtyAlarms[a.ID] = struct{}{}
	fx.Changes = append(fx.Changes, alarm.Change{Alarm: summary(a), Transition: t, ActivePolice: e.activePolice, PoliceEscalation: e.policeEscalation(), SirenAlarms: e.siren})
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
	ds := e.devices.get(id)
	if ds == nil {
		return device.State{}, false
	}
	return cloneState(&ds.st), true
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
	out := make([]device.State, 0, len(e.bound))
	for _, ds := range e.bound {
		out = append(out, cloneState(&ds.st))
	}
	return out
}

// Track returns the fixes kept for a device, in fix-time order.
func (e *Evaluator) Track(id string) []device.Fix {
	if t := e.trackOf(id); t != nil {
		return t.slice()
	}
	return nil
}

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
	e.setOrder(c)
	e.orderIDs = insertSorted(e.orderIDs, o.ID)
	return nil
}

// LoadDevice adds a device state read from the store.
func (e *Evaluator) LoadDevice(st device.State) error {
	if _, ok := e.orders[st.OrderID]; !ok {
		return fmt.Errorf("%w: device %s is bound to unknown order %q", ErrCorrupt, st.Device, st.OrderID)
	}
	if ds := e.devices.get(st.Device); ds != nil {
		// Loaded again: replace the state, keep the track.
		ds.st, ds.order, ds.conds = st, e.orders[st.OrderID], e.conds(st.OrderID, st.Device)
		if st.LastFix != nil {
			ds.lastFix = *st.LastFix
			ds.st.LastFix = &ds.lastFix
		}
		return nil
	}
	e.bind(st)
	return nil
}

// LoadFix adds a kept fix read from the store.
func (e *Evaluator) LoadFix(d string, f device.Fix) {
	t := e.trackOf(d)
	if t == nil {
		t = &track{}
		e.loose[d] = t
	}
	t.insert(t.firstAfter(&f), f)
}

// Area returns the zone an alarm is about, for hooks: the zone's geometry, or for a dynamic zone a circle
// around the protected person's latest fix. ok is false for alarms without a zone.
func (e *Evaluator) Area(a *alarm.Alarm) (*alarm.Area, bool) {
	c, ok := e.orders[a.OrderID]
	if !ok || a.ZoneID == "" {
		return nil, false
	}
	if dev, dynamic := strings.CutPrefix(a.ZoneID, "dynamic:"); dynamic {
		ds := e.devices.get(dev)
		if ds == nil || ds.st.LastFix == nil || c.order.DynamicZone == nil {
			return nil, false
		}
		coords, _ := json.Marshal([]float64{ds.st.LastFix.Lon, ds.st.LastFix.Lat})
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
		owner, subject := ownerOf(&c)
		e.conds(owner.order, owner.device).put(c.Kind, subject, &c)
	}
	if c.Class == alarm.Police && c.State == alarm.Raised {
		e.activePolice++
		e.wait(&c)
	}
	if sounds(c.Class, c.Kind) && c.State == alarm.Raised {
		e.siren++
	}
}

// wait adds a raised police alarm to those waiting for acknowledgement.
func (e *Evaluator) wait(a *alarm.Alarm) {
	n := len(e.waiting)
	e.waiting = insertSorted(e.waiting, a.ID)
	if len(e.waiting) > n {
		e.countEscalation(a.Escalation)
	}
}

func (e *Evaluator) unwait(a *alarm.Alarm) {
	n := len(e.waiting)
	e.waiting = removeSorted(e.waiting, a.ID)
	if len(e.waiting) < n {
		e.uncountEscalation(a.Escalation)
	}
}

// escalated counts the waiting alarms per escalation level (a handful of levels), so that the highest
// is known without reading every waiting alarm on every transition.
func (e *Evaluator) countEscalation(level int) {
	if e.escalated == nil {
		e.escalated = map[int]int{}
	}
	e.escalated[level]++
}

func (e *Evaluator) uncountEscalation(level int) {
	if e.escalated[level]--; e.escalated[level] <= 0 {
		delete(e.escalated, level)
	}
}

// policeEscalation is the highest escalation of the police alarms waiting for acknowledgement (0 when
// none waits).
func (e *Evaluator) policeEscalation() int {
	esc := 0
	for l := range e.escalated { // a maximum: the order of the scan cannot matter
		esc = max(esc, l)
	}
	return esc
}

// boundAt returns where the device id is or would be in e.bound.
func (e *Evaluator) boundAt(id string) (int, bool) {
	return slices.BinarySearchFunc(e.bound, id, func(ds *devState, id string) int { return strings.Compare(ds.st.Device, id) })
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

// sounds says which raised alarms sound the operations room's siren: every police alarm, and every
// monitoring fault, because Skjold going blind needs someone as surely as a breach does.
func sounds(c alarm.Class, k alarm.Kind) bool { return c == alarm.Police || k == alarm.MonitoringFault }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
