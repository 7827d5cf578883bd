// Package state is the replicated state machine: it applies log entries through the evaluator and keeps
// the result in Pebble, one batch per applied batch with the applied index in it, so a restart resumes
// exactly where the disk says (the Raft log, not this store, is what is synced before an entry counts). It knows nothing of Raft; the cluster hands it committed entries.
package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/order"
)

// Schema names the layout of keys and values. A data directory written with another schema is refused.
const Schema = "skjold-state-1"

// Key prefixes. Every record of one kind shares a prefix so it can be loaded, pruned and dumped by range.
const (
	pAlarm   = "a/"
	pCursor  = "c/"
	pDevice  = "d/"
	pFix     = "f/"
	pMeta    = "m/"
	pOrder   = "o/"
	pOutbox  = "x/"
	pRepeats = "r/"
	kApplied = "m/applied"
	kSchema  = "m/schema"
	kEval    = "m/evaluator"
	kOutSeq  = "m/outbox_seq"
)

// OutboxRetention is how long delivered or not, an outbox item is kept (log time).
const OutboxRetention = 24 * time.Hour

// Entry is one committed log entry.
type Entry struct {
	Index uint64
	Data  []byte
}

// OutboxItem is an alarm transition waiting for, or past, delivery to the hooks; or, with Command set,
// a command for a device, delivered through its driver.
type OutboxItem struct {
	Seq     uint64          `json:"seq"`
	At      time.Time       `json:"at"`
	Change  alarm.Change    `json:"change,omitzero"`
	Command *device.Command `json:"command,omitempty"`
}

// Machine is the state machine. Apply is serialised by the caller; reads may run concurrently.
type Machine struct {
	mu        sync.RWMutex
	db        *pebble.DB
	ev        *breach.Evaluator
	applied   uint64
	outboxSeq uint64
	cursors   map[string]uint64

	// per apply
	dirtyCursors map[string]struct{}
	items        []OutboxItem // transitions of this batch, numbered as their entries apply
	pruneBefore  time.Time    // a tick asked to prune outbox items older than this ...
	pruneMaxSeq  uint64       // ... among those numbered when it applied

	lmu       sync.Mutex
	listeners []func([]OutboxItem)

	// Fatal is called when the machine cannot go on safely (an unknown entry type, a failed write). It
	// must not return; the default panics.
	Fatal func(error)

	stats Stats
}

// Stats counts what the machine has applied since it was opened.
type Stats struct {
	Accepted, Dropped, Late, Changes, Commands uint64
}

// Open opens or creates the state in dir. A directory with other contents, another schema, or damaged
// records is refused with an error that says what is wrong.
func Open(dir string, cfg breach.Config) (*Machine, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", dir, err)
	}
	m := &Machine{db: db, ev: breach.New(cfg), cursors: map[string]uint64{}, Fatal: func(err error) { panic(err) }}
	if err := m.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("state: %s: %w", dir, err)
	}
	return m, nil
}

// checkDir refuses a non-empty directory that holds no Pebble store, rather than starting empty over it.
func checkDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o750)
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if len(ents) == 0 {
		return nil
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "MANIFEST-") || e.Name() == "CURRENT" {
			return nil
		}
	}
	return fmt.Errorf("state: %s is not empty but holds no state store (no MANIFEST): refusing to start over it", dir)
}

