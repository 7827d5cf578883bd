package siren

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/plugins/hooks/siren/modbus"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

// frameWithin reads one frame of n bytes from the relay side, failing if it does not come within d.
func frameWithin(t *testing.T, m *os.File, n int, d time.Duration) []byte {
	t.Helper()
	if err := m.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(m, buf); err != nil {
		t.Fatalf("waiting %s for a %d-byte frame: %v", d, n, err)
	}
	return buf
}

// framesUntilQuiet reads n-byte frames until none starts within quiet, and returns them.
func framesUntilQuiet(t *testing.T, m *os.File, n int, quiet time.Duration) [][]byte {
	t.Helper()
	var frames [][]byte
	for {
		_ = m.SetReadDeadline(time.Now().Add(quiet))
		buf := make([]byte, n)
		k, err := io.ReadFull(m, buf)
		if k == n {
			frames = append(frames, buf)
			continue
		}
		if k > 0 {
			t.Fatalf("partial frame % X (%v)", buf[:k], err)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("relay side: %v", err)
		}
		return frames
	}
}

func configure(t *testing.T, h *Hook, cfg map[string]any) {
	t.Helper()
	if errs := h.Configure(cfgJSON(t, cfg), "n1"); len(errs) > 0 {
		t.Fatalf("configure %v: %v", cfg, errs)
	}
}

func escalated(active, escalation uint32) *pluginpb.AlarmEvent {
	return &pluginpb.AlarmEvent{IdempotencyKey: "a1:2", ActivePoliceAlarms: active, PoliceEscalation: escalation}
}

func deliverOK(t *testing.T, h *Hook, ev *pluginpb.AlarmEvent, ref string) {
	t.Helper()
	r, err := h.Deliver(context.Background(), ev)
	if err != nil || !r.GetDelivered() || (ref != "" && r.GetReference() != ref) {
		t.Fatalf("deliver %v: receipt %v, err %v (want reference %q)", ev, r, err, ref)
	}
}

// expectPulses reads frames and requires the sequence ON, OFF, ON (the first ON may already have been read
// by the caller, then pass skipFirst), each within bound.
func expectPulses(t *testing.T, m *os.File, on, off []byte, skipFirst bool, bound time.Duration) {
	t.Helper()
	want := [][]byte{on, off, on}
	if skipFirst {
		want = want[1:]
	}
	for i, w := range want {
		if got := frameWithin(t, m, len(w), bound); !bytes.Equal(got, w) {
			t.Fatalf("pulse frame %d: got % X, want % X", i, got, w)
		}
	}
}

