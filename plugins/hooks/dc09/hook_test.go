package dc09_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skjold-alarm/skjold/plugins/hooks/dc09"
	"github.com/skjold-alarm/skjold/plugins/hooks/dc09/dc09test"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

const wait = 5 * time.Second

// clock advances one second at every reading, so that each attempt gets a new timestamp.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func startReceiver(t *testing.T, key []byte) *dc09test.Receiver {
	t.Helper()
	r, err := dc09test.Start("127.0.0.1:0", key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func newHook(t *testing.T, opts dc09.Options, cfg map[string]any) *dc09.Hook {
	t.Helper()
	if opts.BackoffMin == 0 {
		opts.BackoffMin, opts.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	}
	h := dc09.New(opts)
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if errs := h.Configure(raw, "n1"); len(errs) > 0 {
		t.Fatalf("configure: %v", errs)
	}
	t.Cleanup(h.Close)
	return h
}

func event(key, kind, event, zone string) *pluginpb.AlarmEvent {
	now := timestamppb.Now()
	class := "police"
	switch kind {
	case "tamper", "battery_low", "no_signal", "no_fix", "monitoring_fault", "device_fault":
		class = "technical"
	}
	return &pluginpb.AlarmEvent{
		IdempotencyKey: key,
		Alarm: &pluginpb.Alarm{Id: strings.Split(key, ":")[0], Kind: kind, Class: class, State: "raised", ZoneId: zone,
			Device: "864717003283581", RaisedAt: now},
		Transition: &pluginpb.Transition{Seq: 1, State: "raised", Event: event, At: now},
	}
}

func deliver(t *testing.T, h *dc09.Hook, ev *pluginpb.AlarmEvent) *pluginpb.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := h.Deliver(ctx, ev)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	return r
}

func next(t *testing.T, r *dc09test.Receiver) dc09test.Received {
	t.Helper()
	g, err := r.NextWithin(wait)
	if err != nil {
		t.Fatalf("no frame at the receiver: %v", err)
	}
	if g.Err != nil {
		t.Fatalf("receiver could not read %q: %v", g.Raw, g.Err)
	}
	return g
}

func zone(id string) string { return fmt.Sprintf("%03d", dc09.Zone(id)) }

func TestRaisedBreachIsAcked(t *testing.T) {
	r := startReceiver(t, nil)
	h := newHook(t, dc09.Options{}, map[string]any{"address": r.TCPAddr(), "account": "1234", "receiver": "F3", "line": "77"})
	acks := dc09Metric(t, "dc09_acks_total")
	rc := deliver(t, h, event("alm-00000003:1", "breach", "raised", "home"))
	if !rc.GetDelivered() || rc.GetReference() != "0001" {
		t.Fatalf("receipt %+v", rc)
	}
	g := next(t, r)
	f := g.Frame
	want := "#1234|Nri1/BA" + zone("home") + "|Aalm-00000003"
	if g.Transport != "tcp" || f.ID != dc09.IDSIA || f.Seq != "0001" || f.Receiver != "F3" || f.Line != "77" || f.Account != "1234" || f.Data != want || f.Encrypted {
		t.Fatalf("frame %+v, want data %q", f, want)
	}
	if f.Time.IsZero() || time.Since(f.Time) > time.Minute || time.Since(f.Time) < -time.Minute {
		t.Fatalf("timestamp %v is not now", f.Time)
	}
	if n := len(r.All()); n != 1 {
		t.Fatalf("%d frames, want exactly 1", n)
	}
	if got := dc09Metric(t, "dc09_acks_total"); got != acks+1 {
		t.Fatalf("acks metric %v, want %v", got, acks+1)
	}
	if ok, msg := h.Health(); !ok || !strings.Contains(msg, "last ACK") {
		t.Fatalf("health %v %q", ok, msg)
	}
	// The next message has the next sequence number.
	if rc := deliver(t, h, event("alm-00000004:1", "warning", "raised", "home")); rc.GetReference() != "0002" {
		t.Fatalf("second receipt %+v", rc)
	}
	if f := next(t, r).Frame; f.Seq != "0002" || !strings.Contains(f.Data, "|Nri1/UA") {
		t.Fatalf("second frame %+v", f)
	}
}

