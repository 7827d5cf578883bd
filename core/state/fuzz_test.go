package state

import (
	"bytes"
	"testing"

	"github.com/skjold-alarm/skjold/core/breach"
)

// FuzzApplyEntry applies arbitrary bytes as a log entry after a valid order: the machine must apply it,
// reject it as a result, or stop through Fatal, and never panic or leave a half-written state.
func FuzzApplyEntry(f *testing.F) {
	for _, e := range [][]byte{
		must(Tick(breach.Tick{At: t0})),
		must(AckAlarm(breach.AckAlarm{At: t0, By: "x", ID: "alm-00000001"})),
		must(PutOrder(breach.PutOrder{At: t0, Order: demoOrder()})),
		{byte(TypeObservations), 1, '[', ']'},
		{byte(TypeObservations), 1, '{', '"', 'o', 'b', 's', '"', ':', '[', '{', '}', ']', '}'},
		{0x81, 1},
		{},
	} {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Open(t.TempDir(), breach.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		stopped := false
		m.Fatal = func(error) { stopped = true }
		m.Apply([]Entry{{Index: 1, Data: must(PutOrder(breach.PutOrder{At: t0, Order: demoOrder()}))}})
		before, _ := m.Hash()
		m.Apply([]Entry{{Index: 2, Data: data}})
		if stopped {
			if h, _ := m.Hash(); h != before || m.AppliedIndex() != 1 {
				t.Fatalf("a refused entry changed the state")
			}
		}
	})
}

// FuzzRestore feeds arbitrary bytes as a snapshot: refused with an error, never a panic, and a refused
// snapshot leaves the state as it was.
func FuzzRestore(f *testing.F) {
	src, err := Open(f.TempDir(), breach.DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	src.Apply([]Entry{{Index: 1, Data: must(PutOrder(breach.PutOrder{At: t0, Order: demoOrder()}))}})
	snap, _ := src.Snapshot()
	var buf bytes.Buffer
	snap.WriteTo(&buf)
	snap.Release()
	src.Close()
	f.Add(buf.Bytes())
	f.Add([]byte(snapshotMagic))
	f.Add([]byte(snapshotMagic + "\x05hello\x03abc\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Open(t.TempDir(), breach.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		before, _ := m.Hash()
		if err := m.Restore(bytes.NewReader(data)); err != nil {
			if h, _ := m.Hash(); h != before {
				t.Fatal("a refused snapshot changed the state")
			}
		}
	})
}
