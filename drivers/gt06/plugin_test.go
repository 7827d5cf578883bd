package gt06_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/drivers/gt06/protocol"
	"github.com/skjold-alarm/skjold/plugins/host"
)

// buildPlugin builds the real plugin binary into the test's temporary directory.
func buildPlugin(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "skjold-driver-gt06")
	cmd := exec.Command(goBin, "build", "-o", out, "github.com/skjold-alarm/skjold/drivers/gt06/cmd/skjold-driver-gt06")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// sink records what the manager hands the node.
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

func (s *sink) snapshot() []device.Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]device.Observation(nil), s.obs...)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestPluginBinaryThroughHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	bin := buildPlugin(t)
	sum, err := host.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cfg, _ := json.Marshal(map[string]any{"listen": addr})
	s := &sink{wake: make(chan struct{}, 1)}
	m, err := host.New([]host.Spec{{Name: "gt06", Kind: host.KindDriver, Path: bin, SHA256: sum, Config: cfg}}, s, host.Options{
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

	// The driver listens once it is configured; dial until it answers.
	var c net.Conn
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err = net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin never listened on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()

	login, _ := hex.DecodeString("78780D01086471700328358100093F040D0A")
	loc, _ := hex.DecodeString("78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a")
	var dec protocol.Decoder
	readFrame := func() protocol.Frame {
		t.Helper()
		buf := make([]byte, 256)
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			f, err := dec.Next()
			if err == nil {
				return f
			}
			n, rerr := c.Read(buf)
			if rerr != nil {
				t.Fatalf("read: %v", rerr)
			}
			dec.Write(buf[:n])
		}
	}
	if _, err := c.Write(login); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(); f.Protocol != protocol.Login || f.Serial != 9 {
		t.Fatalf("login answer %+v", f)
	}
	if _, err := c.Write(loc); err != nil {
		t.Fatal(err)
	}
	// The ACK comes after the sink committed the observation.
	if f := readFrame(); f.Protocol != protocol.Location || f.Serial != 3 {
		t.Fatalf("location answer %+v", f)
	}
	obs := s.snapshot()
	if len(obs) != 1 {
		t.Fatalf("sink has %d observations when the ACK arrived, want 1", len(obs))
	}
	o := obs[0]
	if o.Driver != "gt06" || o.Node != "node-a" || o.Device != "864717003283581" || !o.HasFix() || o.AccuracyM == nil || *o.AccuracyM != 50 {
		t.Fatalf("observation %+v", o)
	}
	if got := fmt.Sprintf("%.5f,%.5f", *o.Lat, *o.Lon); got != "54.94535,24.01762" {
		t.Fatalf("position %s", got)
	}
}