func TestNakThenAckRetriesWithNewTimestamp(t *testing.T) {
	r := startReceiver(t, nil)
	c := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	h := newHook(t, dc09.Options{Now: c.now}, map[string]any{"address": r.TCPAddr(), "account": "1234"})
	r.Script(dc09test.NAK)
	naks := dc09Metric(t, "dc09_naks_total")
	rc := deliver(t, h, event("a1:1", "breach", "raised", "home"))
	if !rc.GetDelivered() {
		t.Fatalf("receipt %+v", rc)
	}
	first, second := next(t, r), next(t, r)
	if first.Answer != dc09test.NAK || second.Answer != dc09test.ACK {
		t.Fatalf("answers %v %v", first.Answer, second.Answer)
	}
	if first.Frame.Seq != second.Frame.Seq || first.Frame.Data != second.Frame.Data {
		t.Fatalf("the retry is not the same message: %+v / %+v", first.Frame, second.Frame)
	}
	if !second.Frame.Time.After(first.Frame.Time) {
		t.Fatalf("retry timestamp %v not after %v", second.Frame.Time, first.Frame.Time)
	}
	if got := dc09Metric(t, "dc09_naks_total"); got != naks+1 {
		t.Fatalf("naks metric %v, want %v", got, naks+1)
	}
}

func TestNoAnswerTimesOutAndRetries(t *testing.T) {
	r := startReceiver(t, nil)
	h := newHook(t, dc09.Options{}, map[string]any{"address": r.TCPAddr(), "account": "1234", "timeout_s": 0.2, "retries": 2})
	r.Script(dc09test.Silent, dc09test.Silent, dc09test.Silent, dc09test.Silent)
	timeouts := dc09Metric(t, "dc09_timeouts_total")
	rc := deliver(t, h, event("a1:1", "breach", "raised", "home"))
	if rc.GetDelivered() || !strings.Contains(rc.GetError(), "no ACK after 3 attempts") || rc.GetReference() != "0001" {
		t.Fatalf("receipt %+v", rc)
	}
	all := r.All()
	if len(all) != 3 {
		t.Fatalf("%d frames, want 3 (1 + 2 retries)", len(all))
	}
	for _, g := range all {
		if g.Frame.Seq != "0001" {
			t.Fatalf("retry with sequence %s", g.Frame.Seq)
		}
	}
	if got := dc09Metric(t, "dc09_timeouts_total"); got != timeouts+3 {
		t.Fatalf("timeouts metric %v, want %v", got, timeouts+3)
	}
	if ok, msg := h.Health(); ok || !strings.Contains(msg, "no answer") {
		t.Fatalf("health %v %q", ok, msg)
	}
	if g := dc09Metric(t, "dc09_link_up"); g != 0 {
		t.Fatalf("link_up %v", g)
	}
	// The receiver answers again (script used up): delivered, healthy.
	if rc := deliver(t, h, event("a1:1", "breach", "raised", "home")); !rc.GetDelivered() {
		t.Fatalf("after recovery %+v", rc)
	}
	if ok, msg := h.Health(); !ok {
		t.Fatalf("health after recovery %q", msg)
	}
}

func TestDuhIsNotRetried(t *testing.T) {
	r := startReceiver(t, nil)
	h := newHook(t, dc09.Options{}, map[string]any{"address": r.TCPAddr(), "account": "1234"})
	r.Script(dc09test.DUH)
	rc := deliver(t, h, event("a1:1", "breach", "raised", "home"))
	if rc.GetDelivered() || !strings.Contains(rc.GetError(), "DUH") {
		t.Fatalf("receipt %+v", rc)
	}
	if n := len(r.All()); n != 1 {
		t.Fatalf("%d frames after DUH, want 1", n)
	}
	if ok, msg := h.Health(); !ok {
		t.Fatalf("a receiver that answers DUH is reachable: %q", msg)
	}
}

// An ACK for another sequence number (or account) is not the answer: the hook keeps waiting, times out
// and sends again.
func TestStaleAckIsIgnored(t *testing.T) {
	r := startReceiver(t, nil)
	h := newHook(t, dc09.Options{}, map[string]any{"address": r.TCPAddr(), "account": "1234", "timeout_s": 0.3, "retries": 1})
	r.Script(dc09test.StaleACK)
	rc := deliver(t, h, event("a:1", "breach", "raised", "home"))
	if !rc.GetDelivered() || rc.GetReference() != "0001" {
		t.Fatalf("%+v", rc)
	}
	all := r.All()
	if len(all) != 2 || all[0].Answer != dc09test.StaleACK || all[1].Frame.Seq != "0001" {
		t.Fatalf("frames %+v: the stale ACK was taken as the answer", all)
	}
}