func (m *Machine) load() error {
	schema, err := m.get(kSchema)
	if err != nil {
		return err
	}
	if schema == nil {
		empty, err := m.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("records without a schema marker: not a Skjold state store, or damaged")
		}
		return m.db.Set([]byte(kSchema), []byte(Schema), pebble.Sync)
	}
	if string(schema) != Schema {
		return fmt.Errorf("written with state schema %q; this version reads %q", schema, Schema)
	}
	if v, err := m.get(kApplied); err != nil {
		return err
	} else if v != nil {
		if len(v) != 8 {
			return fmt.Errorf("applied index record is %d bytes, want 8", len(v))
		}
		m.applied = binary.BigEndian.Uint64(v)
	}
	if v, err := m.get(kOutSeq); err != nil {
		return err
	} else if v != nil {
		m.outboxSeq = binary.BigEndian.Uint64(v)
	}
	if v, err := m.get(kEval); err != nil {
		return err
	} else if v != nil {
		var meta breach.Meta
		if err := json.Unmarshal(v, &meta); err != nil {
			return fmt.Errorf("evaluator record: %w", err)
		}
		m.ev.LoadMeta(meta)
	}
	// Orders before devices (a device names its order), then fixes and alarms.
	if err := scanJSON(m.db, pOrder, func(_ []byte, o order.Order) error { return m.ev.LoadOrder(o) }); err != nil {
		return err
	}
	if err := scanJSON(m.db, pDevice, func(_ []byte, st device.State) error { return m.ev.LoadDevice(st) }); err != nil {
		return err
	}
	if err := scanJSON(m.db, pFix, func(k []byte, f device.Fix) error {
		d, _, ok := bytes.Cut(k[len(pFix):], []byte{0})
		if !ok {
			return fmt.Errorf("malformed key")
		}
		m.ev.LoadFix(string(d), f)
		return nil
	}); err != nil {
		return err
	}
	if err := scanJSON(m.db, pAlarm, func(_ []byte, a alarm.Alarm) error { m.ev.LoadAlarm(a); return nil }); err != nil {
		return err
	}
	if err := scanJSON(m.db, pRepeats, func(k []byte, ts []time.Time) error {
		m.ev.LoadRepeats(string(k[len(pRepeats):]), ts)
		return nil
	}); err != nil {
		return err
	}
	return scan(m.db, pCursor, func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("cursor is %d bytes, want 8", len(v))
		}
		m.cursors[string(k[len(pCursor):])] = binary.BigEndian.Uint64(v)
		return nil
	})
}

func (m *Machine) get(key string) ([]byte, error) {
	v, closer, err := m.db.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

func (m *Machine) isEmpty() (bool, error) {
	it, err := m.db.NewIter(nil)
	if err != nil {
		return false, err
	}
	defer it.Close()
	return !it.First(), it.Error()
}

type reader interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

func scan(r reader, prefix string, fn func(k, v []byte) error) error {
	opts := &pebble.IterOptions{}
	if prefix != "" {
		opts.LowerBound, opts.UpperBound = []byte(prefix), prefixEnd(prefix)
	}
	it, err := r.NewIter(opts)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("read %q: %w", it.Key(), err)
		}
		if err := fn(it.Key(), v); err != nil {
			return fmt.Errorf("record %q: %w", it.Key(), err)
		}
	}
	return it.Error()
}

// scanJSON is scan with each value decoded as a T.
func scanJSON[T any](r reader, prefix string, fn func(k []byte, v T) error) error {
	return scan(r, prefix, func(k, v []byte) error {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		return fn(k, x)
	})
}

func prefixEnd(p string) []byte {
	b := []byte(p)
	b[len(b)-1]++
	return b
}

// Close closes the store.
func (m *Machine) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.db == nil {
		return nil
	}
	err := m.db.Close()
	m.db = nil
	return err
}

// OnChanges registers a listener for alarm transitions; it is called after they are durable, in order,
// outside the machine's lock.
func (m *Machine) OnChanges(fn func([]OutboxItem)) {
	m.lmu.Lock()
	m.listeners = append(m.listeners, fn)
	m.lmu.Unlock()
}

// AppliedIndex is the index of the last applied entry.
func (m *Machine) AppliedIndex() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.applied
}

// Apply applies committed entries in order, skipping those already applied, and returns one result per
// entry: the entry's response, or a *breach.Rejection.
func (m *Machine) Apply(entries []Entry) []any {
	m.mu.Lock()
	results, items, err := m.apply(entries)
	m.mu.Unlock()
	if err != nil {
		m.Fatal(err)
		return results
	}
	if len(items) > 0 {
		m.lmu.Lock()
		ls := m.listeners
		m.lmu.Unlock()
		for _, l := range ls {
			l(items)
		}
	}
	return results
}

