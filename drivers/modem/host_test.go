package modem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/drivers/modem"
	"github.com/skjold-alarm/skjold/drivers/modem/modemtest"
	"github.com/skjold-alarm/skjold/plugins/host"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

// sink records what the plugin host hands the node.
type sink struct {
	mu     sync.Mutex
	obs    []device.Observation
	states []string
}

func (s *sink) Observations(_ context.Context, _ string, obs []device.Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.obs = append(s.obs, obs...)
	return nil
}

func (s *sink) PluginState(name string, _ host.Kind, up bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states = append(s.states, name+" up="+map[bool]string{true: "true", false: "false"}[up]+" "+reason)
}

func (s *sink) snapshot() ([]device.Observation, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]device.Observation(nil), s.obs...), append([]string(nil), s.states...)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

func buildPlugin(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "skjold-driver-modem")
	cmd := exec.Command(goBin, "build", "-o", out, "github.com/skjold-alarm/skjold/drivers/modem/cmd/skjold-driver-modem")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// The real plugin binary, launched and pinned by the plugin host, reads a position SMS from the emulated
// modem on a pseudo-terminal and the observation reaches the node's sink as driver "modem"; the message is
// deleted after the node committed it.
func TestPluginBinaryThroughHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	bin := buildPlugin(t)
	p, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	emu := modemtest.Start(p.Master, "2468")
	defer emu.Stop()

	cfg, _ := json.Marshal(map[string]any{"port": p.Path, "pin": "2468", "poll_s": 0.2,
		"devices": map[string]string{"+4791234567": "tk103-0001"}})
	sum, err := host.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	m, err := host.New([]host.Spec{{Name: "modem", Kind: host.KindDriver, Path: bin, SHA256: sum, Config: cfg}}, s, host.Options{
		Node:       "node-a",
		Logger:     hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: testWriter{t}}),
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second, HealthInterval: 100 * time.Millisecond, CallTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	defer m.Stop()

	if err := emu.WaitFor(30*time.Second, "the plugin to initialise the modem", func(c []string) bool { return slices.Contains(c, "AT+CMGL=4") }); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 13, 0, 0, 0, time.FixedZone("", 3600))
	pdu, err := modem.DeliverPDU("+4791234567", at, "lat:59.910500 long:10.758000 speed:0.00 T:26/11/26 12:00 bat:80%", nil)
	if err != nil {
		t.Fatal(err)
	}
	idx := emu.Deliver(pdu)
	if err := emu.WaitFor(30*time.Second, "the message to be deleted", func(c []string) bool {
		return slices.Contains(c, "AT+CMGD="+itoa(idx))
	}); err != nil {
		t.Fatal(err)
	}
	obs, states := s.snapshot()
	if len(obs) != 1 {
		t.Fatalf("%d observations at the sink (states %q)", len(obs), states)
	}
	o := obs[0]
	if o.Driver != "modem" || o.Node != "node-a" || o.Device != "tk103-0001" || !o.HasFix() || *o.Lat != 59.9105 || *o.Lon != 10.758 ||
		!o.Time.Equal(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)) || o.BatteryPct == nil || *o.BatteryPct != 80 {
		t.Fatalf("observation %+v", o)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st host.Status
		for _, x := range m.Status() {
			if x.Name == "modem" {
				st = x
			}
		}
		if st.Up && strings.Contains(st.Health, "signal 20") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, states = s.snapshot()
	for _, st := range states {
		if strings.Contains(st, "up=false") {
			t.Fatalf("the plugin was reported down: %q", states)
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