func TestMappingAndRestore(t *testing.T) {
	cases := []struct {
		format, kind, event, zone, want string
	}{
		{"SIA-DCS", "breach", "raised", "home", "#1234|Nri1/BA" + zone("home") + "|Aa1"},
		{"SIA-DCS", "breach", "restored", "home", "#1234|Nri1/BR" + zone("home") + "|Aa1"},
		{"SIA-DCS", "dynamic_breach", "escalated", "", "#1234|Nri1/BA000|Aa1"},
		{"SIA-DCS", "tamper", "raised", "", "#1234|Nri1/TA000|Aa1"},
		{"SIA-DCS", "tamper", "restored", "", "#1234|Nri1/TR000|Aa1"},
		{"SIA-DCS", "battery_low", "restored", "", "#1234|Nri1/YR000|Aa1"},
		{"SIA-DCS", "no_signal", "raised", "", "#1234|Nri1/YS000|Aa1"},
		{"SIA-DCS", "monitoring_fault", "restored", "", "#1234|Nri1/YK000|Aa1"},
		{"ADM-CID", "breach", "raised", "home", "#1234|1130 01 " + zone("home")},
		{"ADM-CID", "inclusion_breach", "restored", "work", "#1234|3130 01 " + zone("work")},
		{"ADM-CID", "approach", "raised", "home", "#1234|1131 01 " + zone("home")},
		{"ADM-CID", "tamper", "raised", "", "#1234|1137 01 000"},
		{"ADM-CID", "battery_low", "raised", "", "#1234|1302 01 000"},
		{"ADM-CID", "no_fix", "restored", "", "#1234|3350 01 000"},
		{"ADM-CID", "monitoring_fault", "raised", "", "#1234|1354 01 000"},
		{"ADM-CID", "device_fault", "raised", "", "#1234|1380 01 000"},
	}
	r := startReceiver(t, nil)
	hooks := map[string]*dc09.Hook{}
	for _, f := range []string{"SIA-DCS", "ADM-CID"} {
		hooks[f] = newHook(t, dc09.Options{}, map[string]any{"address": r.TCPAddr(), "account": "1234", "format": f})
	}
	for i, c := range cases {
		rc := deliver(t, hooks[c.format], event(fmt.Sprintf("a1:%d", i), c.kind, c.event, c.zone))
		if !rc.GetDelivered() {
			t.Fatalf("%+v: %+v", c, rc)
		}
		f := next(t, r).Frame
		if f.ID != c.format || f.Data != c.want {
			t.Errorf("%s %s %s: %s %q, want %q", c.format, c.kind, c.event, f.ID, f.Data, c.want)
		}
	}
}

// Acknowledged and resolved are delivered without a message; a repeated idempotency key is not sent
// again.
func TestNotTransmittedAndDuplicates(t *testing.T) {
	r := startReceiver(t, nil)
	h := newHook(t, dc09.Options{}, map[string]any{"address": r.TCPAddr(), "account": "1234"})
	first := deliver(t, h, event("a1:1", "breach", "raised", "home"))
	if g := next(t, r); g.Frame.Seq != "0001" {
		t.Fatalf("first %+v", g.Frame)
	}
	if again := deliver(t, h, event("a1:1", "breach", "raised", "home")); !again.GetDelivered() || again.GetReference() != first.GetReference() {
		t.Fatalf("duplicate receipt %+v, first %+v", again, first)
	}
	for i, ev := range []string{"acknowledged", "resolved", "updated"} {
		rc := deliver(t, h, event(fmt.Sprintf("a1:%d", i+2), "breach", ev, "home"))
		if !rc.GetDelivered() || !strings.Contains(rc.GetReference(), "not transmitted") {
			t.Fatalf("%s: %+v", ev, rc)
		}
	}
	deliver(t, h, event("a2:1", "tamper", "raised", ""))
	if g := next(t, r); g.Frame.Seq != "0002" || !strings.Contains(g.Frame.Data, "TA000") {
		t.Fatalf("the frame after the skipped ones is %+v: something else was sent", g.Frame)
	}
	if n := len(r.All()); n != 2 {
		t.Fatalf("%d frames, want 2", n)
	}
}

func TestUDP(t *testing.T) {
	r := startReceiver(t, nil)
	h := newHook(t, dc09.Options{}, map[string]any{"address": r.UDPAddr(), "transport": "udp", "account": "ABC", "format": "ADM-CID"})
	rc := deliver(t, h, event("a1:1", "tamper", "raised", ""))
	g := next(t, r)
	if !rc.GetDelivered() || g.Transport != "udp" || g.Frame.Data != "#ABC|1137 01 000" {
		t.Fatalf("receipt %+v frame %+v via %s", rc, g.Frame, g.Transport)
	}
	// NAK over UDP: a second datagram.
	r.Script(dc09test.NAK)
	if rc := deliver(t, h, event("a1:2", "tamper", "restored", "")); !rc.GetDelivered() {
		t.Fatalf("%+v", rc)
	}
	a, b := next(t, r), next(t, r)
	if a.Frame.Seq != "0002" || b.Frame.Seq != "0002" || a.Transport != "udp" || b.Transport != "udp" {
		t.Fatalf("%+v %+v", a, b)
	}
}