func (m *Machine) apply(entries []Entry) ([]any, []OutboxItem, error) {
	results := make([]any, len(entries))
	m.ev.Begin()
	m.dirtyCursors = map[string]struct{}{}
	m.items, m.pruneMaxSeq = nil, 0
	last := m.applied
	taken, takenCmds := 0, 0 // changes and commands of the batch already numbered
	for i, en := range entries {
		if en.Index <= m.applied {
			continue
		}
		if len(en.Data) < 2 {
			return results, nil, fmt.Errorf("log entry %d is %d bytes: too short to carry a type and version", en.Index, len(en.Data))
		}
		t, v := Type(en.Data[0]), en.Data[1]
		h, ok := handlers[t]
		switch {
		case !ok && t&Ignorable != 0:
			last = en.Index
			continue
		case !ok:
			return results, nil, fmt.Errorf("%w: entry %d has type %d, which this version does not know and which is not ignorable; upgrade this node", ErrUnknownEntry, en.Index, t)
		case v > version:
			return results, nil, fmt.Errorf("%w: entry %d has payload version %d, this version reads up to %d; upgrade this node", ErrUnknownEntry, en.Index, v, version)
		}
		res, err := h(m, en.Data[2:])
		if err != nil {
			return results, nil, fmt.Errorf("log entry %d: %w", en.Index, err)
		}
		results[i] = res
		last = en.Index
		// Number this entry's transitions and commands now, so that what a tick prunes does not depend on
		// batching. Items carry their own time, not the batch's, for the same reason.
		changes, cmds := m.ev.Pending()
		for _, ch := range changes[taken:] {
			m.outboxSeq++
			m.items = append(m.items, OutboxItem{Seq: m.outboxSeq, At: ch.Transition.At, Change: ch})
		}
		for i := range cmds[takenCmds:] {
			c := cmds[takenCmds+i]
			m.outboxSeq++
			m.items = append(m.items, OutboxItem{Seq: m.outboxSeq, At: c.At, Command: &c})
		}
		taken, takenCmds = len(changes), len(cmds)
	}
	fx := m.ev.Finish()
	if last == m.applied {
		return results, nil, nil
	}
	b := m.db.NewIndexedBatch()
	defer b.Close()
	items, err := m.write(b, fx, last)
	if err != nil {
		return results, nil, err
	}
	// Not synced: the Raft log is the durable record, synced on a majority before an entry is applied.
	// A power cut can take the last batches with it, but Pebble keeps a prefix of them with its applied
	// index, and the cluster replays the committed entries after that index, or restores the latest
	// snapshot if the state fell behind it (cluster/DESIGN.md). Syncing here would put a third fsync on
	// the path from a fix to its alarm.
	if err := b.Commit(pebble.NoSync); err != nil {
		return results, nil, fmt.Errorf("state: write batch up to entry %d: %w", last, err)
	}
	m.applied = last
	m.stats.Accepted += uint64(fx.Accepted)
	m.stats.Dropped += uint64(fx.Dropped)
	m.stats.Late += uint64(fx.Late)
	m.stats.Changes += uint64(len(fx.Changes))
	m.stats.Commands += uint64(len(fx.Commands))
	return results, items, nil
}

