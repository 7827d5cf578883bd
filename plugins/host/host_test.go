package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/plugins/host"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

// The real plugin binaries, built once.
var bins struct {
	sim, siren, env string
}

const leakVar = "SKJOLD_TEST_LEAK"

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "skjold-plugins-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		build := func(out, pkg string) string {
			path := filepath.Join(dir, out)
			cmd := exec.Command(goBin, "build", "-o", path, pkg)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "go build %s: %v\n", pkg, err)
				os.Exit(1)
			}
			return path
		}
		bins.sim = build("skjold-driver-sim", "github.com/skjold-alarm/skjold/drivers/sim/cmd/skjold-driver-sim")
		bins.siren = build("skjold-hook-siren", "github.com/skjold-alarm/skjold/plugins/hooks/siren/cmd/skjold-hook-siren")
		bins.env = build("envplugin", "./testdata/envplugin")
		// Something the plugins must never see.
		os.Setenv(leakVar, "the-host-environment")
		return m.Run()
	}())
}

type stateEvent struct {
	name   string
	kind   host.Kind
	up     bool
	reason string
}

// sink records what the manager hands the node.
type sink struct {
	mu      sync.Mutex
	batches [][]device.Observation
	states  []stateEvent
	reject  int // reject the next n batches
	wake    chan struct{}
}

func newSink() *sink { return &sink{wake: make(chan struct{}, 1)} }

func (s *sink) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sink) Observations(_ context.Context, driver string, obs []device.Observation) error {
	s.mu.Lock()
	defer s.notify()
	defer s.mu.Unlock()
	if s.reject > 0 {
		s.reject--
		return errors.New("no quorum (test)")
	}
	s.batches = append(s.batches, obs)
	return nil
}

func (s *sink) PluginState(name string, kind host.Kind, up bool, reason string) {
	s.mu.Lock()
	s.states = append(s.states, stateEvent{name, kind, up, reason})
	s.mu.Unlock()
	s.notify()
}

func (s *sink) snapshot() ([][]device.Observation, []stateEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]device.Observation(nil), s.batches...), append([]stateEvent(nil), s.states...)
}