func TestLCUSVectorsThroughPty(t *testing.T) {
	raw, err := os.ReadFile("testdata/lcus.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Vectors []struct {
			Channel int    `json:"channel"`
			On      bool   `json:"on"`
			Hex     string `json:"hex"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || len(v.Vectors) == 0 {
		t.Fatalf("lcus.json: %v", err)
	}
	p := openPair(t)
	for _, x := range v.Vectors {
		h := New(Options{})
		configure(t, h, map[string]any{"port": p.Path, "channel": x.Channel})
		active := uint32(0)
		if x.On {
			active = 1
		}
		deliverOK(t, h, event(active), "")
		want, _ := hex.DecodeString(x.Hex)
		if got := frameWithin(t, p.Master, len(want), 5*time.Second); !bytes.Equal(got, want) {
			t.Errorf("channel %d on=%v: relay got % X, want % X", x.Channel, x.On, got, want)
		}
		h.Close()
	}
	assertNothingMore(t, p.Master)
}

// module plays a Modbus relay module on the pty master: for every 8-byte request it writes answer(req)
// (nothing when answer returns nil). It ends when the pair is closed.
func module(p *ptypair.Pair, answer func(req []byte) []byte) <-chan []byte {
	seen := make(chan []byte, 64)
	go func() {
		for {
			_ = p.Master.SetReadDeadline(time.Now().Add(30 * time.Second))
			req := make([]byte, modbus.FrameLen)
			if _, err := io.ReadFull(p.Master, req); err != nil {
				close(seen)
				return
			}
			seen <- req
			if a := answer(req); a != nil {
				if _, err := p.Master.Write(a); err != nil {
					close(seen)
					return
				}
			}
		}
	}()
	return seen
}

func echo(req []byte) []byte { return req }

func nextRequest(t *testing.T, seen <-chan []byte, d time.Duration) []byte {
	t.Helper()
	select {
	case req, ok := <-seen:
		if !ok {
			t.Fatal("module stopped")
		}
		return req
	case <-time.After(d):
		t.Fatalf("no request within %s", d)
	}
	return nil
}

func TestModbusVectorsThroughPty(t *testing.T) {
	raw, err := os.ReadFile("testdata/modbus.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Vectors []struct {
			Slave int    `json:"slave"`
			Coil  int    `json:"coil"`
			On    bool   `json:"on"`
			Hex   string `json:"hex"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || len(v.Vectors) == 0 {
		t.Fatalf("modbus.json: %v", err)
	}
	p := openPair(t)
	seen := module(p, echo)
	h := New(Options{})
	defer h.Close()
	configure(t, h, map[string]any{"port": p.Path, "protocol": "modbus", "slave": v.Vectors[0].Slave, "coil": v.Vectors[0].Coil})
	for _, x := range v.Vectors {
		active, ref := uint32(0), "slave 1 coil 0 OFF"
		if x.On {
			active, ref = 2, "slave 1 coil 0 ON"
		}
		deliverOK(t, h, event(active), ref)
		want, _ := hex.DecodeString(x.Hex)
		if got := nextRequest(t, seen, 5*time.Second); !bytes.Equal(got, want) {
			t.Errorf("on=%v: module got % X, want % X", x.On, got, want)
		}
	}
	if ok, msg := h.Health(); !ok || !strings.Contains(msg, "slave 1 coil 0 OFF") {
		t.Fatalf("health = %v %q", ok, msg)
	}
}

func TestModbusSlaveAndCoilThroughPty(t *testing.T) {
	p := openPair(t)
	seen := module(p, echo)
	h := New(Options{})
	defer h.Close()
	configure(t, h, map[string]any{"port": p.Path, "protocol": "modbus", "slave": 17, "coil": 0x0102, "baud": 19200})
	deliverOK(t, h, event(1), "slave 17 coil 258 ON")
	want := append([]byte{0x11, 0x05, 0x01, 0x02, 0xFF, 0x00}, 0, 0)
	c := modbus.CRC(want[:6])
	want[6], want[7] = byte(c), byte(c>>8)
	if got := nextRequest(t, seen, 5*time.Second); !bytes.Equal(got, want) {
		t.Fatalf("module got % X, want % X", got, want)
	}
}

func TestModbusEchoFailures(t *testing.T) {
	exception := []byte{0x01, 0x85, 0x02, 0xC3, 0x51} // slave 1, illegal data address
	cases := []struct {
		name   string
		answer func(req []byte) []byte
		reason string
	}{
		{"wrong crc", func(req []byte) []byte {
			b := append([]byte{}, req...)
			b[7] ^= 0x01
			return b
		}, "CRC"},
		{"exception", func([]byte) []byte { return exception }, "exception 0x02 (illegal data address)"},
		{"silence", func([]byte) []byte { return nil }, "no reply"},
		{"other coil state", func(req []byte) []byte {
			b, _ := modbus.Encode(int(req[0]), 0, req[4] != 0xFF)
			return b
		}, "does not echo"},
		{"half an echo", func(req []byte) []byte { return req[:4] }, "incomplete"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := openPair(t)
			seen := module(p, c.answer)
			h := New(Options{MaintainEvery: time.Hour})
			defer h.Close()
			configure(t, h, map[string]any{"port": p.Path, "protocol": "modbus", "reply_timeout_ms": 200})
			start := time.Now()
			r, err := h.Deliver(context.Background(), event(1))
			if err != nil || r.GetDelivered() || !strings.Contains(r.GetError(), c.reason) || r.GetReference() != "slave 1 coil 0 ON" {
				t.Fatalf("receipt %v, err %v; want delivered=false mentioning %q", r, err, c.reason)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("delivery took %s with a 200 ms reply timeout", took)
			}
			if got := nextRequest(t, seen, time.Second); !bytes.Equal(got, []byte{0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A}) {
				t.Fatalf("module got % X", got)
			}
			if ok, msg := h.Health(); ok || !strings.Contains(msg, c.reason) {
				t.Fatalf("health = %v %q", ok, msg)
			}
		})
	}
}

