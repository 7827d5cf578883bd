package gt06

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/drivers/gt06/protocol"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// vectors reads the test frames by id.
func vectors(t *testing.T) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Frames []struct{ ID, Hex string } `json:"frames"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range v.Frames {
		b, err := hex.DecodeString(f.Hex)
		if err != nil {
			t.Fatal(err)
		}
		out[f.ID] = b
	}
	return out
}

const imei = "864717003283581"

// emitter records observations. While gate is non-nil, each Emit signals entered and waits for a value on
// gate: nil commits, an error fails.
type emitter struct {
	mu      sync.Mutex
	got     []*pluginpb.Observation
	gate    chan error
	entered chan struct{}
	wake    chan struct{}
}

func newEmitter(blocking bool) *emitter {
	e := &emitter{entered: make(chan struct{}, 16), wake: make(chan struct{}, 1)}
	if blocking {
		e.gate = make(chan error)
	}
	return e
}

func (e *emitter) Emit(ctx context.Context, obs []*pluginpb.Observation) error {
	if e.gate != nil {
		e.entered <- struct{}{}
		select {
		case err := <-e.gate:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.mu.Lock()
	e.got = append(e.got, obs...)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

func (e *emitter) observations() []*pluginpb.Observation {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*pluginpb.Observation(nil), e.got...)
}

func (e *emitter) waitCount(t *testing.T, n int) []*pluginpb.Observation {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if got := e.observations(); len(got) >= n {
			return got
		}
		select {
		case <-e.wake:
		case <-deadline:
			t.Fatalf("timed out waiting for %d observations, have %d", n, len(e.observations()))
		}
	}
}

func (e *emitter) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-e.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("Emit was not called")
	}
}

// startDriver configures a driver on a free loopback port and runs it until the test ends.
func startDriver(t *testing.T, em *emitter, extra map[string]any) *Driver {
	t.Helper()
	cfg := map[string]any{"listen": "127.0.0.1:0"}
	for k, v := range extra {
		cfg[k] = v
	}
	raw, _ := json.Marshal(cfg)
	d := New(Options{})
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

// tag is a fake GT06 tag on a real TCP connection.
type tag struct {
	t   *testing.T
	c   net.Conn
	dec protocol.Decoder
}

func dial(t *testing.T, d *Driver) *tag {
	t.Helper()
	c, err := net.Dial("tcp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tag{t: t, c: c}
}

func (g *tag) send(b []byte) {
	g.t.Helper()
	if _, err := g.c.Write(b); err != nil {
		g.t.Fatal(err)
	}
}

// readFrame reads the next frame the server sends, waiting at most wait; ok is false on timeout.
func (g *tag) readFrame(wait time.Duration) (protocol.Frame, []byte, bool) {
	g.t.Helper()
	deadline := time.Now().Add(wait)
	buf := make([]byte, 512)
	for {
		f, err := g.dec.Next()
		if err == nil {
			raw, _ := protocol.Encode(f)
			return f, raw, true
		}
		if !errors.Is(err, protocol.ErrNeedMore) {
			g.t.Fatalf("server sent a bad frame: %v", err)
		}
		_ = g.c.SetReadDeadline(deadline)
		n, err := g.c.Read(buf)
		g.dec.Write(buf[:n])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return protocol.Frame{}, nil, false
			}
			g.t.Fatalf("read: %v", err)
		}
	}
}

func (g *tag) expectAck(protocolNo byte, serial uint16) {
	g.t.Helper()
	_, raw, ok := g.readFrame(5 * time.Second)
	if !ok {
		g.t.Fatalf("no ACK for 0x%02X", protocolNo)
	}
	if want := protocol.Ack(protocolNo, serial); !bytes.Equal(raw, want) {
		g.t.Fatalf("ACK % X, want % X", raw, want)
	}
}

func (g *tag) login() {
	g.t.Helper()
	g.send(vectors(g.t)["gt06-01"])
	g.expectAck(protocol.Login, 0x0009)
}

func TestLoginLocationAckedOnlyAfterEmit(t *testing.T) {
	em := newEmitter(true)
	d := startDriver(t, em, nil)
	g := dial(t, d)
	before := framesAccepted.Value("0x12")

	// The login is ACKed at once, with the protocol's exact bytes.
	g.send(vectors(t)["gt06-01"])
	_, raw, ok := g.readFrame(5 * time.Second)
	if !ok || hex.EncodeToString(raw) != "7878050100095594"+"0d0a" {
		t.Fatalf("login ACK % X (ok=%v)", raw, ok)
	}
	if got := d.Devices(); len(got) != 1 || got[0] != imei {
		t.Fatalf("devices %v", got)
	}

	loc := vectors(t)["gt06-05"]
	g.send(loc)
	em.waitEntered(t)
	// Emit has not returned: no ACK may reach the tag.
	if _, raw, ok := g.readFrame(300 * time.Millisecond); ok {
		t.Fatalf("ACK % X before Emit returned", raw)
	}
	em.gate <- nil
	g.expectAck(protocol.Location, 0x0003)

	obs := em.waitCount(t, 1)
	o := obs[0]
	if o.GetDevice() != imei || !o.GetHasFix() || math.Abs(o.GetLat()-54.94535) > 1e-5 || math.Abs(o.GetLon()-24.01762) > 1e-5 {
		t.Fatalf("observation %v", o)
	}
	if !o.GetTime().AsTime().Equal(time.Date(2015, 10, 20, 14, 21, 11, 0, time.UTC)) || o.GetAccuracyM() != 50 || o.GetSource() != "gt06:0x12" {
		t.Fatalf("observation %v", o)
	}
	if framesAccepted.Value("0x12") != before+1 {
		t.Fatalf("accepted 0x12 went from %v to %v", before, framesAccepted.Value("0x12"))
	}
}

func TestEmitFailureIsNotAckedAndResendIs(t *testing.T) {
	em := newEmitter(true)
	d := startDriver(t, em, nil)
	g := dial(t, d)
	failures := emitFailures.Value()
	g.login()
	status := vectors(t)["gt06-04"]

	g.send(status)
	em.waitEntered(t)
	em.gate <- errors.New("stream closed (test)")
	if _, raw, ok := g.readFrame(300 * time.Millisecond); ok {
		t.Fatalf("ACK % X for a packet the node did not commit", raw)
	}
	if emitFailures.Value() != failures+1 {
		t.Fatalf("emit failures %v, want %v", emitFailures.Value(), failures+1)
	}

	// The tag resends on the same connection; this time the node commits.
	g.send(status)
	em.waitEntered(t)
	em.gate <- nil
	g.expectAck(protocol.Status, 0x5ee4)
	o := em.waitCount(t, 1)[0]
	if o.GetHasFix() || o.BatteryPct == nil || o.GetBatteryPct() != 100 || o.GetDevice() != imei {
		t.Fatalf("status observation %v", o)
	}
}

func TestCorruptFrameIsCountedAndConnectionKept(t *testing.T) {
	em := newEmitter(false)
	d := startDriver(t, em, nil)
	g := dial(t, d)
	g.login()
	crc := framesRejected.Value("crc")
	stop := framesRejected.Value("stop")

	bad := append([]byte(nil), vectors(t)["gt06-05"]...)
	bad[10] ^= 0x01 // a flipped bit in the latitude
	badStop := append([]byte(nil), vectors(t)["gt06-04"]...)
	badStop[len(badStop)-1] = 0x00
	// Corrupted frames and the next good one in one write: the decoder must resynchronise inside it.
	g.send(bytes.Join([][]byte{bad, badStop, vectors(t)["gt06-11"]}, nil))
	g.expectAck(protocol.Alarm, 0x0002)

	obs := em.waitCount(t, 1)
	if len(obs) != 1 {
		t.Fatalf("%d observations, want only the good alarm", len(obs))
	}
	o := obs[0]
	if o.GetStrap() != pluginpb.Strap_STRAP_OPEN || !o.GetHasFix() || o.Charging == nil || !o.GetCharging() || o.BatteryPct != nil {
		t.Fatalf("alarm observation %v", o)
	}
	if framesRejected.Value("crc") != crc+1 || framesRejected.Value("stop") != stop+1 {
		t.Fatalf("rejected crc %v→%v stop %v→%v", crc, framesRejected.Value("crc"), stop, framesRejected.Value("stop"))
	}
}

func TestReportBeforeLoginIsDropped(t *testing.T) {
	em := newEmitter(false)
	d := startDriver(t, em, nil)
	g := dial(t, d)
	noLogin := framesRejected.Value("no_login")
	g.send(vectors(t)["gt06-05"])
	if _, raw, ok := g.readFrame(300 * time.Millisecond); ok {
		t.Fatalf("ACK % X for a location before login", raw)
	}
	if framesRejected.Value("no_login") != noLogin+1 {
		t.Fatalf("no_login %v, want %v", framesRejected.Value("no_login"), noLogin+1)
	}
	// The connection is kept: a login and the location work afterwards.
	g.login()
	g.send(vectors(t)["gt06-05"])
	g.expectAck(protocol.Location, 0x0003)
	if obs := em.waitCount(t, 1); len(obs) != 1 || obs[0].GetDevice() != imei {
		t.Fatalf("observations %v", obs)
	}
}

func TestCommandsReachTheTag(t *testing.T) {
	em := newEmitter(false)
	d := startDriver(t, em, map[string]any{"commands": map[string]any{"warn": "MSG,{text}#"}})
	g := dial(t, d)
	g.login()
	ctx := context.Background()

	cases := []struct {
		kind string
		args map[string]string
		want string
	}{
		{"vibrate", nil, "FIND#"},
		{"report_interval", map[string]string{"interval_s": "30"}, "TIMER,30#"},
		{"warn", map[string]string{"text": "LEAVE"}, "MSG,LEAVE#"},
	}
	var flags []uint32
	for _, c := range cases {
		if err := d.Command(ctx, &pluginpb.DeviceCommand{Id: "c-" + c.kind, Device: imei, Kind: c.kind, Args: c.args}); err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		f, _, ok := g.readFrame(5 * time.Second)
		if !ok {
			t.Fatalf("%s: no frame reached the tag", c.kind)
		}
		p, err := protocol.Parse(f)
		if err != nil || f.Protocol != protocol.ServerCommand || p.Text != c.want {
			t.Fatalf("%s: frame %+v packet %+v (%v), want 0x80 %q", c.kind, f, p, err, c.want)
		}
		flags = append(flags, p.ServerFlag)
	}
	if flags[0] == flags[1] || flags[1] == flags[2] {
		t.Fatalf("server flags repeat: %v", flags)
	}

	errCases := []struct {
		cmd  *pluginpb.DeviceCommand
		want string
	}{
		{&pluginpb.DeviceCommand{Device: "999999999999999", Kind: "vibrate"}, "not connected"},
		{&pluginpb.DeviceCommand{Device: imei, Kind: "selfdestruct"}, "unknown command kind"},
		{&pluginpb.DeviceCommand{Device: imei, Kind: "report_interval"}, `"interval_s" is required`},
		{&pluginpb.DeviceCommand{Device: imei, Kind: "report_interval", Args: map[string]string{"interval_s": "10#,X"}}, "must be"},
	}
	for _, c := range errCases {
		if err := d.Command(ctx, c.cmd); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("command %v: %v, want an error with %q", c.cmd, err, c.want)
		}
	}

	// The tag hangs up: it is no longer served and commands to it fail.
	g.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(d.Devices()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("devices after hang-up: %v", d.Devices())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if devicesGauge.Value() != 0 {
		t.Fatalf("devices gauge %v", devicesGauge.Value())
	}
	if err := d.Command(ctx, &pluginpb.DeviceCommand{Device: imei, Kind: "vibrate"}); err == nil {
		t.Fatal("command to a disconnected tag succeeded")
	}
}

func TestReloginOnNewConnectionReplacesOld(t *testing.T) {
	em := newEmitter(false)
	d := startDriver(t, em, nil)
	g1 := dial(t, d)
	g1.login()
	g2 := dial(t, d)
	g2.login()
	// The old connection is closed by the driver.
	_ = g1.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := g1.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("old connection read: %v, want EOF", err)
	}
	if err := d.Command(context.Background(), &pluginpb.DeviceCommand{Device: imei, Kind: "vibrate"}); err != nil {
		t.Fatal(err)
	}
	if f, _, ok := g2.readFrame(5 * time.Second); !ok || f.Protocol != protocol.ServerCommand {
		t.Fatalf("command on the new connection: %+v %v", f, ok)
	}
	if got := d.Devices(); len(got) != 1 {
		t.Fatalf("devices %v", got)
	}
}

func TestTruncatedFrameAtHangUpIsCounted(t *testing.T) {
	em := newEmitter(false)
	d := startDriver(t, em, nil)
	g := dial(t, d)
	g.login()
	before := framesRejected.Value("truncated")
	g.send(vectors(t)["gt06-05"][:12])
	g.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for framesRejected.Value("truncated") != before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("truncated %v, want %v", framesRejected.Value("truncated"), before+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestToObservation(t *testing.T) {
	received := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	fixTime := time.Date(2026, 11, 26, 11, 59, 50, 0, time.UTC)
	gps := func(sats int, valid bool, course int) *protocol.GPS {
		return &protocol.GPS{Time: fixTime, Satellites: sats, Lat: 59.91, Lon: -10.75, SpeedKmh: 36, Course: course, Valid: valid}
	}
	cases := []struct {
		name    string
		p       protocol.Packet
		fix     bool
		acc     float64
		time    time.Time
		heading *float64
		battery *int32
		strap   pluginpb.Strap
		charge  *bool
	}{
		{"9 satellites", protocol.Packet{Protocol: 0x12, GPS: gps(9, true, 90)}, true, 10, fixTime, f64(90), nil, 0, nil},
		{"6 satellites", protocol.Packet{Protocol: 0x22, GPS: gps(6, true, 0)}, true, 20, fixTime, f64(0), nil, 0, nil},
		{"4 satellites", protocol.Packet{Protocol: 0x12, GPS: gps(4, true, 359)}, true, 50, fixTime, f64(359), nil, 0, nil},
		{"3 satellites, course out of range", protocol.Packet{Protocol: 0x12, GPS: gps(3, true, 400)}, true, 100, fixTime, nil, nil, 0, nil},
		{"invalid fix: status only", protocol.Packet{Protocol: 0x12, GPS: gps(9, false, 90)}, false, 0, received, nil, nil, 0, nil},
		{"heartbeat, charging, level 2", protocol.Packet{Protocol: 0x13, Terminal: &protocol.Terminal{HasInfo: true, Info: 0x04, Level: 2, HasLevel: true}},
			false, 0, received, nil, i32(10), 0, boolp(true)},
		{"alarm removal", protocol.Packet{Protocol: 0x16, GPS: gps(8, true, 10), Terminal: &protocol.Terminal{HasInfo: true, Alarm: 0x18, Level: 0, HasLevel: true}},
			true, 10, fixTime, f64(10), i32(0), pluginpb.Strap_STRAP_OPEN, boolp(false)},
	}
	for _, c := range cases {
		o := ToObservation(imei, c.p, received)
		if o.GetHasFix() != c.fix || o.GetAccuracyM() != c.acc || !o.GetTime().AsTime().Equal(c.time) || o.GetStrap() != c.strap {
			t.Errorf("%s: %v", c.name, o)
			continue
		}
		if c.fix && (o.GetLon() != -10.75 || o.SpeedMps == nil || math.Abs(o.GetSpeedMps()-10) > 1e-9) {
			t.Errorf("%s: position/speed %v", c.name, o)
		}
		if !c.fix && (o.SpeedMps != nil || o.GetLat() != 0) {
			t.Errorf("%s: position without a fix %v", c.name, o)
		}
		if (c.heading == nil) != (o.HeadingDeg == nil) || (c.heading != nil && *c.heading != o.GetHeadingDeg()) {
			t.Errorf("%s: heading %v", c.name, o.HeadingDeg)
		}
		if (c.battery == nil) != (o.BatteryPct == nil) || (c.battery != nil && *c.battery != o.GetBatteryPct()) {
			t.Errorf("%s: battery %v", c.name, o.BatteryPct)
		}
		if (c.charge == nil) != (o.Charging == nil) || (c.charge != nil && *c.charge != o.GetCharging()) {
			t.Errorf("%s: charging %v", c.name, o.Charging)
		}
	}
}

func f64(v float64) *float64 { return &v }
func i32(v int32) *int32     { return &v }
func boolp(v bool) *bool     { return &v }

func TestBatteryTable(t *testing.T) {
	want := []int32{0, 5, 10, 25, 50, 75, 100}
	for level, w := range want {
		if got := BatteryPct(level); got != w {
			t.Errorf("level %d: %d%%, want %d%%", level, got, w)
		}
	}
}

func TestParseConfig(t *testing.T) {
	cfg, errs := ParseConfig([]byte(`{}`))
	if len(errs) > 0 || cfg.Listen != DefaultListen || cfg.IdleTimeout != DefaultIdleTimeout || cfg.Commands["vibrate"] != "FIND#" {
		t.Fatalf("defaults: %+v %v", cfg, errs)
	}
	cfg, errs = ParseConfig([]byte(`{"listen":"0.0.0.0:6000","idle_timeout_s":30,"max_connections":5,"commands":{"vibrate":"BUZZ#"}}`))
	if len(errs) > 0 || cfg.Listen != "0.0.0.0:6000" || cfg.IdleTimeout != 30*time.Second || cfg.MaxConnections != 5 ||
		cfg.Commands["vibrate"] != "BUZZ#" || cfg.Commands["warn"] != "FIND#" {
		t.Fatalf("set: %+v %v", cfg, errs)
	}
	bad := []struct{ cfg, field, text string }{
		{`[]`, "", "JSON object"},
		{`{"listen":5023}`, "listen", "string"},
		{`{"listen":"5023"}`, "listen", "host:port"},
		{`{"idle_timeout_s":0}`, "idle_timeout_s", "1 to 86400"},
		{`{"idle_timeout_s":"60"}`, "idle_timeout_s", "number"},
		{`{"max_connections":1.5}`, "max_connections", "whole number"},
		{`{"commands":[]}`, "commands", "object"},
		{`{"commands":{"reboot":"RESET#"}}`, "commands.reboot", "unknown command kind"},
		{`{"commands":{"vibrate":""}}`, "commands.vibrate", "1 to"},
		{`{"commands":{"vibrate":"A\u0001"}}`, "commands.vibrate", "printable"},
		{`{"port":1}`, "port", "unknown attribute"},
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
}

func TestConfigureReportsListenFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := New(Options{})
	errs := d.Configure([]byte(`{"listen":"`+ln.Addr().String()+`"}`), "n1")
	if len(errs) != 1 || errs[0].GetField() != "listen" || !strings.Contains(errs[0].GetMessage(), "cannot listen") {
		t.Fatalf("errors %v", errs)
	}
	if ok, _ := d.Health(); ok {
		t.Fatal("healthy without a listener")
	}
}
