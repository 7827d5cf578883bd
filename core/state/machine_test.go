package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/order"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) *Machine {
	t.Helper()
	m, err := Open(dir, breach.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m.Fatal = func(err error) { t.Fatalf("fatal: %v", err) }
	return m
}

func demoOrder() order.Order {
	c, _ := json.Marshal([][][]float64{{{10.750, 59.910}, {10.752, 59.910}, {10.752, 59.911}, {10.750, 59.911}, {10.750, 59.910}}})
	return order.Order{
		ID: "ord-1", Reference: "REF", Basis: order.Court, ValidFrom: t0.Add(-time.Hour),
		Offender: order.Party{Device: "tag-1"}, Protected: []order.Party{{Device: "unit-1"}},
		DynamicZone: &order.DynamicZone{RadiusM: 100, WarningM: 300},
		Zones:       []order.Zone{{ID: "home", Kind: order.Exclusion, WarningM: 200, Geometry: order.Geometry{Type: "Polygon", Coordinates: c}}},
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// scenario is a log that exercises every entry type: an order, a walk into its zone, ticks that make a
// tag silent, an ack, a plugin fault, a receipt.
func scenario(t *testing.T) []Entry {
	var log [][]byte
	add := func(b []byte, err error) { log = append(log, must(b, err)) }
	add(PutOrder(breach.PutOrder{At: t0, By: "officer", Order: demoOrder()}))
	for i := 0; i < 30; i++ {
		at := t0.Add(time.Duration(i) * 2 * time.Second)
		lat, lon, acc := 59.905+float64(i)*0.0002, 10.751, 6.0
		bat := 90 - i
		add(Observations(breach.Observations{At: at, By: "driver:sim", Obs: []device.Observation{
			{Device: "tag-1", Time: at, Lat: &lat, Lon: &lon, AccuracyM: &acc, BatteryPct: &bat, Strap: device.StrapClosed},
			{Device: "stranger", Time: at},
		}}))
		add(Tick(breach.Tick{At: at.Add(time.Second)}))
	}
	add(AckAlarm(breach.AckAlarm{At: t0.Add(time.Minute), By: "operator-1", ID: "alm-00000001"}))
	add(PluginState(breach.PluginState{At: t0.Add(time.Minute), Node: "n1", Name: "sim", Kind: "driver", Reason: "exited"}))
	add(ReceiptEntry(Receipt{Hook: "siren", Seq: 2}))
	add(Tick(breach.Tick{At: t0.Add(20 * time.Minute)}))
	out := make([]Entry, len(log))
	for i, b := range log {
		out[i] = Entry{Index: uint64(i + 1), Data: b}
	}
	return out
}

func TestReplayIsByteIdentical(t *testing.T) {
	log := scenario(t)
	a, b := open(t, t.TempDir()), open(t, t.TempDir())
	defer a.Close()
	defer b.Close()
	// One machine applies entry by entry, the other in uneven batches: the state must not depend on batching.
	for _, e := range log {
		a.Apply([]Entry{e})
	}
	for i := 0; i < len(log); i += 7 {
		b.Apply(log[i:min(i+7, len(log))])
	}
	da, _ := a.Dump()
	db, _ := b.Dump()
	if len(da) == 0 || len(da) != len(db) {
		t.Fatalf("dumps have %d and %d records", len(da), len(db))
	}
	for k, v := range da {
		if db[k] != v {
			t.Fatalf("record %q differs:\n%s\n%s", k, v, db[k])
		}
	}
	ha, _ := a.Hash()
	hb, _ := b.Hash()
	if ha != hb {
		t.Fatal("hashes differ")
	}
	var open []alarm.Alarm
	a.View(func(ev *breach.Evaluator) { open = ev.Alarms(true, "") })
	kinds := map[alarm.Kind]bool{}
	for _, al := range open {
		kinds[al.Kind] = true
	}
	for _, k := range []alarm.Kind{alarm.Warning, alarm.Breach, alarm.MonitoringFault, alarm.NoSignal} {
		if !kinds[k] {
			t.Errorf("scenario raised no %s alarm; open: %v", k, kinds)
		}
	}
	if st := a.Stats(); st.Dropped != 30 || st.Accepted != 30 {
		t.Fatalf("stats = %+v", st)
	}
	if _, stored := da[pDevice+"stranger"]; stored {
		t.Fatal("an unbound device was stored")
	}
}

func TestRestartKeepsStateAndSkipsApplied(t *testing.T) {
	dir := t.TempDir()
	log := scenario(t)
	m := open(t, dir)
	m.Apply(log[:40])
	before, _ := m.Hash()
	var alarmsBefore []alarm.Alarm
	m.View(func(ev *breach.Evaluator) { alarmsBefore = ev.Alarms(false, "") })
	m.Close()

	m = open(t, dir)
	defer m.Close()
	if got := m.AppliedIndex(); got != 40 {
		t.Fatalf("applied index after reopen = %d", got)
	}
	after, _ := m.Hash()
	if before != after {
		t.Fatal("state changed across reopen")
	}
	var alarmsAfter []alarm.Alarm
	m.View(func(ev *breach.Evaluator) { alarmsAfter = ev.Alarms(false, "") })
	if len(alarmsAfter) != len(alarmsBefore) || len(alarmsAfter) == 0 {
		t.Fatalf("alarms %d → %d", len(alarmsBefore), len(alarmsAfter))
	}
	// Raft replays from its last snapshot: entries already applied must change nothing.
	m.Apply(log[:40])
	if h, _ := m.Hash(); h != after {
		t.Fatal("replayed entries were applied twice")
	}
	// The rest applies; the result equals a machine that never restarted.
	m.Apply(log[30:])
	ref := open(t, t.TempDir())
	defer ref.Close()
	ref.Apply(log)
	h1, _ := m.Hash()
	h2, _ := ref.Hash()
	if h1 != h2 {
		t.Fatal("restarted machine diverged from one that never stopped")
	}
}

func TestSnapshotRestore(t *testing.T) {
	log := scenario(t)
	src := open(t, t.TempDir())
	defer src.Close()
	src.Apply(log)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	// Restoring over a machine with other state replaces it entirely.
	dst := open(t, t.TempDir())
	defer dst.Close()
	dst.Apply(log[:5])
	if err := dst.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	h1, _ := src.Hash()
	h2, _ := dst.Hash()
	if h1 != h2 || dst.AppliedIndex() != src.AppliedIndex() {
		t.Fatalf("restored state differs (applied %d vs %d)", dst.AppliedIndex(), src.AppliedIndex())
	}
	var n int
	dst.View(func(ev *breach.Evaluator) { n = len(ev.Alarms(false, "")) })
	if n == 0 {
		t.Fatal("restored evaluator has no alarms")
	}

	// A damaged snapshot changes nothing.
	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)/2] ^= 0xff
	if err := dst.Restore(bytes.NewReader(bad)); err == nil {
		t.Fatal("damaged snapshot accepted")
	}
	if h, _ := dst.Hash(); h != h2 {
		t.Fatal("a rejected snapshot changed the state")
	}
	if err := dst.Restore(strings.NewReader("garbage")); err == nil {
		t.Fatal("garbage accepted as a snapshot")
	}
}

