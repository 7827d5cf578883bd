package serialrx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/drivers/serialrx"
	"github.com/skjold-alarm/skjold/plugins/host"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

type sink struct {
	mu   sync.Mutex
	obs  []device.Observation
	wake chan struct{}
}

func (s *sink) Observations(_ context.Context, _ string, obs []device.Observation) error {
	s.mu.Lock()
	s.obs = append(s.obs, obs...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *sink) PluginState(string, host.Kind, bool, string) {}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

func TestPluginBinaryThroughHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "skjold-driver-serialrx")
	if out, err := exec.Command(goBin, "build", "-o", bin, "github.com/skjold-alarm/skjold/drivers/serialrx/cmd/skjold-driver-serialrx").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sum, err := host.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cfg, _ := json.Marshal(map[string]any{"port": p.Path, "baud": 9600})
	s := &sink{wake: make(chan struct{}, 1)}
	m, err := host.New([]host.Spec{{Name: "serialrx", Kind: host.KindDriver, Path: bin, SHA256: sum, Config: cfg}}, s, host.Options{
		Node:           "node-a",
		Logger:         hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: testWriter{t}}),
		BackoffMin:     10 * time.Millisecond,
		BackoffMax:     200 * time.Millisecond,
		HealthInterval: 50 * time.Millisecond,
		CallTimeout:    5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	defer m.Stop()

	// The base station repeats its fix until one arrives: the plugin starts and opens the port at a time
	// of its own.
	lines := []byte(serialrx.Frame("PSKJ,864717003283581,90,C") + "\r\n" +
		serialrx.Frame("GPRMC,120001.00,A,5954.6300,N,01045.4800,E,2.5,87.3,261126,,,A") + "\r\n")
	deadline := time.Now().Add(20 * time.Second)
	_ = p.Master.SetWriteDeadline(deadline)
	for {
		if _, err := p.Master.Write(lines); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		got := append([]device.Observation(nil), s.obs...)
		s.mu.Unlock()
		if len(got) > 0 {
			o := got[0]
			if o.Driver != "serialrx" || o.Device != "864717003283581" || !o.HasFix() || o.BatteryPct == nil || *o.BatteryPct != 90 || o.Strap != device.StrapClosed {
				t.Fatalf("observation %+v", o)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no observation reached the sink")
		}
		select {
		case <-s.wake:
		case <-time.After(100 * time.Millisecond):
		}
	}
}
