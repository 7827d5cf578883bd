package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/plugins/host"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

// The end-to-end tests run the real skjold binary with real plugin processes, as district IT would.

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skjold-e2e-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for name, pkg := range map[string]string{
		"skjold":             "github.com/skjold-alarm/skjold/cmd/skjold",
		"skjold-driver-sim":  "github.com/skjold-alarm/skjold/drivers/sim/cmd/skjold-driver-sim",
		"skjold-hook-siren":  "github.com/skjold-alarm/skjold/plugins/hooks/siren/cmd/skjold-hook-siren",
		"skjold-hook-cap":    "github.com/skjold-alarm/skjold/plugins/hooks/cap/cmd/skjold-hook-cap",
		"skjold-hook-broken": "",
	} {
		if pkg == "" {
			continue
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", name, ":", err)
			os.Exit(2)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func pin(t testing.TB, name string) (path, sum string) {
	t.Helper()
	path = filepath.Join(binDir, name)
	sum, err := host.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, sum
}

// agentProc is a running `skjold agent`.
type agentProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startAgent(t testing.TB, configPath, api string) *agentProc {
	t.Helper()
	p := launchAgent(t, configPath, api)
	p.waitHealthy()
	return p
}

// launchAgent starts `skjold agent` without waiting for a leader.
func launchAgent(t testing.TB, configPath, api string) *agentProc {
	t.Helper()
	p := &agentProc{t: t, base: "http://" + api, stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(filepath.Join(binDir, "skjold"), "agent", "--config", configPath)
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "SKJOLD_E2E_SECRET=do-not-leak")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("agent stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *agentProc) waitHealthy() {
	p.t.Helper()
	p.eventually("a node with a leader", func() bool {
		resp, err := http.Get(p.base + "/v1/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var h struct{ Leader string }
		json.NewDecoder(resp.Body).Decode(&h)
		return h.Leader != ""
	})
}

func (p *agentProc) eventually(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case err := <-p.done:
			p.done <- err
			p.t.Fatalf("agent exited while waiting for %s: %v\n%s", what, err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *agentProc) call(method, path, body string, out any) int {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			p.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

type healthBody struct {
	Status   string
	Problems []string
	Plugins  []struct {
		Name, Kind string
		Up         bool
		PID        int
		Restarts   int
		LastError  string `json:"last_error"`
	}
}

func (p *agentProc) health() healthBody {
	var h healthBody
	p.call("GET", "/v1/health", "", &h)
	return h
}

func (p *agentProc) pluginPID(name string) int {
	for _, pl := range p.health().Plugins {
		if pl.Name == name && pl.Up {
			return pl.PID
		}
	}
	return 0
}

// events opens the alarm event stream and returns a channel of SSE data payloads.
func (p *agentProc) events() <-chan eventData {
	p.t.Helper()
	resp, err := http.Get(p.base + "/v1/alarms/events")
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan eventData, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev eventData
				json.Unmarshal([]byte(d), &ev)
				ch <- ev
			}
		}
	}()
	return ch
}

type eventData struct {
	Seq                uint64           `json:"seq"`
	IdempotencyKey     string           `json:"idempotency_key"`
	ActivePoliceAlarms int              `json:"active_police_alarms"`
	SirenAlarms        int              `json:"siren_alarms"`
	Alarm              alarm.Alarm      `json:"alarm"`
	Transition         alarm.Transition `json:"transition"`
}

func waitEvent(t *testing.T, ch <-chan eventData, what string, match func(eventData) bool) eventData {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event stream ended while waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// relayReader reads LCUS frames from the pseudo-terminal master as hex.
func expectRelay(t *testing.T, pair *ptypair.Pair, want string) {
	t.Helper()
	wantBytes, _ := hex.DecodeString(strings.ReplaceAll(want, " ", ""))
	var got []byte
	buf := make([]byte, 64)
	deadline := time.Now().Add(30 * time.Second)
	for !bytes.HasSuffix(got, wantBytes) {
		pair.Master.SetReadDeadline(deadline)
		n, err := pair.Master.Read(buf)
		if err != nil {
			t.Fatalf("relay: waiting for % X, got % X: %v", wantBytes, got, err)
		}
		got = append(got, buf[:n]...)
	}
}

const e2eOrder = `{
  "id": "ord-e2e",
  "reference": "24-123456AST-TOSL/05",
  "basis": "straffeloven-57",
  "valid_from": "2020-01-01T00:00:00Z",
  "offender": {"device": "864717003283581"},
  "protected": [{"device": "unit-0017"}],
  "zones": [
    {"id": "home", "kind": "exclusion", "warning_m": 200,
     "geometry": {"type": "Polygon", "coordinates": [[[10.75,59.91],[10.76,59.91],[10.76,59.92],[10.75,59.91]]]}}
  ]
}`

func observation(dev string, at time.Time, lat, lon float64) string {
	return fmt.Sprintf(`[{"device": %q, "time": %q, "lat": %v, "lon": %v, "accuracy_m": 5, "battery_pct": 80, "strap": "closed"}]`,
		dev, at.UTC().Format(time.RFC3339Nano), lat, lon)
}

func writeConfig(t *testing.T, dir, api, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
node_id  = "e2e-1"
data_dir = %q
api  { listen = %q }
raft { listen = "127.0.0.1:0" }
%s
`, filepath.Join(dir, "data"), api, extra)
	path := filepath.Join(dir, "skjold.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEndToEndBreachSoundsTheSiren(t *testing.T) {
	relay, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	simPath, simSum := pin(t, "skjold-driver-sim")
	sirenPath, sirenSum := pin(t, "skjold-hook-siren")
	dir := t.TempDir()
	api := freeAddr(t)
	cfg := writeConfig(t, dir, api, fmt.Sprintf(`
driver "sim" {
  path   = %q
  sha256 = %q
  config {
    tags = [{ device = "unit-0017", path = [[10.757, 59.9115]], interval_s = 1, accuracy_m = 10 }]
  }
}
hook "siren" {
  path   = %q
  sha256 = %q
  config {
    port     = %q
    protocol = "lcus"
  }
}
`, simPath, simSum, sirenPath, sirenSum, relay.Path))
	p := startAgent(t, cfg, api)
	p.eventually("both plugins up", func() bool { return p.pluginPID("sim") > 0 && p.pluginPID("siren") > 0 })
	events := p.events()

	if code := p.call("POST", "/v1/orders", e2eOrder, nil); code != 201 {
		t.Fatalf("create order: %d", code)
	}
	// The simulated unit reports through its driver plugin.
	p.eventually("the protected unit heard through the sim driver", func() bool {
		var d device.State
		return p.call("GET", "/v1/devices/unit-0017", "", &d) == 200 && d.Driver == "sim" && d.LastFix != nil
	})
	now := time.Now()
	if code := p.call("POST", "/v1/observations", observation("864717003283581", now, 59.9105, 10.758), nil); code != 200 {
		t.Fatalf("observation: %d", code)
	}
	breach := waitEvent(t, events, "the breach", func(ev eventData) bool { return ev.Alarm.Kind == alarm.Breach })
	if breach.IdempotencyKey != breach.Alarm.ID+":1" || breach.Alarm.ZoneID != "home" || breach.Alarm.Class != alarm.Police {
		t.Fatalf("breach event %+v", breach)
	}
	expectRelay(t, relay, "A0 01 01 A2")

	// Operators acknowledge every police alarm: the siren stops.
	var open struct{ Alarms []alarm.Alarm }
	p.call("GET", "/v1/alarms", "", &open)
	for _, a := range open.Alarms {
		if a.Class == alarm.Police {
			if code := p.call("POST", "/v1/alarms/"+a.ID+"/ack", `{"by": "operator-1"}`, nil); code != 200 {
				t.Fatalf("ack %s: %d", a.ID, code)
			}
		}
	}
	expectRelay(t, relay, "A0 01 00 A1")

	// A crashed hook raises a monitoring fault, is restarted, and re-asserts the relay: the fault waits for
	// an operator like any alarm that sounds the siren, so the siren sounds until it is acknowledged.
	pid := p.pluginPID("siren")
	syscall.Kill(pid, syscall.SIGKILL)
	fault := waitEvent(t, events, "a monitoring fault for the siren", func(ev eventData) bool {
		return ev.Alarm.Kind == alarm.MonitoringFault && strings.Contains(ev.Alarm.Subject, "siren") && ev.Transition.Event == alarm.EventRaised
	})
	waitEvent(t, events, "the fault restored", func(ev eventData) bool {
		return ev.Alarm.ID == fault.Alarm.ID && ev.Transition.Event == alarm.EventRestored
	})
	if fault.SirenAlarms < 1 {
		t.Fatalf("the monitoring fault does not sound the siren: %+v", fault)
	}
	expectRelay(t, relay, "A0 01 01 A2")
	if np := p.pluginPID("siren"); np == pid || np == 0 {
		t.Fatalf("siren pid %d after restart (was %d)", np, pid)
	}
	if code := p.call("POST", "/v1/alarms/"+fault.Alarm.ID+"/ack", `{"by": "technician-1"}`, nil); code != 200 {
		t.Fatalf("ack the fault: %d", code)
	}
	expectRelay(t, relay, "A0 01 00 A1")

	// Ctrl-C: the node stops cleanly and takes its plugins with it.
	simPID, sirenPID := p.pluginPID("sim"), p.pluginPID("siren")
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("agent exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop")
	}
	for _, pid := range []int{simPID, sirenPID} {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("plugin process %d still runs after the node stopped", pid)
		}
	}
}

func TestSIGKILLKeepsEveryCommittedOrderFixAndAlarm(t *testing.T) {
	dir := t.TempDir()
	api := freeAddr(t)
	cfg := writeConfig(t, dir, api, "")
	p := startAgent(t, cfg, api)
	if code := p.call("POST", "/v1/orders", e2eOrder, nil); code != 201 {
		t.Fatalf("create order: %d", code)
	}
	events := p.events()

	// A writer alternates the offender inside and outside the zone; each 200 means committed.
	var mu sync.Mutex
	var committed []time.Time
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		base := time.Now().UTC()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			at := base.Add(time.Duration(i) * 100 * time.Millisecond)
			lat := 59.9105
			if i%10 >= 5 {
				lat = 59.905
			}
			resp, err := http.Post(p.base+"/v1/observations", "application/json", strings.NewReader(observation("864717003283581", at, lat, 10.758)))
			if err != nil {
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				mu.Lock()
				committed = append(committed, at)
				mu.Unlock()
			}
		}
	}()
	seen := map[string]int{} // alarm id → transitions seen on the stream (each is committed before it is sent)
	for n := 0; n < 8; n++ {
		ev := waitEvent(t, events, "alarm transitions", func(eventData) bool { return true })
		seen[ev.Alarm.ID] = max(seen[ev.Alarm.ID], int(ev.Transition.Seq))
	}
	// Kill while the writer is still going.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	close(stop)
	<-writerDone

	p2 := startAgent(t, cfg, api)
	var o struct{ ID, State string }
	if code := p2.call("GET", "/v1/orders/ord-e2e", "", &o); code != 200 || o.State != "active" {
		t.Fatalf("order after restart: %d %+v", code, o)
	}
	var track struct{ Fixes []device.Fix }
	p2.call("GET", "/v1/devices/864717003283581/track", "", &track)
	have := map[int64]bool{}
	for _, f := range track.Fixes {
		have[f.Time.UnixNano()] = true
	}
	mu.Lock()
	defer mu.Unlock()
	if len(committed) < 10 {
		t.Fatalf("only %d observations were committed before the kill", len(committed))
	}
	for _, at := range committed {
		if !have[at.UnixNano()] {
			t.Fatalf("committed fix at %s is missing after the restart (%d committed, %d kept)", at, len(committed), len(track.Fixes))
		}
	}
	for id, seq := range seen {
		var a alarm.Alarm
		if code := p2.call("GET", "/v1/alarms/"+id, "", &a); code != 200 || len(a.Transitions) < seq {
			t.Fatalf("alarm %s after restart: %d, %d transitions (saw %d)", id, code, len(a.Transitions), seq)
		}
	}
}

func TestPluginWithWrongPinIsNotStarted(t *testing.T) {
	dir := t.TempDir()
	api := freeAddr(t)
	sirenPath, _ := pin(t, "skjold-hook-siren")
	cfg := writeConfig(t, dir, api, fmt.Sprintf(`
hook "siren" {
  path   = %q
  sha256 = "%s"
  config { port = "/dev/null" }
}
`, sirenPath, strings.Repeat("ab", 32)))
	p := startAgent(t, cfg, api)
	p.eventually("a monitoring fault naming the siren", func() bool {
		var list struct{ Alarms []alarm.Alarm }
		p.call("GET", "/v1/alarms", "", &list)
		for _, a := range list.Alarms {
			if a.Kind == alarm.MonitoringFault && strings.Contains(a.Message, "siren") && strings.Contains(a.Message, "sha256") {
				return true
			}
		}
		return false
	})
	h := p.health()
	if h.Status != "degraded" || len(h.Plugins) != 1 || h.Plugins[0].Up || h.Plugins[0].PID != 0 {
		t.Fatalf("health %+v", h)
	}
}

func TestRefusesADamagedDataDirectory(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"state", "data/state/junk", "refusing"},
		{"raft", "data/raft/FORMAT", "refusing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeConfig(t, dir, freeAddr(t), "")
			os.MkdirAll(filepath.Dir(filepath.Join(dir, c.file)), 0o700)
			os.WriteFile(filepath.Join(dir, c.file), []byte("not what it should be"), 0o600)
			out, err := exec.Command(filepath.Join(binDir, "skjold"), "agent", "--config", cfg).CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.want) {
				t.Fatalf("agent on a damaged %s directory: err=%v\n%s", c.name, err, out)
			}
		})
	}
}

func TestCLIVerbs(t *testing.T) {
	dir := t.TempDir()
	api := freeAddr(t)
	p := startAgent(t, writeConfig(t, dir, api, ""), api)
	orderFile := filepath.Join(dir, "order.json")
	os.WriteFile(orderFile, []byte(e2eOrder), 0o600)
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(binDir, "skjold"), append([]string{"--addr", p.base, "--user", "operator-7"}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustCLI := func(want string, args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("skjold %s: %v\n%s\nwant %q", strings.Join(args, " "), err, out, want)
		}
		return out
	}
	mustCLI(`"id": "ord-e2e"`, "order", "create", "-f", orderFile)
	out, err := cli("order", "create", "-f", orderFile)
	if err == nil || !strings.Contains(out, "409 conflict") {
		t.Fatalf("second create: %v %s", err, out)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(strings.Replace(e2eOrder, `"kind": "exclusion"`, `"kind": "nope"`, 1)), 0o600)
	if out, err := cli("order", "create", "-f", bad); err == nil || !strings.Contains(out, "zones[0].kind") {
		t.Fatalf("bad order: %v %s", err, out)
	}
	mustCLI("ord-e2e", "order", "list")
	mustCLI(`"reference": "24-123456AST-TOSL/05"`, "order", "show", "ord-e2e")
	p.call("POST", "/v1/observations", observation("864717003283581", time.Now(), 59.9105, 10.758), nil)
	out = mustCLI("breach", "alarm", "list")
	var id string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " breach ") {
			id = strings.Fields(line)[0]
		}
	}
	mustCLI("acknowledged by operator-7", "alarm", "ack", id, "--note", "patrol sent")
	mustCLI("resolved by operator-7", "alarm", "resolve", id, "--reason", "arrested")
	mustCLI("resolved", "alarm", "list", "--all")
	mustCLI("59.91050,10.75800", "device", "list")
	mustCLI(`"role": "offender"`, "device", "show", "864717003283581")
	mustCLI(`"status": "ok"`, "health")
	mustCLI("ended", "order", "end", "ord-e2e", "--reason", "lifted")
	if out, err := cli("device", "show", "864717003283581"); err == nil || !strings.Contains(out, "404") {
		t.Fatalf("device of an ended order: %v %s", err, out)
	}
	mustCLI(`sha256 = "`, "plugin", "hash", filepath.Join(binDir, "skjold-hook-siren"))

	// alarm watch replays from the outbox and prints readable lines.
	watch := exec.Command(filepath.Join(binDir, "skjold"), "--addr", p.base, "alarm", "watch", "--since", "0")
	stdout, _ := watch.StdoutPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { watch.Process.Kill(); watch.Wait() }()
	sc := bufio.NewScanner(stdout)
	found := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if strings.Contains(sc.Text(), "RESOLVED") && strings.Contains(sc.Text(), id) {
				found <- sc.Text()
				return
			}
		}
		close(found)
	}()
	select {
	case line, ok := <-found:
		if !ok || !strings.Contains(line, "by operator-7") {
			t.Fatalf("watch line %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("alarm watch printed no resolution")
	}
}