func TestUnknownEntries(t *testing.T) {
	m := open(t, t.TempDir())
	defer m.Close()
	var fatal error
	m.Fatal = func(err error) { fatal = err }
	m.Apply([]Entry{{Index: 1, Data: []byte{byte(Ignorable | 0x33), 1, '{', '}'}}})
	if fatal != nil || m.AppliedIndex() != 1 {
		t.Fatalf("ignorable entry: fatal=%v applied=%d", fatal, m.AppliedIndex())
	}
	m.Apply([]Entry{{Index: 2, Data: []byte{0x33, 1, '{', '}'}}})
	if !errors.Is(fatal, ErrUnknownEntry) || m.AppliedIndex() != 1 {
		t.Fatalf("unknown entry: fatal=%v applied=%d", fatal, m.AppliedIndex())
	}
	fatal = nil
	m.Apply([]Entry{{Index: 2, Data: []byte{byte(TypeTick), 9, '{', '}'}}})
	if !errors.Is(fatal, ErrUnknownEntry) {
		t.Fatalf("newer payload version: fatal=%v", fatal)
	}
}

func TestRejectionsChangeNothing(t *testing.T) {
	m := open(t, t.TempDir())
	defer m.Close()
	res := m.Apply([]Entry{
		{Index: 1, Data: must(PutOrder(breach.PutOrder{At: t0, Order: demoOrder()}))},
	})
	if _, ok := res[0].(*order.Order); !ok {
		t.Fatalf("result = %#v", res[0])
	}
	before, _ := m.Dump()
	dup := demoOrder()
	dup.ID = "ord-2"
	res = m.Apply([]Entry{{Index: 2, Data: must(PutOrder(breach.PutOrder{At: t0, Order: dup}))}})
	var rej *breach.Rejection
	if e, ok := res[0].(error); !ok || !errors.As(e, &rej) || rej.Code != "conflict" {
		t.Fatalf("result = %#v", res[0])
	}
	after, _ := m.Dump()
	for k, v := range after {
		if k != kApplied && before[k] != v {
			t.Fatalf("record %q changed by a rejected entry", k)
		}
	}
}