// waitFor waits until cond holds, woken by the sink or by a short poll (for Status, which changes
// without the sink hearing of it).
func (s *sink) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			_, states := s.snapshot()
			t.Fatalf("timed out waiting for %s; plugin states: %+v", what, states)
		}
		select {
		case <-s.wake:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stateIndex returns the index of the first state event from index from on that matches.
func (s *sink) stateIndex(from int, match func(stateEvent) bool) int {
	_, states := s.snapshot()
	for i := from; i < len(states); i++ {
		if match(states[i]) {
			return i
		}
	}
	return -1
}

func pin(t *testing.T, path string) string {
	t.Helper()
	sum, err := host.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func spec(t *testing.T, name string, kind host.Kind, bin string, cfg any) host.Spec {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return host.Spec{Name: name, Kind: kind, Path: bin, SHA256: pin(t, bin), Config: raw}
}

func start(t *testing.T, s *sink, specs ...host.Spec) *host.Manager {
	t.Helper()
	return startWith(t, s, nil, specs...)
}

func startWith(t *testing.T, s *sink, tune func(*host.Options), specs ...host.Spec) *host.Manager {
	t.Helper()
	opts := host.Options{
		Node:           "node-a",
		Logger:         hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: testWriter{t}}),
		BackoffMin:     10 * time.Millisecond,
		BackoffMax:     200 * time.Millisecond,
		HealthInterval: 50 * time.Millisecond,
		CallTimeout:    5 * time.Second,
	}
	if tune != nil {
		tune(&opts)
	}
	m, err := host.New(specs, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	t.Cleanup(m.Stop)
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

func status(m *host.Manager, name string) host.Status {
	for _, st := range m.Status() {
		if st.Name == name {
			return st
		}
	}
	return host.Status{}
}

func isUp(m *host.Manager, name string) func() bool {
	return func() bool { return status(m, name).Up }
}

func simConfig(interval float64) map[string]any {
	return map[string]any{"seed": 1, "tags": []map[string]any{
		{"device": "864717003283581", "path": [][]float64{{10.745, 59.905}, {10.7505, 59.9105}}, "speed_mps": 8, "interval_s": interval, "accuracy_m": 8, "battery_pct": 80},
		{"device": "victim-unit-1", "path": [][]float64{{10.76, 59.92}}, "interval_s": interval},
	}}
}

func TestSimDriverDeliversObservationsAndGetsAcks(t *testing.T) {
	s := newSink()
	m := start(t, s, spec(t, "sim", host.KindDriver, bins.sim, simConfig(0.05)))
	s.waitFor(t, "observations", func() bool { b, _ := s.snapshot(); return len(b) >= 3 })

	batches, states := s.snapshot()
	if len(states) == 0 || !states[0].up || states[0].name != "sim" || states[0].kind != host.KindDriver {
		t.Fatalf("first plugin state %+v, want sim up", states)
	}
	devices := map[string]bool{}
	for _, b := range batches {
		for _, o := range b {
			devices[o.Device] = true
			if o.Driver != "sim" || o.Node != "node-a" {
				t.Fatalf("driver/node not filled: %+v", o)
			}
			if !o.HasFix() || o.Strap != device.StrapClosed || o.BatteryPct == nil || o.SpeedMps == nil {
				t.Fatalf("observation incomplete: %+v", o)
			}
			if age := time.Since(o.Time); age < 0 || age > time.Minute {
				t.Fatalf("fix time %v", o.Time)
			}
		}
	}
	if !devices["864717003283581"] || !devices["victim-unit-1"] {
		t.Fatalf("devices %v", devices)
	}

	// The driver waits for each ack before its next batch, so several batches mean acks flow; the
	// driver's own count confirms it. A rejection reaches the driver as such.
	s.mu.Lock()
	s.reject = 1
	s.mu.Unlock()
	s.waitFor(t, "the driver to count a rejected batch", func() bool {
		h := status(m, "sim").Health
		return strings.Contains(h, "rejected=1") && !strings.Contains(h, "acked=0 ")
	})
	if st := status(m, "sim"); !st.Up || st.PID == 0 || st.Kind != host.KindDriver {
		t.Fatalf("status %+v", st)
	}
}

func TestCommandRoundTrip(t *testing.T) {
	s := newSink()
	m := start(t, s, spec(t, "sim", host.KindDriver, bins.sim, simConfig(1)))
	s.waitFor(t, "sim up", isUp(m, "sim"))
	ctx := context.Background()
	if err := m.Command(ctx, "sim", &pluginpb.DeviceCommand{Id: "cmd-1", Device: "864717003283581", Kind: "vibrate"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Command(ctx, "sim", &pluginpb.DeviceCommand{Id: "cmd-2", Device: "864717003283581", Kind: "report_interval",
		Args: map[string]string{"interval_s": "0.5"}}); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "the driver to count the commands", func() bool {
		return strings.Contains(status(m, "sim").Health, "report_interval=1 vibrate=1 warn=0")
	})
	err := m.Command(ctx, "sim", &pluginpb.DeviceCommand{Device: "864717003283581", Kind: "selfdestruct"})
	if err == nil || !strings.Contains(err.Error(), `unknown command kind "selfdestruct"`) {
		t.Fatalf("unknown kind: %v", err)
	}
	if err := m.Command(ctx, "gt06", &pluginpb.DeviceCommand{Kind: "vibrate"}); err == nil || !strings.Contains(err.Error(), `no driver named "gt06"`) {
		t.Fatalf("unknown driver: %v", err)
	}
}

func change(active int, seq uint32) alarm.Change {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	a := alarm.Alarm{ID: "alm-1", Kind: alarm.Breach, Class: alarm.Police, Severity: alarm.Critical, State: alarm.Raised,
		Active: true, Device: "864717003283581", RaisedAt: at, Message: "tag is 12 m inside exclusion zone home"}
	tr := alarm.Transition{Seq: seq, State: alarm.Raised, Event: alarm.EventRaised, At: at, By: "evaluator"}
	a.Transitions = []alarm.Transition{tr}
	return alarm.Change{Alarm: a, Transition: tr, ActivePolice: active}
}

func readRelay(t *testing.T, p *ptypair.Pair) []byte {
	t.Helper()
	if err := p.Master.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(p.Master, b); err != nil {
		t.Fatalf("relay read: %v", err)
	}
	return b
}

var (
	relayOn  = []byte{0xA0, 0x01, 0x01, 0xA2}
	relayOff = []byte{0xA0, 0x01, 0x00, 0xA1}
)

func TestSirenHookSwitchesRelayAndReassertsAfterRestart(t *testing.T) {
	relay, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	s := newSink()
	m := start(t, s, spec(t, "siren", host.KindHook, bins.siren, map[string]any{"port": relay.Path}))
	s.waitFor(t, "siren up", isUp(m, "siren"))
	if got := m.Hooks(); len(got) != 1 || got[0] != "siren" {
		t.Fatalf("Hooks() = %v", got)
	}

	r, err := m.Deliver(context.Background(), "siren", change(1, 1))
	if err != nil || !r.GetDelivered() || r.GetReference() != "relay 1 ON" {
		t.Fatalf("deliver: %v %v", r, err)
	}
	if got := readRelay(t, relay); !bytes.Equal(got, relayOn) {
		t.Fatalf("relay got % X, want % X", got, relayOn)
	}

	// Kill the hook's process: it is reported down, restarted, reported up, and the relay is switched ON
	// again without a new delivery.
	before := status(m, "siren")
	_, states := s.snapshot()
	mark := len(states)
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "siren down", func() bool {
		return s.stateIndex(mark, func(e stateEvent) bool { return e.name == "siren" && !e.up }) >= 0
	})
	down := s.stateIndex(mark, func(e stateEvent) bool { return !e.up })
	_, states = s.snapshot()
	if !strings.Contains(states[down].reason, "exited: signal: killed") {
		t.Fatalf("down reason %q", states[down].reason)
	}
	if got := readRelay(t, relay); !bytes.Equal(got, relayOn) {
		t.Fatalf("after restart relay got % X, want % X (re-asserted)", got, relayOn)
	}
	s.waitFor(t, "siren up again", func() bool {
		return s.stateIndex(down, func(e stateEvent) bool { return e.name == "siren" && e.up }) >= 0
	})
	after := status(m, "siren")
	if after.PID == before.PID || after.PID == 0 || after.Restarts < 1 || !strings.Contains(after.LastError, "killed") {
		t.Fatalf("status before %+v after %+v", before, after)
	}

	r, err = m.Deliver(context.Background(), "siren", change(0, 2))
	if err != nil || !r.GetDelivered() {
		t.Fatalf("deliver: %v %v", r, err)
	}
	if got := readRelay(t, relay); !bytes.Equal(got, relayOff) {
		t.Fatalf("relay got % X, want % X", got, relayOff)
	}
}

func TestSirenUnplugIsReportedAndRecovered(t *testing.T) {
	link := filepath.Join(t.TempDir(), "usb-LCUS_relay-if00-port0") // stands in for /dev/serial/by-id/...
	relay1, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(relay1.Path, link); err != nil {
		t.Fatal(err)
	}
	s := newSink()
	m := start(t, s, spec(t, "siren", host.KindHook, bins.siren, map[string]any{"port": link}))
	s.waitFor(t, "siren up", isUp(m, "siren"))
	if r, err := m.Deliver(context.Background(), "siren", change(2, 1)); err != nil || !r.GetDelivered() {
		t.Fatalf("deliver: %v %v", r, err)
	}
	if got := readRelay(t, relay1); !bytes.Equal(got, relayOn) {
		t.Fatalf("relay got % X", got)
	}

	relay1.Close() // unplugged
	s.waitFor(t, "siren reported unhealthy", func() bool {
		return s.stateIndex(0, func(e stateEvent) bool {
			return !e.up && strings.Contains(e.reason, "unhealthy: not open: serial port "+link)
		}) >= 0
	})
	pid := status(m, "siren").PID
	if pid == 0 {
		t.Fatal("an unhealthy hook must keep running (it recovers by itself)")
	}

	relay2, err := ptypair.Open() // plugged in again, as another device
	if err != nil {
		t.Fatal(err)
	}
	defer relay2.Close()
	tmp := link + ".new"
	if err := os.Symlink(relay2.Path, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	if got := readRelay(t, relay2); !bytes.Equal(got, relayOn) {
		t.Fatalf("after replug relay got % X, want % X (re-asserted)", got, relayOn)
	}
	s.waitFor(t, "siren up again", func() bool {
		d := s.stateIndex(0, func(e stateEvent) bool { return !e.up })
		return s.stateIndex(d, func(e stateEvent) bool { return e.up }) >= 0
	})
	if st := status(m, "siren"); st.PID != pid || st.Restarts != 0 {
		t.Fatalf("the hook was restarted (status %+v, pid before %d); it should have recovered in place", st, pid)
	}
}

func TestDriverRestartsAfterKill(t *testing.T) {
	s := newSink()
	m := start(t, s, spec(t, "sim", host.KindDriver, bins.sim, simConfig(0.05)))
	s.waitFor(t, "observations", func() bool { b, _ := s.snapshot(); return len(b) >= 1 })
	pid := status(m, "sim").PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "sim down and up again", func() bool {
		d := s.stateIndex(0, func(e stateEvent) bool { return !e.up && strings.Contains(e.reason, "exited: signal: killed") })
		return d >= 0 && s.stateIndex(d, func(e stateEvent) bool { return e.up }) >= 0
	})
	b, _ := s.snapshot()
	n := len(b)
	s.waitFor(t, "observations from the new process", func() bool { b, _ := s.snapshot(); return len(b) >= n+2 })
	if st := status(m, "sim"); st.PID == pid || st.Restarts < 1 {
		t.Fatalf("status %+v (old pid %d)", st, pid)
	}
}

func TestHungPluginIsKilledAndRestarted(t *testing.T) {
	s := newSink()
	m := startWith(t, s, func(o *host.Options) {
		o.CallTimeout = time.Second
		o.StopGrace = time.Second
	}, spec(t, "env", host.KindHook, bins.env, map[string]any{}))
	s.waitFor(t, "env up", isUp(m, "env"))
	pid := status(m, "env").PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil { // alive, but answers nothing
		t.Fatal(err)
	}
	s.waitFor(t, "env down and up again", func() bool {
		d := s.stateIndex(0, func(e stateEvent) bool { return !e.up && strings.HasPrefix(e.reason, "health: ") })
		return d >= 0 && s.stateIndex(d, func(e stateEvent) bool { return e.up }) >= 0
	})
	if st := status(m, "env"); st.PID == pid || st.Restarts < 1 {
		t.Fatalf("status %+v, hung pid %d", st, pid)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("the hung process %d was not killed: %v", pid, err)
	}
}

func TestSHA256MismatchIsNotStarted(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	bin := filepath.Join(dir, "skjold-hook-env")
	// A binary that would leave a trace if it ran.
	script := fmt.Sprintf("#!/bin/sh\ntouch %s\n", marker)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	good := pin(t, bins.env)
	s := newSink()
	m := start(t, s, host.Spec{Name: "env", Kind: host.KindHook, Path: bin, SHA256: good})
	s.waitFor(t, "env down", func() bool {
		return s.stateIndex(0, func(e stateEvent) bool { return !e.up }) >= 0
	})
	_, states := s.snapshot()
	bad, _ := host.FileSHA256(bin)
	if !strings.Contains(states[0].reason, "sha256 mismatch") || !strings.Contains(states[0].reason, good) || !strings.Contains(states[0].reason, bad) {
		t.Fatalf("reason %q", states[0].reason)
	}
	if st := status(m, "env"); st.Up || st.PID != 0 {
		t.Fatalf("status %+v", st)
	}
	_, err := m.Deliver(context.Background(), "env", change(1, 1))
	if !errors.Is(err, host.ErrDown) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("deliver to a refused hook: %v", err)
	}

	// It is checked again (every BackoffMax), and reported only once.
	s.waitFor(t, "re-checks", func() bool { return status(m, "env").Restarts >= 2 })

	// Install the pinned binary in its place: it is checked again and started.
	real, err := os.ReadFile(bins.env)
	if err != nil {
		t.Fatal(err)
	}
	tmp := bin + ".new"
	if err := os.WriteFile(tmp, real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "env up once the binary matches", isUp(m, "env"))
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the mismatching binary was run (marker: %v)", err)
	}
	_, states = s.snapshot()
	if len(states) != 2 || states[0].up || !states[1].up {
		t.Fatalf("states %+v, want one down (sha256) then up", states)
	}
}

