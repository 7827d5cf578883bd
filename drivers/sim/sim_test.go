package sim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

// recorder is an Emitter that answers each batch with the next scripted outcome (nil when the script is
// done) and records what it was given.
type recorder struct {
	mu      sync.Mutex
	script  []error
	batches [][]*pluginpb.Observation
	got     chan struct{}
}

func (r *recorder) Emit(_ context.Context, obs []*pluginpb.Observation) error {
	r.mu.Lock()
	r.batches = append(r.batches, obs)
	var err error
	if len(r.script) > 0 {
		err, r.script = r.script[0], r.script[1:]
	}
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	return err
}

func (r *recorder) waitBatches(t *testing.T, n int) [][]*pluginpb.Observation {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		if len(r.batches) >= n {
			out := append([][]*pluginpb.Observation(nil), r.batches...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("fewer than %d batches", n)
		}
	}
}

func configured(t *testing.T, cfg string) *Sim {
	t.Helper()
	s := New(Options{})
	if errs := s.Configure([]byte(cfg), "n1"); len(errs) > 0 {
		t.Fatalf("configure: %v", errs)
	}
	return s
}

func run(t *testing.T, s *Sim, r *recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, r) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestRunReportsEveryTag(t *testing.T) {
	s := configured(t, `{"tags": [
		{"device": "offender", "path": [[10.745, 59.905], [10.7505, 59.9105]], "speed_mps": 8, "interval_s": 0.02, "accuracy_m": 8, "battery_pct": 80},
		{"device": "victim", "path": [[10.76, 59.92]], "interval_s": 0.02}]}`)
	r := &recorder{got: make(chan struct{}, 1)}
	run(t, s, r)
	batches := r.waitBatches(t, 3)
	seen := map[string]*pluginpb.Observation{}
	for _, b := range batches {
		for _, o := range b {
			seen[o.GetDevice()] = o
		}
	}
	off, vic := seen["offender"], seen["victim"]
	if off == nil || vic == nil {
		t.Fatalf("devices seen: %v", seen)
	}
	if !off.GetHasFix() || off.GetAccuracyM() != 8 || off.GetBatteryPct() != 80 || off.GetStrap() != pluginpb.Strap_STRAP_CLOSED || off.GetSource() != "sim" {
		t.Errorf("offender observation %v", off)
	}
	if off.SpeedMps == nil || off.GetSpeedMps() != 8 || off.HeadingDeg == nil {
		t.Errorf("a moving tag must report speed and heading: %v", off)
	}
	if vic.GetSpeedMps() != 0 || vic.HeadingDeg != nil || vic.GetLat() != 59.92 || vic.GetLon() != 10.76 {
		t.Errorf("a stationary unit must stay put without heading: %v", vic)
	}
	if age := time.Since(off.GetTime().AsTime()); age < 0 || age > 5*time.Second {
		t.Errorf("fix time %v is not now", off.GetTime().AsTime())
	}
	if ok, msg := s.Health(); !ok || !strings.Contains(msg, "2 tags") || !strings.Contains(msg, "acked=") {
		t.Errorf("health %v %q", ok, msg)
	}
}

func TestRunResendsUnackedAndDropsRejected(t *testing.T) {
	s := configured(t, `{"tags": [{"device": "a", "path": [[10, 60]], "interval_s": 3600}]}`)
	streamLost := fmt.Errorf("batch 1: %w", sdk.ErrStreamClosed)
	r := &recorder{got: make(chan struct{}, 1), script: []error{streamLost, nil}}
	run(t, s, r)
	b := r.waitBatches(t, 2)
	// The same observation, sent again after the stream loss.
	if len(b[0]) != 1 || len(b[1]) != 1 || b[0][0] != b[1][0] {
		t.Fatalf("batches %v", b)
	}
	waitHealth(t, s, "acked=1 rejected=0 resent=1")

	s2 := configured(t, `{"tags": [{"device": "a", "path": [[10, 60]], "interval_s": 0.02}]}`)
	r2 := &recorder{got: make(chan struct{}, 1), script: []error{&sdk.RejectedError{Batch: 1, Reason: "bad"}}}
	run(t, s2, r2)
	b2 := r2.waitBatches(t, 2)
	if len(b2[1]) != 1 || b2[1][0] == b2[0][0] {
		t.Fatalf("a rejected batch was sent again: %v", b2)
	}
	waitHealth(t, s2, "rejected=1")
}

func waitHealth(t *testing.T, s *Sim, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, msg := s.Health()
		if strings.Contains(msg, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health %q never contained %q", msg, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNoiseIsDeterministic(t *testing.T) {
	cfg := `{"seed": %d, "tags": [{"device": "a", "path": [[10, 60]], "noise_m": 5}]}`
	positions := func(seed int) []LonLat {
		s := configured(t, fmt.Sprintf(cfg, seed))
		now := time.Unix(1700000000, 0)
		var out []LonLat
		for i := 0; i < 5; i++ {
			o := s.observation(0, now, now)
			out = append(out, LonLat{o.GetLon(), o.GetLat()})
		}
		return out
	}
	a, b, c := positions(1), positions(1), positions(2)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different noise: %v vs %v", a, b)
		}
		if d := Distance(a[i], LonLat{10, 60}); d == 0 || d > 50 {
			t.Fatalf("noise %v m is not small noise", d)
		}
	}
	if a[0] == c[0] {
		t.Fatal("different seeds gave the same noise")
	}
}

func TestCommands(t *testing.T) {
	s := configured(t, `{"tags": [{"device": "a", "path": [[10, 60]], "interval_s": 3600}]}`)
	r := &recorder{got: make(chan struct{}, 1)}
	run(t, s, r)
	r.waitBatches(t, 1)
	ctx := context.Background()
	for _, k := range []string{"vibrate", "warn", "vibrate"} {
		if err := s.Command(ctx, &pluginpb.DeviceCommand{Id: "c", Device: "a", Kind: k}); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	bad := []struct {
		cmd  *pluginpb.DeviceCommand
		text string
	}{
		{&pluginpb.DeviceCommand{Device: "a", Kind: "selfdestruct"}, `unknown command kind "selfdestruct"`},
		{&pluginpb.DeviceCommand{Device: "zz", Kind: "vibrate"}, `unknown device "zz"`},
		{&pluginpb.DeviceCommand{Device: "a", Kind: "report_interval"}, "interval_s\" is required"},
		{&pluginpb.DeviceCommand{Device: "a", Kind: "report_interval", Args: map[string]string{"interval_s": "fast"}}, `"fast" is not a number`},
		{&pluginpb.DeviceCommand{Device: "a", Kind: "report_interval", Args: map[string]string{"interval_s": "0"}}, "is not a number of seconds"},
	}
	for _, b := range bad {
		if err := s.Command(ctx, b.cmd); err == nil || !strings.Contains(err.Error(), b.text) {
			t.Errorf("%v: err %v, want %q", b.cmd, err, b.text)
		}
	}
	// report_interval takes effect: from one report an hour to many within a second.
	if err := s.Command(ctx, &pluginpb.DeviceCommand{Device: "a", Kind: "report_interval", Args: map[string]string{"interval_s": "0.02"}}); err != nil {
		t.Fatal(err)
	}
	r.waitBatches(t, 4)
	waitHealth(t, s, "commands report_interval=1 vibrate=2 warn=1")
	if d := s.Devices(); len(d) != 1 || d[0] != "a" {
		t.Fatalf("devices %v", d)
	}
}

func TestRunWithoutConfigFails(t *testing.T) {
	if err := New(Options{}).Run(context.Background(), &recorder{}); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("err = %v", err)
	}
}