func TestRefusesForeignOrIncompatibleDirectories(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o600)
	if _, err := Open(dir, breach.DefaultConfig()); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("foreign directory: %v", err)
	}
	dir = t.TempDir()
	m := open(t, dir)
	m.db.Set([]byte(kSchema), []byte("skjold-state-99"), nil)
	m.Close()
	if _, err := Open(dir, breach.DefaultConfig()); err == nil || !strings.Contains(err.Error(), "skjold-state-99") {
		t.Fatalf("newer schema: %v", err)
	}
	dir = t.TempDir()
	m = open(t, dir)
	m.db.Set([]byte(pOrder+"x"), []byte("{not json"), nil)
	m.Close()
	if _, err := Open(dir, breach.DefaultConfig()); err == nil || !strings.Contains(err.Error(), "o/x") {
		t.Fatalf("damaged record: %v", err)
	}
}

func TestOutboxOrderAndRetention(t *testing.T) {
	m := open(t, t.TempDir())
	defer m.Close()
	var seen []OutboxItem
	m.OnChanges(func(items []OutboxItem) { seen = append(seen, items...) })
	m.Apply(scenario(t))
	items, err := m.OutboxAfter(0, 1000)
	if err != nil || len(items) == 0 || len(items) != len(seen) {
		t.Fatalf("outbox %d items, listeners saw %d, err %v", len(items), len(seen), err)
	}
	for i, it := range items {
		if it.Seq != uint64(i+1) || it.Seq != seen[i].Seq {
			t.Fatalf("item %d has seq %d", i, it.Seq)
		}
	}
	if c := m.Cursor("siren"); c != 2 {
		t.Fatalf("cursor = %d", c)
	}
	tail, _ := m.OutboxAfter(2, 1000)
	if len(tail) != len(items)-2 {
		t.Fatalf("after cursor: %d items", len(tail))
	}
	n := uint64(len(items))
	m.Apply([]Entry{{Index: 1000, Data: must(Tick(breach.Tick{At: t0.Add(OutboxRetention + time.Hour)}))}})
	left, _ := m.OutboxAfter(0, 1000)
	for _, it := range left {
		if it.Seq <= n {
			t.Fatalf("item %d outlived the retention", it.Seq)
		}
	}
}