func TestEncrypted(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		for _, transport := range []string{"tcp", "udp"} {
			t.Run(fmt.Sprintf("AES-%d/%s", n*8, transport), func(t *testing.T) {
				key := make([]byte, n)
				for i := range key {
					key[i] = byte(i*7 + n)
				}
				r := startReceiver(t, key)
				addr := r.TCPAddr()
				if transport == "udp" {
					addr = r.UDPAddr()
				}
				h := newHook(t, dc09.Options{}, map[string]any{"address": addr, "transport": transport, "account": "1234", "key": fmt.Sprintf("%X", key)})
				rc := deliver(t, h, event("alm-9:1", "breach", "raised", "home"))
				g := next(t, r)
				if !rc.GetDelivered() {
					t.Fatalf("receipt %+v (receiver saw %+v)", rc, g.Frame)
				}
				if !g.Frame.Encrypted || g.Frame.Data != "#1234|Nri1/BA"+zone("home")+"|Aalm-9" || g.Frame.Time.IsZero() {
					t.Fatalf("frame %+v", g.Frame)
				}
				if strings.Contains(string(g.Raw), "Nri1") || !strings.Contains(string(g.Raw), `"*SIA-DCS"`) {
					t.Fatalf("raw frame %q is not encrypted", g.Raw)
				}
			})
		}
	}
	// A receiver with another key cannot read the message: it answers DUH, the hook reports it.
	r := startReceiver(t, make([]byte, 16))
	h := newHook(t, dc09.Options{}, map[string]any{"address": r.TCPAddr(), "account": "1234", "key": strings.Repeat("11", 16)})
	if rc := deliver(t, h, event("a:1", "breach", "raised", "home")); rc.GetDelivered() || !strings.Contains(rc.GetError(), "DUH") {
		t.Fatalf("%+v", rc)
	}
}

func TestReconnectAfterReceiverDropsConnection(t *testing.T) {
	r := startReceiver(t, nil)
	h := newHook(t, dc09.Options{}, map[string]any{"address": r.TCPAddr(), "account": "1234", "timeout_s": 1})
	deliver(t, h, event("a:1", "breach", "raised", "home"))
	next(t, r)
	r.DropConnections()
	if rc := deliver(t, h, event("a:2", "breach", "restored", "home")); !rc.GetDelivered() {
		t.Fatalf("after the receiver dropped the connection: %+v", rc)
	}
	if g := next(t, r); g.Frame.Seq != "0002" || !strings.Contains(g.Frame.Data, "BR") {
		t.Fatalf("%+v", g.Frame)
	}
}

func TestSupervision(t *testing.T) {
	r := startReceiver(t, nil)
	h := newHook(t, dc09.Options{}, map[string]any{"address": r.TCPAddr(), "account": "1234", "line": "2", "supervision_s": 0.05, "timeout_s": 0.2, "retries": 0})
	for i := 0; i < 2; i++ {
		g := next(t, r)
		if g.Frame.ID != dc09.IDNull || g.Frame.Data != "" || g.Frame.Account != "1234" || g.Frame.Line != "2" || g.Frame.Time.IsZero() {
			t.Fatalf("link test %d: %+v", i, g.Frame)
		}
	}
	if ok, msg := h.Health(); !ok {
		t.Fatalf("healthy link reported %q", msg)
	}
	// The receiver stops answering: the next link test fails and Health says so.
	r.Script(dc09test.Silent)
	if g := next(t, r); g.Answer != dc09test.Silent {
		// a link test that was already on the way got its ACK; the next one is the silent one
		if g = next(t, r); g.Answer != dc09test.Silent {
			t.Fatalf("answer %v", g.Answer)
		}
	}
	waitHealth(t, h, false, "not answering")
	// It answers again: healthy at the next link test.
	waitHealth(t, h, true, "last ACK")
}

func TestSupervisionDeadReceiver(t *testing.T) {
	r := startReceiver(t, nil)
	h := newHook(t, dc09.Options{}, map[string]any{"address": r.TCPAddr(), "account": "1234", "supervision_s": 0.05, "timeout_s": 0.2, "retries": 0})
	next(t, r)
	waitHealth(t, h, true, "last ACK")
	r.Close()
	waitHealth(t, h, false, "not answering")
}