func TestPluginDoesNotSeeHostEnvironment(t *testing.T) {
	if os.Getenv(leakVar) == "" || os.Getenv("PATH") == "" {
		t.Fatal("test setup: the host environment is empty")
	}
	s := newSink()
	m := start(t, s, spec(t, "env", host.KindHook, bins.env, map[string]any{}))
	s.waitFor(t, "env health", func() bool { return strings.HasPrefix(status(m, "env").Health, "env: ") })
	names := strings.Split(strings.TrimPrefix(status(m, "env").Health, "env: "), ",")
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	if !seen["SKJOLD_PLUGIN"] {
		t.Fatalf("the plugin did not even see the handshake cookie: %v", names)
	}
	for _, n := range []string{leakVar, "PATH", "HOME", "GOFLAGS"} {
		if seen[n] {
			t.Errorf("the plugin sees the host's %s: %v", n, names)
		}
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "PLUGIN_") && n != "SKJOLD_PLUGIN" {
			t.Errorf("unexpected variable %s in the plugin's environment", n)
		}
	}
}

func TestConfigureErrorsNameTheFieldAndAreRetried(t *testing.T) {
	s := newSink()
	bad := map[string]any{"tags": []map[string]any{{"device": "x", "path": [][]float64{{10.7, 59.9}, {10.7}}}}}
	m := start(t, s, spec(t, "sim", host.KindDriver, bins.sim, bad))
	s.waitFor(t, "sim down", func() bool { return s.stateIndex(0, func(e stateEvent) bool { return !e.up }) >= 0 })
	_, states := s.snapshot()
	if r := states[0].reason; !strings.Contains(r, "configure: tags[0].path[1]: ") {
		t.Fatalf("reason %q", r)
	}
	s.waitFor(t, "retries", func() bool { return status(m, "sim").Restarts >= 3 })
	if _, states := s.snapshot(); len(states) != 1 {
		t.Fatalf("the same failure was reported %d times: %+v", len(states), states)
	}
}

