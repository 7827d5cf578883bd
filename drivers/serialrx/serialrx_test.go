package serialrx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

// emitter records committed observations; the first failN calls fail as if the host's stream ended.
type emitter struct {
	mu    sync.Mutex
	got   []*pluginpb.Observation
	calls int
	failN int
	wake  chan struct{}
}

func newEmitter(failN int) *emitter { return &emitter{failN: failN, wake: make(chan struct{}, 1)} }

func (e *emitter) Emit(_ context.Context, obs []*pluginpb.Observation) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	if e.calls <= e.failN {
		return fmt.Errorf("batch 1: %w", sdk.ErrStreamClosed)
	}
	e.got = append(e.got, obs...)
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

func (e *emitter) waitCount(t *testing.T, n int) []*pluginpb.Observation {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		got := append([]*pluginpb.Observation(nil), e.got...)
		e.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-e.wake:
		case <-deadline:
			t.Fatalf("timed out waiting for %d observations, have %d", n, len(got))
		}
	}
}

func openPair(t *testing.T) *ptypair.Pair {
	t.Helper()
	p, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func write(t *testing.T, p *ptypair.Pair, lines ...string) {
	t.Helper()
	if _, err := p.Master.Write([]byte(strings.Join(lines, "\r\n") + "\r\n")); err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T, port string, em *emitter) *Driver {
	t.Helper()
	d := New(Options{ReopenMin: 5 * time.Millisecond, ReopenMax: 20 * time.Millisecond})
	raw, _ := json.Marshal(map[string]any{"port": port, "baud": 9600, "accuracy_m": 12})
	if errs := d.Configure(raw, "n1"); len(errs) > 0 {
		t.Fatalf("configure: %v", errs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, em) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return d
}

func waitHealth(t *testing.T, d *Driver, healthy bool, contains string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, msg := d.Health()
		if ok == healthy && strings.Contains(msg, contains) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health %v %q, want %v containing %q", ok, msg, healthy, contains)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSentencesBecomeObservations(t *testing.T) {
	p := openPair(t)
	em := newEmitter(0)
	d := start(t, p.Path, em)
	checksum := linesRejected.Value(ReasonChecksum)
	noID := linesRejected.Value(ReasonNoID)
	orphan := linesRejected.Value(ReasonOrphanID)

	write(t, p,
		idLine, rmcLine, // a fix with battery and strap
		Frame("GPRMC,120002,A,5954.6300,N,01045.4800,E,0,0,261126,,"), // no PSKJ before it: dropped
		Frame("PSKJ,lost-rmc"), Frame("PSKJ,unit-0017"), // the first PSKJ is orphaned
		Frame("GPRMC,120003,V,,,,,,,261126,,"), // void: status without position
		idLine[:len(idLine)-2]+"00", rmcLine,   // bad checksum on the id: the RMC has no id
		Frame("PSKJ,tag-2,,O"), Frame("GPRMC,120004,A,3352.1280,S,15112.5580,W,1,180,261126,,"),
	)
	obs := em.waitCount(t, 3)
	if len(obs) != 3 {
		t.Fatalf("%d observations: %v", len(obs), obs)
	}
	o := obs[0]
	if o.GetDevice() != "864717003283581" || !o.GetHasFix() || o.GetAccuracyM() != 12 || o.GetBatteryPct() != 87 ||
		o.GetStrap() != pluginpb.Strap_STRAP_CLOSED || math.Abs(o.GetLat()-(59+54.63/60)) > 1e-9 || o.GetHeadingDeg() != 87.3 ||
		!o.GetTime().AsTime().Equal(time.Date(2026, 11, 26, 12, 0, 1, 0, time.UTC)) {
		t.Fatalf("first observation %v", o)
	}
	if o := obs[1]; o.GetDevice() != "unit-0017" || o.GetHasFix() || o.SpeedMps != nil ||
		!o.GetTime().AsTime().Equal(time.Date(2026, 11, 26, 12, 0, 3, 0, time.UTC)) {
		t.Fatalf("void observation %v", o)
	}
	if o := obs[2]; o.GetDevice() != "tag-2" || o.GetStrap() != pluginpb.Strap_STRAP_OPEN || o.GetLat() >= 0 || o.GetLon() >= 0 || o.BatteryPct != nil {
		t.Fatalf("third observation %v", o)
	}
	if linesRejected.Value(ReasonChecksum) != checksum+1 || linesRejected.Value(ReasonNoID) != noID+2 || linesRejected.Value(ReasonOrphanID) != orphan+1 {
		t.Fatalf("rejected checksum +%v no_id +%v orphan_id +%v, want +1 +2 +1",
			linesRejected.Value(ReasonChecksum)-checksum, linesRejected.Value(ReasonNoID)-noID, linesRejected.Value(ReasonOrphanID)-orphan)
	}
	if got := d.Devices(); strings.Join(got, ",") != "864717003283581,tag-2,unit-0017" {
		t.Fatalf("devices %v", got)
	}
	if err := d.Command(context.Background(), &pluginpb.DeviceCommand{Device: "tag-2", Kind: "vibrate"}); !errors.Is(err, ErrReceiveOnly) {
		t.Fatalf("command: %v", err)
	}
}

func TestUnacknowledgedBatchIsSentAgain(t *testing.T) {
	p := openPair(t)
	em := newEmitter(2)
	start(t, p.Path, em)
	failures := emitFailures.Value()
	write(t, p, idLine, rmcLine)
	obs := em.waitCount(t, 1)
	if len(obs) != 1 || obs[0].GetDevice() != "864717003283581" {
		t.Fatalf("observations %v", obs)
	}
	if emitFailures.Value() != failures+2 {
		t.Fatalf("emit failures +%v, want +2", emitFailures.Value()-failures)
	}
}

func TestUnplugIsUnhealthyAndNewPathRecovers(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "usb-Base_Station-if00-port0") // stands in for /dev/serial/by-id/...
	p1 := openPair(t)
	if err := os.Symlink(p1.Path, link); err != nil {
		t.Fatal(err)
	}
	em := newEmitter(0)
	d := start(t, link, em)
	waitHealth(t, d, true, p1.Path)
	write(t, p1, idLine, rmcLine)
	em.waitCount(t, 1)

	// Unplug: the pair goes away.
	p1.Close()
	waitHealth(t, d, false, "not open")
	// Health and the gauge are updated one after the other: wait for the gauge too.
	for deadline := time.Now().Add(5 * time.Second); portOpen.Value() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("port_open gauge %v after unplug", portOpen.Value())
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Replug under another pts: the stable name now points there.
	p2 := openPair(t)
	tmp := link + ".new"
	if err := os.Symlink(p2.Path, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, d, true, p2.Path)
	write(t, p2, Frame("PSKJ,after-replug"), Frame("GPRMC,120010,A,5954.6300,N,01045.4800,E,0,0,261126,,"))
	obs := em.waitCount(t, 2)
	if obs[1].GetDevice() != "after-replug" {
		t.Fatalf("after replug: %v", obs[1])
	}
}

func TestParseConfig(t *testing.T) {
	cfg, errs := ParseConfig([]byte(`{"port":"/dev/ttyS0"}`))
	if len(errs) > 0 || cfg.Baud != 4800 || cfg.AccuracyM != DefaultAccuracyM {
		t.Fatalf("defaults %+v %v", cfg, errs)
	}
	bad := []struct{ cfg, field, text string }{
		{`"x"`, "", "JSON object"},
		{`{}`, "port", "required"},
		{`{"port":""}`, "port", "empty"},
		{`{"port":"ttyS0"}`, "port", "absolute"},
		{`{"port":1}`, "port", "string"},
		{`{"port":"/dev/ttyS0","baud":4801}`, "baud", "supported"},
		{`{"port":"/dev/ttyS0","baud":"9600"}`, "baud", "whole number"},
		{`{"port":"/dev/ttyS0","accuracy_m":0}`, "accuracy_m", "1 to 10000"},
		{`{"port":"/dev/ttyS0","parity":"N"}`, "parity", "unknown attribute"},
	}
	for _, c := range bad {
		_, errs := ParseConfig([]byte(c.cfg))
		found := false
		for _, e := range errs {
			if e.GetField() == c.field && strings.Contains(e.GetMessage(), c.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: errors %v, want one on %q with %q", c.cfg, errs, c.field, c.text)
		}
	}
	d := New(Options{})
	errs = d.Configure([]byte(`{"port":"/nonexistent/tty"}`), "n1")
	if len(errs) != 1 || errs[0].GetField() != "port" || !strings.Contains(errs[0].GetMessage(), "/nonexistent/tty") {
		t.Fatalf("configure with a missing port: %v", errs)
	}
}