func (m *Machine) write(b *pebble.Batch, fx *breach.Effects, last uint64) ([]OutboxItem, error) {
	put := func(key string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", key, err)
		}
		return b.Set([]byte(key), data, nil)
	}
	for _, id := range fx.Orders {
		o, _ := m.ev.Order(id)
		if err := put(pOrder+id, o); err != nil {
			return nil, err
		}
	}
	for _, id := range fx.Devices {
		st, _ := m.ev.Device(id)
		if err := put(pDevice+id, st); err != nil {
			return nil, err
		}
	}
	for _, id := range fx.DevicesDeleted {
		if err := b.Delete([]byte(pDevice+id), nil); err != nil {
			return nil, err
		}
	}
	for _, f := range fx.FixesAdded {
		if err := put(fixKey(f.Device, f.Fix.Time), f.Fix); err != nil {
			return nil, err
		}
	}
	for _, f := range fx.FixesDeleted {
		if err := b.Delete([]byte(fixKey(f.Device, f.Fix.Time)), nil); err != nil {
			return nil, err
		}
	}
	for _, id := range fx.Alarms {
		a, _ := m.ev.Alarm(id)
		if err := put(pAlarm+id, a); err != nil {
			return nil, err
		}
	}
	for _, id := range fx.Repeats {
		if err := put(pRepeats+id, m.ev.Repeats(id)); err != nil {
			return nil, err
		}
	}
	items := m.items
	for _, it := range items {
		if err := put(outboxKey(it.Seq), it); err != nil {
			return nil, err
		}
	}
	if m.pruneMaxSeq > 0 {
		if err := m.pruneOld(b, m.pruneBefore, m.pruneMaxSeq); err != nil {
			return nil, err
		}
	}
	hooks := make([]string, 0, len(m.dirtyCursors))
	for h := range m.dirtyCursors {
		hooks = append(hooks, h)
	}
	sort.Strings(hooks)
	for _, h := range hooks {
		if err := b.Set([]byte(pCursor+h), u64(m.cursors[h]), nil); err != nil {
			return nil, err
		}
	}
	if err := put(kEval, m.ev.Meta()); err != nil {
		return nil, err
	}
	if err := b.Set([]byte(kOutSeq), u64(m.outboxSeq), nil); err != nil {
		return nil, err
	}
	return items, b.Set([]byte(kApplied), u64(last), nil)
}

// pruneOld deletes the run of oldest outbox items that are older than cutoff and numbered up to maxSeq.
// It reads through the batch, so items written in it count too.
func (m *Machine) pruneOld(b *pebble.Batch, cutoff time.Time, maxSeq uint64) error {
	var end []byte
	err := scanUntil(b, pOutbox, func(k, v []byte) (bool, error) {
		var it OutboxItem
		if err := json.Unmarshal(v, &it); err != nil {
			return false, err
		}
		if it.Seq > maxSeq || !it.At.Before(cutoff) {
			return false, nil
		}
		end = append(bytes.Clone(k), 0)
		return true, nil
	})
	if err != nil || end == nil {
		return err
	}
	return b.DeleteRange([]byte(pOutbox), end, nil)
}

func scanUntil(r reader, prefix string, fn func(k, v []byte) (bool, error)) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		more, err := fn(it.Key(), v)
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

func fixKey(d string, t time.Time) string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(t.UnixNano()))
	return pFix + d + "\x00" + string(ts[:])
}

func outboxKey(seq uint64) string { return pOutbox + string(u64(seq)) }

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// ---- Reads ----

// View runs fn with the evaluator under the read lock. fn must not keep references past its return.
func (m *Machine) View(fn func(ev *breach.Evaluator)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	fn(m.ev)
}

// Stats returns the counters.
func (m *Machine) Stats() Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.stats
}

// Cursor is the last outbox sequence a hook has confirmed.
func (m *Machine) Cursor(hook string) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cursors[hook]
}

// OutboxSeq is the sequence of the newest outbox item.
func (m *Machine) OutboxSeq() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.outboxSeq
}

// OutboxAfter returns up to n outbox items with a sequence above seq, in order.
func (m *Machine) OutboxAfter(seq uint64, n int) ([]OutboxItem, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []OutboxItem
	it, err := m.db.NewIter(&pebble.IterOptions{LowerBound: []byte(outboxKey(seq + 1)), UpperBound: prefixEnd(pOutbox)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for it.First(); it.Valid() && len(out) < n; it.Next() {
		var item OutboxItem
		if err := json.Unmarshal(it.Value(), &item); err != nil {
			return nil, fmt.Errorf("outbox item %x: %w", it.Key(), err)
		}
		out = append(out, item)
	}
	return out, it.Error()
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