func TestMissingPortAndWrongKind(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "usb-LCUS-if00")
	s := newSink()
	m := start(t, s,
		spec(t, "siren", host.KindHook, bins.siren, map[string]any{"port": missing}),
		spec(t, "notadriver", host.KindDriver, bins.siren, map[string]any{"port": missing}),
	)
	reason := func(name string) string {
		for _, e := range func() []stateEvent { _, st := s.snapshot(); return st }() {
			if e.name == name && !e.up {
				return e.reason
			}
		}
		return ""
	}
	s.waitFor(t, "both down", func() bool { return reason("siren") != "" && reason("notadriver") != "" })
	if r := reason("siren"); !strings.Contains(r, "configure: port: ") || !strings.Contains(r, "no such file") || !strings.Contains(r, missing) {
		t.Fatalf("siren reason %q", r)
	}
	if r := reason("notadriver"); !strings.Contains(r, `the plugin is a "hook", configured as a driver`) {
		t.Fatalf("wrong kind reason %q", r)
	}
	// Delivering to a hook that is down fails at once.
	t0 := time.Now()
	_, err := m.Deliver(context.Background(), "siren", change(1, 1))
	if !errors.Is(err, host.ErrDown) || time.Since(t0) > time.Second {
		t.Fatalf("deliver to a down hook: %v after %s", err, time.Since(t0))
	}
	if _, err := m.Deliver(context.Background(), "cad", change(1, 1)); err == nil || !strings.Contains(err.Error(), `no hook named "cad"`) {
		t.Fatalf("unknown hook: %v", err)
	}
}