// waitHealth waits until Health answers healthy with a message containing sub.
func waitHealth(t *testing.T, h *dc09.Hook, healthy bool, sub string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ok, msg := h.Health()
		if ok == healthy && strings.Contains(msg, sub) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health %v %q, want %v with %q", ok, msg, healthy, sub)
		}
		time.Sleep(10 * time.Millisecond) // polling a state, not waiting for an event
	}
}

func TestConfigErrorsNameTheirField(t *testing.T) {
	cases := []struct {
		cfg   string
		field string
	}{
		{`{}`, "address"},
		{`{"address":"127.0.0.1:9"}`, "account"},
		{`{"address":"nohost","account":"1234"}`, "address"},
		{`{"address":"127.0.0.1:99999","account":"1234"}`, "address"},
		{`{"address":[1],"account":"1234"}`, "address"},
		{`{"address":"127.0.0.1:9","account":"12"}`, "account"},
		{`{"address":"127.0.0.1:9","account":"12345678901234567"}`, "account"},
		{`{"address":"127.0.0.1:9","account":"12G4"}`, "account"},
		{`{"address":"127.0.0.1:9","account":1234}`, "account"},
		{`{"address":"127.0.0.1:9","account":"1234","transport":"sctp"}`, "transport"},
		{`{"address":"127.0.0.1:9","account":"1234","receiver":"XY"}`, "receiver"},
		{`{"address":"127.0.0.1:9","account":"1234","line":""}`, "line"},
		{`{"address":"127.0.0.1:9","account":"1234","key":"00112233"}`, "key"},
		{`{"address":"127.0.0.1:9","account":"1234","key":"zz"}`, "key"},
		{`{"address":"127.0.0.1:9","account":"1234","format":"SIA-DC03"}`, "format"},
		{`{"address":"127.0.0.1:9","account":"1234","timeout_s":0}`, "timeout_s"},
		{`{"address":"127.0.0.1:9","account":"1234","timeout_s":"5"}`, "timeout_s"},
		{`{"address":"127.0.0.1:9","account":"1234","retries":1.5}`, "retries"},
		{`{"address":"127.0.0.1:9","account":"1234","retries":-1}`, "retries"},
		{`{"address":"127.0.0.1:9","account":"1234","supervision_s":-1}`, "supervision_s"},
		{`{"address":"127.0.0.1:9","account":"1234","bogus":1}`, "bogus"},
	}
	for _, c := range cases {
		_, errs := dc09.ParseConfig([]byte(c.cfg))
		found := false
		for _, e := range errs {
			if e.GetField() == c.field && e.GetMessage() != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: errors %v do not name %q", c.cfg, errs, c.field)
		}
	}
	cfg, errs := dc09.ParseConfig([]byte(`{"address":"arc.example:9000","account":"1234"}`))
	if len(errs) > 0 || cfg.Transport != "tcp" || cfg.Line != "0" || cfg.Format != "SIA-DCS" || cfg.Timeout != 5*time.Second || cfg.Retries != 3 || cfg.Supervision != 0 || cfg.Key != nil {
		t.Fatalf("defaults %+v %v", cfg, errs)
	}
	cfg, errs = dc09.ParseConfig([]byte(`{"address":"arc.example:9000","account":"1234","key":"` + strings.Repeat("AB", 24) + `","supervision_s":60}`))
	if len(errs) > 0 || len(cfg.Key) != 24 || cfg.Supervision != time.Minute {
		t.Fatalf("%+v %v", cfg, errs)
	}
}

func TestUnreachableReceiver(t *testing.T) {
	r := startReceiver(t, nil)
	addr := r.TCPAddr()
	r.Close() // nothing listens there now
	h := newHook(t, dc09.Options{}, map[string]any{"address": addr, "account": "1234", "timeout_s": 0.5, "retries": 1})
	rc := deliver(t, h, event("a:1", "breach", "raised", "home"))
	if rc.GetDelivered() || !strings.Contains(rc.GetError(), "connect") {
		t.Fatalf("%+v", rc)
	}
	if ok, _ := h.Health(); ok {
		t.Fatal("healthy with nothing listening")
	}
}

func dc09Metric(t *testing.T, name string) float64 {
	t.Helper()
	var sum float64
	for _, m := range sdkMetrics() {
		if m.Name == name {
			sum += m.Value
		}
	}
	return sum
}
