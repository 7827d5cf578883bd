package siren

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

var (
	frameOn  = []byte{0xA0, 0x01, 0x01, 0xA2}
	frameOff = []byte{0xA0, 0x01, 0x00, 0xA1}
)

func openPair(t *testing.T) *ptypair.Pair {
	t.Helper()
	p, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// readExactly reads n bytes from the master or fails after the deadline.
func readExactly(t *testing.T, m *os.File, n int) []byte {
	t.Helper()
	if err := m.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(m, buf); err != nil {
		t.Fatalf("reading %d bytes from the relay side: %v", n, err)
	}
	return buf
}

func assertNothingMore(t *testing.T, m *os.File) {
	t.Helper()
	_ = m.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 16)
	if n, err := m.Read(buf); n > 0 {
		t.Fatalf("unexpected bytes % X (err %v)", buf[:n], err)
	}
}

func cfgJSON(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func event(active uint32) *pluginpb.AlarmEvent {
	return &pluginpb.AlarmEvent{IdempotencyKey: "a1:1", ActivePoliceAlarms: active}
}

func TestDeliverWritesFrames(t *testing.T) {
	p := openPair(t)
	h := New(Options{})
	defer h.Close()
	if errs := h.Configure(cfgJSON(t, map[string]any{"port": p.Path}), "n1"); len(errs) > 0 {
		t.Fatalf("configure: %v", errs)
	}
	steps := []struct {
		active uint32
		want   []byte
		ref    string
	}{{1, frameOn, "relay 1 ON"}, {3, frameOn, "relay 1 ON"}, {0, frameOff, "relay 1 OFF"}, {0, frameOff, "relay 1 OFF"}}
	for i, s := range steps {
		r, err := h.Deliver(context.Background(), event(s.active))
		if err != nil || !r.GetDelivered() || r.GetReference() != s.ref {
			t.Fatalf("step %d: receipt %v, err %v", i, r, err)
		}
		if got := readExactly(t, p.Master, 4); !bytes.Equal(got, s.want) {
			t.Fatalf("step %d: relay got % X, want % X", i, got, s.want)
		}
	}
	assertNothingMore(t, p.Master)
	if ok, msg := h.Health(); !ok || !strings.Contains(msg, "relay 1 OFF") {
		t.Fatalf("health = %v %q", ok, msg)
	}
}

func TestChannelAndBaud(t *testing.T) {
	p := openPair(t)
	h := New(Options{})
	defer h.Close()
	if errs := h.Configure(cfgJSON(t, map[string]any{"port": p.Path, "channel": 4, "baud": 19200, "protocol": "lcus"}), "n1"); len(errs) > 0 {
		t.Fatalf("configure: %v", errs)
	}
	if _, err := h.Deliver(context.Background(), event(1)); err != nil {
		t.Fatal(err)
	}
	if got := readExactly(t, p.Master, 4); !bytes.Equal(got, []byte{0xA0, 0x04, 0x01, 0xA5}) {
		t.Fatalf("relay got % X", got)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		cfg   string
		field string
		text  string
	}{
		{`{}`, "port", "is required"},
		{`{"port": ""}`, "port", "empty"},
		{`{"port": "ttyUSB0"}`, "port", "absolute"},
		{`{"port": 5}`, "port", "string"},
		{`{"port": "` + filepath.Join(dir, "nothing") + `"}`, "port", "no such file"},
		{`{"port": "/dev/null", "protocol": "modbus", "channel": 2}`, "channel", "does not apply"},
		{`{"port": "/dev/null", "slave": 2}`, "slave", "does not apply"},
		{`{"port": "/dev/null", "reply_timeout_ms": 200}`, "reply_timeout_ms", "does not apply"},
		{`{"port": "/dev/null", "protocol": "modbus", "slave": 0}`, "slave", "out of range"},
		{`{"port": "/dev/null", "protocol": "modbus", "slave": 248}`, "slave", "out of range"},
		{`{"port": "/dev/null", "protocol": "modbus", "coil": 65536}`, "coil", "out of range"},
		{`{"port": "/dev/null", "protocol": "modbus", "coil": -1}`, "coil", "out of range"},
		{`{"port": "/dev/null", "protocol": "modbus", "reply_timeout_ms": 10}`, "reply_timeout_ms", "out of range"},
		{`{"port": "/dev/null", "pattern": "blink"}`, "pattern", "not a known pattern"},
		{`{"port": "/dev/null", "escalated_pattern": 3}`, "escalated_pattern", "must be a string"},
		{`{"port": "/dev/null", "pulse_ms": 50}`, "pulse_ms", "out of range"},
		{`{"port": "/dev/null", "pulse_ms": "500"}`, "pulse_ms", "whole number"},
		{`{"port": "/dev/null", "protocol": "x10"}`, "protocol", "not a known"},
		{`{"port": "/dev/null", "channel": 9}`, "channel", "out of range"},
		{`{"port": "/dev/null", "channel": 1.5}`, "channel", "whole number"},
		{`{"port": "/dev/null", "channel": "4"}`, "channel", "whole number"},
		{`{"port": "/dev/null", "baud": 1234}`, "baud", "not a supported"},
		{`{"port": "/dev/null", "colour": "red"}`, "colour", "unknown attribute"},
		{`[1]`, "", "JSON object"},
	}
	for _, c := range cases {
		h := New(Options{})
		errs := h.Configure([]byte(c.cfg), "n1")
		h.Close()
		found := false
		for _, e := range errs {
			if e.Field == c.field && strings.Contains(e.Message, c.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("config %s: errors %v, want one on %q mentioning %q", c.cfg, errs, c.field, c.text)
		}
	}
}

func TestUnplugAndReplugReassertsState(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "usb-LCUS_relay-if00-port0") // stands in for /dev/serial/by-id/...
	p1 := openPair(t)
	if err := os.Symlink(p1.Path, link); err != nil {
		t.Fatal(err)
	}
	h := New(Options{ReopenMin: 5 * time.Millisecond, ReopenMax: 20 * time.Millisecond, MaintainEvery: 10 * time.Millisecond})
	defer h.Close()
	if errs := h.Configure(cfgJSON(t, map[string]any{"port": link}), "n1"); len(errs) > 0 {
		t.Fatalf("configure: %v", errs)
	}
	if r, _ := h.Deliver(context.Background(), event(1)); !r.GetDelivered() {
		t.Fatalf("receipt %v", r)
	}
	if got := readExactly(t, p1.Master, 4); !bytes.Equal(got, frameOn) {
		t.Fatalf("relay got % X", got)
	}

	// Unplug: the board disappears. Health notices without any write, and a delivery fails with a
	// receipt that says why.
	p1.Close()
	if ok, msg := h.Health(); ok || !strings.Contains(msg, "not open") {
		t.Fatalf("health right after unplug = %v %q", ok, msg)
	}
	r, err := h.Deliver(context.Background(), event(1))
	if err != nil || r.GetDelivered() || r.GetError() == "" {
		t.Fatalf("after unplug: receipt %v, err %v; want delivered=false with an error", r, err)
	}
	if ok, msg := h.Health(); ok || !strings.Contains(msg, link) {
		t.Fatalf("health after unplug = %v %q", ok, msg)
	}

	// Replug under another pts: the stable name now points there. The hook reopens it and writes ON again
	// without any new delivery.
	p2 := openPair(t)
	tmp := link + ".new"
	if err := os.Symlink(p2.Path, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	if got := readExactly(t, p2.Master, 4); !bytes.Equal(got, frameOn) {
		t.Fatalf("after replug relay got % X, want % X", got, frameOn)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, msg := h.Health()
		if ok && strings.Contains(msg, p2.Path) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never recovered: %q", msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