func TestStopEndsEveryProcess(t *testing.T) {
	relay, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	s := newSink()
	m := start(t, s,
		spec(t, "sim", host.KindDriver, bins.sim, simConfig(0.05)),
		spec(t, "siren", host.KindHook, bins.siren, map[string]any{"port": relay.Path}),
	)
	s.waitFor(t, "both up", func() bool { return isUp(m, "sim")() && isUp(m, "siren")() })
	var pids []int
	for _, st := range m.Status() {
		pids = append(pids, st.PID)
	}
	m.Stop()
	for _, pid := range pids {
		// The process was reaped by its parent (us): the pid no longer exists.
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
	for _, st := range m.Status() {
		if st.Up || st.PID != 0 {
			t.Errorf("status after Stop %+v", st)
		}
	}
	_, states := s.snapshot()
	for _, e := range states {
		if !e.up {
			t.Errorf("Stop reported a plugin down: %+v", e)
		}
	}
	m.Stop() // idempotent
}

// processGone reports whether pid has exited (gone, or a zombie nobody reaps, as under a PID 1 that does
// not reap orphans).
func processGone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

func TestOrphanedPluginExits(t *testing.T) {
	// Start a plugin from a shell that exits at once, as if the node had been killed: the plugin is
	// orphaned and must end by itself instead of running forever.
	// The shell waits until the plugin has printed its handshake line (it is serving, and knows its
	// parent), then exits.
	cookie := "SKJOLD_PLUGIN=" + mustCookie(t)
	handshake := filepath.Join(t.TempDir(), "handshake")
	script := `env -i "$1" "$2" </dev/null >"$3" 2>/dev/null & echo $!
n=0; while [ ! -s "$3" ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done`
	out, err := exec.Command("/bin/sh", "-c", script, "sh", cookie, bins.env, handshake).Output()
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(out), &pid); err != nil || pid <= 0 {
		t.Fatalf("pid %q: %v", out, err)
	}
	if line, _ := os.ReadFile(handshake); !bytes.HasPrefix(line, []byte("1|1|")) {
		t.Fatalf("the plugin did not start serving: %q", line)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	deadline := time.Now().Add(15 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("orphaned plugin %d still runs", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustCookie(t *testing.T) string {
	t.Helper()
	return shared.Handshake.MagicCookieValue
}

func TestNewValidatesSpecs(t *testing.T) {
	good := host.Spec{Name: "sim", Kind: host.KindDriver, Path: bins.sim, SHA256: strings.Repeat("ab", 32)}
	cases := []struct {
		specs []host.Spec
		text  string
	}{
		{[]host.Spec{good, good}, "used twice"},
		{[]host.Spec{{Name: "", Kind: host.KindDriver, Path: "/x", SHA256: good.SHA256}}, "name is required"},
		{[]host.Spec{{Name: "a", Kind: "relay", Path: "/x", SHA256: good.SHA256}}, `kind "relay"`},
		{[]host.Spec{{Name: "a", Kind: host.KindHook, Path: "/x"}}, "sha256 is required"},
		{[]host.Spec{{Name: "a", Kind: host.KindHook, Path: "/x", SHA256: "abc"}}, "64 hex digits"},
		{[]host.Spec{{Name: "a", Kind: host.KindHook, SHA256: good.SHA256}}, "path is required"},
		{[]host.Spec{{Name: "a", Kind: host.KindHook, Path: "/x", SHA256: good.SHA256, Config: json.RawMessage(`[1]`)}}, "JSON object"},
	}
	for _, c := range cases {
		_, err := host.New(c.specs, newSink(), host.Options{})
		if err == nil || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%+v: err %v, want %q", c.specs, err, c.text)
		}
	}
	if _, err := host.New([]host.Spec{good}, nil, host.Options{}); err == nil {
		t.Error("nil sink accepted")
	}
	m, err := host.New([]host.Spec{good, {Name: "b", Kind: host.KindHook, Path: "/x", SHA256: strings.ToUpper(good.SHA256)}}, newSink(), host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if h := m.Hooks(); len(h) != 1 || h[0] != "b" {
		t.Fatalf("hooks %v", h)
	}
	m.Stop() // Stop before Start is harmless
}

func TestMetricsOfRunningPlugins(t *testing.T) {
	s := newSink()
	m := start(t, s, spec(t, "sim", host.KindDriver, bins.sim, simConfig(0.05)))
	s.waitFor(t, "acked batches", func() bool { b, _ := s.snapshot(); return len(b) >= 2 })
	var acked float64
	var pm host.PluginMetrics
	s.waitFor(t, "the acked counter", func() bool {
		all := m.Metrics(context.Background())
		if len(all) != 1 {
			return false
		}
		pm = all[0]
		for _, mt := range pm.Metrics {
			if mt.GetName() == "sim_batches_total" && mt.GetLabels()["result"] == "acked" {
				acked = mt.GetValue()
			}
		}
		return acked >= 2
	})
	if pm.Name != "sim" || pm.Kind != host.KindDriver || pm.Err != nil {
		t.Fatalf("metrics %+v", pm)
	}
	kinds := map[string]string{}
	for _, mt := range pm.Metrics {
		kinds[mt.GetName()] = mt.GetKind()
	}
	if kinds["sim_batches_total"] != "counter" || kinds["sim_tags"] != "gauge" {
		t.Fatalf("kinds %v", kinds)
	}
}

func TestMetricsOfPluginWithoutMetrics(t *testing.T) {
	s := newSink()
	m := start(t, s, spec(t, "env", host.KindHook, bins.env, map[string]any{}))
	s.waitFor(t, "the hook up", isUp(m, "env"))
	got := m.Metrics(context.Background())
	if len(got) != 1 || got[0].Name != "env" || got[0].Kind != host.KindHook || got[0].Err != nil || len(got[0].Metrics) != 0 {
		t.Fatalf("metrics of a hook that registers none: %+v", got)
	}
}