func TestModbusRecoversAfterFailedEcho(t *testing.T) {
	// The module is silent once, then echoes: the host's retry is delivered, and a stale echo of the
	// first request arriving late does not confuse the second.
	p := openPair(t)
	n := 0
	seen := module(p, func(req []byte) []byte {
		n++
		if n == 1 {
			return nil
		}
		stale, _ := modbus.Encode(1, 0, false)
		return append(stale, req...)
	})
	h := New(Options{MaintainEvery: time.Hour})
	defer h.Close()
	configure(t, h, map[string]any{"port": p.Path, "protocol": "modbus", "reply_timeout_ms": 200})
	if r, _ := h.Deliver(context.Background(), event(1)); r.GetDelivered() {
		t.Fatalf("first delivery: %v", r)
	}
	nextRequest(t, seen, time.Second)
	deliverOK(t, h, event(1), "slave 1 coil 0 ON")
	nextRequest(t, seen, time.Second)
	if ok, msg := h.Health(); !ok {
		t.Fatalf("health after a good echo = %q", msg)
	}
}

func TestPulsePatternToggles(t *testing.T) {
	p := openPair(t)
	h := New(Options{})
	defer h.Close()
	configure(t, h, map[string]any{"port": p.Path, "pattern": "pulse", "pulse_ms": 100})
	start := time.Now()
	deliverOK(t, h, event(1), "relay 1 PULSE 100ms")
	// The delivery writes ON at once; the hook's own goroutine then switches OFF and ON again.
	if got := frameWithin(t, p.Master, 4, time.Second); !bytes.Equal(got, frameOn) {
		t.Fatalf("first frame % X, want ON", got)
	}
	expectPulses(t, p.Master, frameOn, frameOff, true, 2*time.Second)
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("two phases of 100 ms took only %s", took)
	}
	if ok, msg := h.Health(); !ok || !strings.Contains(msg, "relay 1 PULSE 100ms") {
		t.Fatalf("health = %v %q", ok, msg)
	}
}

func TestSteadyDoesNotToggle(t *testing.T) {
	p := openPair(t)
	h := New(Options{})
	defer h.Close()
	configure(t, h, map[string]any{"port": p.Path, "pattern": "steady", "escalated_pattern": "steady", "pulse_ms": 100})
	deliverOK(t, h, escalated(2, 1), "relay 1 ON")
	if got := frameWithin(t, p.Master, 4, time.Second); !bytes.Equal(got, frameOn) {
		t.Fatalf("frame % X, want ON", got)
	}
	if extra := framesUntilQuiet(t, p.Master, 4, 500*time.Millisecond); len(extra) > 0 {
		t.Fatalf("a steady relay wrote % X", extra)
	}
}

func TestEscalationSwitchesSteadyToPulse(t *testing.T) {
	p := openPair(t)
	h := New(Options{})
	defer h.Close()
	// Defaults: steady at first, pulsing once an alarm is escalated.
	configure(t, h, map[string]any{"port": p.Path, "pulse_ms": 100})
	deliverOK(t, h, escalated(1, 0), "relay 1 ON")
	if got := frameWithin(t, p.Master, 4, time.Second); !bytes.Equal(got, frameOn) {
		t.Fatalf("frame % X, want ON", got)
	}
	if extra := framesUntilQuiet(t, p.Master, 4, 400*time.Millisecond); len(extra) > 0 {
		t.Fatalf("steady relay wrote % X before the escalation", extra)
	}
	deliverOK(t, h, escalated(1, 1), "relay 1 PULSE 100ms")
	expectPulses(t, p.Master, frameOn, frameOff, false, 2*time.Second)

	// Escalation answered, alarms still wait (e.g. a new unescalated one): back to steady ON.
	deliverOK(t, h, escalated(1, 0), "relay 1 ON")
	frames := framesUntilQuiet(t, p.Master, 4, 400*time.Millisecond)
	if len(frames) == 0 || !bytes.Equal(frames[len(frames)-1], frameOn) {
		t.Fatalf("after the escalation ended: frames % X, want the last one ON and then quiet", frames)
	}
}

func TestNoAlarmsSwitchesOffAndStopsPulsing(t *testing.T) {
	p := openPair(t)
	h := New(Options{})
	defer h.Close()
	configure(t, h, map[string]any{"port": p.Path, "pattern": "pulse", "pulse_ms": 100})
	deliverOK(t, h, event(3), "")
	expectPulses(t, p.Master, frameOn, frameOff, false, 2*time.Second)

	deliverOK(t, h, event(0), "relay 1 OFF")
	// Frames the pulse wrote before the delivery may precede the OFF; nothing may follow it.
	frames := framesUntilQuiet(t, p.Master, 4, 600*time.Millisecond)
	if len(frames) == 0 || !bytes.Equal(frames[len(frames)-1], frameOff) {
		t.Fatalf("after 0 active alarms: frames % X, want the last one OFF and then six pulse lengths of quiet", frames)
	}
	if ok, msg := h.Health(); !ok || !strings.Contains(msg, "relay 1 OFF") {
		t.Fatalf("health = %v %q", ok, msg)
	}
}

func TestRedeliveryWhilePulsingKeepsTheRhythm(t *testing.T) {
	// A duplicate delivery re-asserts the current phase at once; it does not restart the pattern.
	p := openPair(t)
	h := New(Options{})
	defer h.Close()
	configure(t, h, map[string]any{"port": p.Path, "pattern": "pulse", "pulse_ms": 200})
	deliverOK(t, h, event(1), "")
	frameWithin(t, p.Master, 4, time.Second) // ON
	if got := frameWithin(t, p.Master, 4, 2*time.Second); !bytes.Equal(got, frameOff) {
		t.Fatalf("got % X, want OFF", got)
	}
	deliverOK(t, h, event(1), "relay 1 PULSE 200ms")
	if got := frameWithin(t, p.Master, 4, time.Second); !bytes.Equal(got, frameOff) && !bytes.Equal(got, frameOn) {
		t.Fatalf("re-asserted % X", got)
	}
	// The pattern goes on.
	expectPulses(t, p.Master, frameOn, frameOff, false, 2*time.Second)
}

func TestModbusPulseWithEchoes(t *testing.T) {
	p := openPair(t)
	seen := module(p, echo)
	h := New(Options{})
	defer h.Close()
	configure(t, h, map[string]any{"port": p.Path, "protocol": "modbus", "pattern": "pulse", "pulse_ms": 100})
	deliverOK(t, h, event(1), "slave 1 coil 0 PULSE 100ms")
	on := []byte{0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A}
	off := []byte{0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xCD, 0xCA}
	for i, want := range [][]byte{on, off, on, off} {
		if got := nextRequest(t, seen, 2*time.Second); !bytes.Equal(got, want) {
			t.Fatalf("request %d: % X, want % X", i, got, want)
		}
	}
	if ok, msg := h.Health(); !ok {
		t.Fatalf("health = %q", msg)
	}
}

func TestCloseLeavesAPulsingRelayOn(t *testing.T) {
	p := openPair(t)
	h := New(Options{})
	configure(t, h, map[string]any{"port": p.Path, "pattern": "pulse", "pulse_ms": 100})
	deliverOK(t, h, event(1), "")
	expectPulses(t, p.Master, frameOn, frameOff, false, 2*time.Second)
	for {
		// Stop in an OFF phase.
		if got := frameWithin(t, p.Master, 4, 2*time.Second); bytes.Equal(got, frameOff) {
			break
		}
	}
	h.Close()
	frames := framesUntilQuiet(t, p.Master, 4, 500*time.Millisecond)
	if len(frames) == 0 || !bytes.Equal(frames[len(frames)-1], frameOn) {
		t.Fatalf("after Close: frames % X, want the relay left ON", frames)
	}
}

func TestCloseLeavesOffAndSteadyAlone(t *testing.T) {
	for _, active := range []uint32{0, 1} {
		p := openPair(t)
		h := New(Options{})
		configure(t, h, map[string]any{"port": p.Path})
		deliverOK(t, h, event(active), "")
		frameWithin(t, p.Master, 4, time.Second)
		h.Close()
		if extra := framesUntilQuiet(t, p.Master, 4, 200*time.Millisecond); len(extra) > 0 {
			t.Fatalf("active=%d: Close wrote % X", active, extra)
		}
	}
}

// A monitoring fault (Skjold going blind) sounds the siren although no police alarm waits.
func TestMonitoringFaultsSoundTheSiren(t *testing.T) {
	p := openPair(t)
	h := New(Options{})
	defer h.Close()
	configure(t, h, map[string]any{"port": p.Path, "pattern": "steady"})
	deliverOK(t, h, &pluginpb.AlarmEvent{IdempotencyKey: "alm-1:1", ActivePoliceAlarms: 0, SirenAlarms: 1}, "relay 1 ON")
	if got := frameWithin(t, p.Master, 4, time.Second); !bytes.Equal(got, frameOn) {
		t.Fatalf("frame % X, want ON", got)
	}
	deliverOK(t, h, &pluginpb.AlarmEvent{IdempotencyKey: "alm-1:2", ActivePoliceAlarms: 0, SirenAlarms: 0}, "relay 1 OFF")
	if got := frameWithin(t, p.Master, 4, time.Second); bytes.Equal(got, frameOn) {
		t.Fatalf("frame % X, want OFF", got)
	}
}
