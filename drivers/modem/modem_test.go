package modem

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/skjold-alarm/skjold/drivers/modem/modemtest"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

const (
	tagNumber  = "+4791234567"
	tagDevice  = "tk103-0001"
	unitNumber = "+4798765432"
	unitDevice = "unit-0017"
)

// fakeEmitter records batches; it can fail the next calls or hold each call until released.
type fakeEmitter struct {
	mu      sync.Mutex
	batches [][]*pluginpb.Observation
	calls   int
	fail    int
	gate    chan error // when set, each Emit waits for a value and returns it
	called  chan struct{}
}

func newEmitter() *fakeEmitter { return &fakeEmitter{called: make(chan struct{}, 64)} }

func (f *fakeEmitter) Emit(ctx context.Context, obs []*pluginpb.Observation) error {
	f.mu.Lock()
	f.calls++
	gate := f.gate
	f.mu.Unlock()
	f.called <- struct{}{}
	if gate != nil {
		select {
		case err := <-gate:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return fmt.Errorf("batch: %w", sdk.ErrStreamClosed)
	}
	f.batches = append(f.batches, obs)
	return nil
}

func (f *fakeEmitter) observations() []*pluginpb.Observation {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*pluginpb.Observation
	for _, b := range f.batches {
		out = append(out, b...)
	}
	return out
}

type rig struct {
	t    *testing.T
	d    *Driver
	emu  *modemtest.Emulator
	pair *ptypair.Pair
	link string
	em   *fakeEmitter
	logs *syncBuffer
	stop func()
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
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func openPair(t *testing.T) *ptypair.Pair {
	t.Helper()
	p, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func testOptions(logs *syncBuffer) Options {
	return Options{
		Logger:         hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: logs}),
		CommandTimeout: 2 * time.Second, SendTimeout: 2 * time.Second, RetryBackoff: 5 * time.Millisecond,
		RecoverEvery: 20 * time.Millisecond, ReopenMin: 5 * time.Millisecond, ReopenMax: 20 * time.Millisecond,
		EmitTimeout: time.Second,
	}
}

// newRig starts an emulator on a pty behind a by-id style link, and a configured driver on it; run starts
// the driver's Run.
func newRig(t *testing.T, pin string, cfg map[string]any, opts *Options) *rig {
	t.Helper()
	p := openPair(t)
	link := filepath.Join(t.TempDir(), "usb-Quectel_EC25-if02-port0")
	if err := os.Symlink(p.Path, link); err != nil {
		t.Fatal(err)
	}
	emu := modemtest.Start(p.Master, pin)
	t.Cleanup(emu.Stop)
	logs := &syncBuffer{}
	o := testOptions(logs)
	if opts != nil {
		o = *opts
		o.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: logs})
	}
	full := map[string]any{"port": link, "devices": map[string]string{tagNumber: tagDevice, unitNumber: unitDevice}, "poll_s": 0.05}
	if pin != "" {
		full["pin"] = pin
	}
	for k, v := range cfg {
		full[k] = v
	}
	raw, _ := json.Marshal(full)
	d := New(o)
	if errs := d.Configure(raw, "node-a"); len(errs) > 0 {
		t.Fatalf("configure: %v", errs)
	}
	return &rig{t: t, d: d, emu: emu, pair: p, link: link, em: newEmitter(), logs: logs}
}

func (r *rig) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.d.Run(ctx, r.em) }()
	r.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			r.t.Error("Run did not return")
		}
	}
	r.t.Cleanup(r.stop)
}

func (r *rig) waitCommands(what string, cond func([]string) bool) {
	r.t.Helper()
	if err := r.emu.WaitFor(10*time.Second, what, cond); err != nil {
		r.t.Fatal(err)
	}
}

func has(cmd string) func([]string) bool {
	return func(c []string) bool { return slices.Contains(c, cmd) }
}

// waitUntil polls cond with a deadline (for state with no event to wait on, such as Health).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func deliverPDU(t *testing.T, sender, text string, at time.Time) string {
	t.Helper()
	pdu, err := DeliverPDU(sender, at, text, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pdu
}

var scts = time.Date(2026, 11, 26, 13, 0, 5, 0, time.FixedZone("", 3600))

func TestInitSequenceWithPINAndHealth(t *testing.T) {
	r := newRig(t, "7391", nil, nil)
	r.run()
	r.waitCommands("AT+CMGL=4", has("AT+CMGL=4"))
	want := []string{"AT", "ATE0", "AT+CMEE=2", "AT+CPIN?", "AT+CPIN=7391", "AT+CMGF=0", "AT+CNMI=2,1,0,2,0", "AT+CSQ", "AT+CREG?", "AT+CMGL=4"}
	if got := r.emu.Commands()[:len(want)]; !slices.Equal(got, want) {
		t.Fatalf("init sequence %q, want %q", got, want)
	}
	waitUntil(t, "healthy", func() bool { ok, msg := r.d.Health(); return ok && strings.Contains(msg, "registered") })
	if _, msg := r.d.Health(); !strings.Contains(msg, "signal 20") || !strings.Contains(msg, "home") {
		t.Fatalf("health %q", msg)
	}
	if strings.Contains(r.logs.String(), "7391") {
		t.Fatal("the PIN appears in the log")
	}
	if !strings.Contains(r.logs.String(), "AT+CPIN=****") {
		t.Fatal("the PIN command is not logged masked")
	}
	if mSignal.Value() != 20 || mRegistered.Value() != 1 {
		t.Fatalf("gauges signal %v registered %v", mSignal.Value(), mRegistered.Value())
	}
}

func TestMissingPINIsUnhealthy(t *testing.T) {
	r := newRig(t, "", nil, nil)
	r.emu.Stop()
	// A SIM that wants a PIN when none is configured.
	r.emu = modemtest.Start(r.pair.Master, "1111")
	t.Cleanup(r.emu.Stop)
	r.run()
	waitUntil(t, "unhealthy PIN message", func() bool {
		ok, msg := r.d.Health()
		return !ok && strings.Contains(msg, "PIN") && strings.Contains(msg, "none is configured")
	})
	if slices.ContainsFunc(r.emu.Commands(), func(c string) bool { return strings.HasPrefix(c, "AT+CMG") }) {
		t.Fatalf("message commands sent to a locked SIM: %q", r.emu.Commands())
	}
}

func TestPositionSMSBecomesObservationAndIsDeletedAfterCommit(t *testing.T) {
	r := newRig(t, "", nil, nil)
	r.em.gate = make(chan error)
	r.run()
	r.waitCommands("init", has("AT+CMGL=4"))
	idx := r.emu.Deliver(deliverPDU(t, tagNumber, "lat:59.910500 long:10.758000 speed:36.00 T:26/11/26 12:00 bat:80%", scts))
	r.waitCommands("AT+CMGR", has(fmt.Sprintf("AT+CMGR=%d", idx)))
	<-r.em.called
	// Emit is in progress: the message must still be there.
	if slices.Contains(r.emu.Commands(), fmt.Sprintf("AT+CMGD=%d", idx)) || !slices.Contains(r.emu.Stored(), idx) {
		t.Fatalf("message deleted before Emit returned: %q", r.emu.Commands())
	}
	r.em.gate <- nil
	r.waitCommands("AT+CMGD", has(fmt.Sprintf("AT+CMGD=%d", idx)))
	obs := r.em.observations()
	if len(obs) != 1 {
		t.Fatalf("%d observations", len(obs))
	}
	o := obs[0]
	if o.Device != tagDevice || o.Lat != 59.9105 || o.Lon != 10.758 || !o.HasFix || o.Source != "sms" || o.AccuracyM != DefaultAccuracyM {
		t.Fatalf("observation %+v", o)
	}
	if !o.Time.AsTime().Equal(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)) || o.GetBatteryPct() != 80 || o.GetSpeedMps() != 10 {
		t.Fatalf("time %v battery %d speed %v", o.Time.AsTime(), o.GetBatteryPct(), o.GetSpeedMps())
	}
	if len(r.emu.Stored()) != 0 {
		t.Fatalf("stored %v", r.emu.Stored())
	}
}

func TestFailedEmitKeepsMessageAndRetries(t *testing.T) {
	r := newRig(t, "", nil, nil)
	r.em.fail = 1
	r.run()
	r.waitCommands("init", has("AT+CMGL=4"))
	// The link form without a time: the SCTS is the fix time.
	idx := r.emu.Deliver(deliverPDU(t, tagNumber, "http://maps.google.com/maps?q=59.9105,10.758", scts))
	r.waitCommands("AT+CMGD", has(fmt.Sprintf("AT+CMGD=%d", idx)))
	r.em.mu.Lock()
	calls := r.em.calls
	r.em.mu.Unlock()
	if calls != 2 {
		t.Fatalf("%d Emit calls, want 2 (one failed, one retried)", calls)
	}
	obs := r.em.observations()
	if len(obs) != 1 || !obs[0].Time.AsTime().Equal(scts) {
		t.Fatalf("observations %v", obs)
	}
	n := 0
	for _, c := range r.emu.Commands() {
		if c == fmt.Sprintf("AT+CMGR=%d", idx) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("message read %d times", n)
	}
}

func TestStoredMessagesAtStartAndWhatIsDropped(t *testing.T) {
	unknown0, unparsed0, decode0 := mUnknown.Value(), mUnparsed.Value(), mDecodeErrors.Value(ReasonTimestamp)
	r := newRig(t, "", nil, nil)
	good := r.emu.Store(deliverPDU(t, "004791234567", "lat:59.9 lon:10.7", scts)) // national 00 form of the number
	stranger := r.emu.Store(deliverPDU(t, "+4740000000", "lat:59.9 lon:10.7", scts))
	chatter := r.emu.Store(deliverPDU(t, tagNumber, "Low battery!", scts))
	broken := r.emu.Store("00040B917228214365F70000AA30805120618005D4F29C2E03")
	r.run()
	r.waitCommands("every stored message deleted", func(c []string) bool {
		for _, i := range []int{good, stranger, chatter, broken} {
			if !slices.Contains(c, fmt.Sprintf("AT+CMGD=%d", i)) {
				return false
			}
		}
		return true
	})
	if obs := r.em.observations(); len(obs) != 1 || obs[0].Device != tagDevice {
		t.Fatalf("observations %v", obs)
	}
	if mUnknown.Value()-unknown0 != 1 || mUnparsed.Value()-unparsed0 != 1 || mDecodeErrors.Value(ReasonTimestamp)-decode0 != 1 {
		t.Fatalf("unknown +%v unparsed +%v decode +%v", mUnknown.Value()-unknown0, mUnparsed.Value()-unparsed0, mDecodeErrors.Value(ReasonTimestamp)-decode0)
	}
}

func concatPDU(t *testing.T, ref byte, total, seq int, text string) string {
	t.Helper()
	pdu, err := DeliverPDU(tagNumber, scts, text, []byte{0x00, 0x03, ref, byte(total), byte(seq)})
	if err != nil {
		t.Fatal(err)
	}
	return pdu
}

func TestConcatenatedPartsInAnyOrder(t *testing.T) {
	r := newRig(t, "", nil, nil)
	r.run()
	r.waitCommands("init", has("AT+CMGL=4"))
	i2 := r.emu.Deliver(concatPDU(t, 0x42, 2, 2, "long:10.758000 bat:55%"))
	r.waitCommands("part 2 read", has(fmt.Sprintf("AT+CMGR=%d", i2)))
	if len(r.em.observations()) != 0 {
		t.Fatal("observation from half a message")
	}
	i1 := r.emu.Deliver(concatPDU(t, 0x42, 2, 1, "lat:59.910500 "))
	r.waitCommands("both parts deleted", func(c []string) bool {
		return slices.Contains(c, fmt.Sprintf("AT+CMGD=%d", i1)) && slices.Contains(c, fmt.Sprintf("AT+CMGD=%d", i2))
	})
	obs := r.em.observations()
	if len(obs) != 1 || obs[0].Lat != 59.9105 || obs[0].Lon != 10.758 || obs[0].GetBatteryPct() != 55 {
		t.Fatalf("observations %v", obs)
	}
}

func TestIncompleteConcatenationTimesOut(t *testing.T) {
	o := testOptions(nil)
	o.ConcatTimeout = 100 * time.Millisecond
	dropped0 := mConcatDrop.Value()
	r := newRig(t, "", nil, &o)
	r.run()
	r.waitCommands("init", has("AT+CMGL=4"))
	i := r.emu.Deliver(concatPDU(t, 0x43, 3, 1, "lat:59.910500 "))
	r.waitCommands("lone part deleted", has(fmt.Sprintf("AT+CMGD=%d", i)))
	if mConcatDrop.Value()-dropped0 != 1 || len(r.em.observations()) != 0 {
		t.Fatalf("dropped +%v observations %d", mConcatDrop.Value()-dropped0, len(r.em.observations()))
	}
}

func TestAssemblerBound(t *testing.T) {
	a := newAssembler(2, time.Hour)
	now := time.Unix(0, 0)
	mk := func(ref uint16, seq int, text string) *Message {
		return &Message{Text: text, Time: now, Concat: &Concat{Ref: ref, Total: 2, Seq: seq}}
	}
	for i := 0; i < 2; i++ {
		if w, d := a.add("+47", mk(uint16(i), 1, "x"), i, now.Add(time.Duration(i))); w != nil || d != nil {
			t.Fatal("unexpected result")
		}
	}
	_, d := a.add("+47", mk(9, 1, "x"), 9, now.Add(time.Hour))
	if d == nil || d.indices[0] != 0 {
		t.Fatalf("full buffer must drop the oldest, dropped %+v", d)
	}
	w, _ := a.add("+47", mk(9, 2, "y"), 10, now)
	if w == nil || w.text != "xy" || !slices.Equal(w.indices, []int{9, 10}) {
		t.Fatalf("whole %+v", w)
	}
}

func TestIndicationInsideAResponseIsRouted(t *testing.T) {
	r := newRig(t, "", nil, nil)
	r.run()
	r.waitCommands("init", has("AT+CMGL=4"))
	idx := r.emu.Store(deliverPDU(t, tagNumber, "lat:59.91 lon:10.75", scts))
	// The indication arrives in the middle of the next answer (a poll), between +CSQ and OK.
	r.emu.InjectDuringNext(fmt.Sprintf("+CMTI: \"SM\",%d", idx))
	r.emu.Unsolicited("RING")
	r.waitCommands("message deleted", has(fmt.Sprintf("AT+CMGD=%d", idx)))
	if obs := r.em.observations(); len(obs) != 1 || obs[0].Lat != 59.91 {
		t.Fatalf("observations %v", obs)
	}
}

func TestSignalLossAndRegistrationAreFaults(t *testing.T) {
	r := newRig(t, "", map[string]any{"signal_min": 8}, nil)
	r.run()
	waitUntil(t, "healthy", func() bool { ok, msg := r.d.Health(); return ok && strings.Contains(msg, "registered") })
	r.emu.SetSignal(3)
	waitUntil(t, "weak signal fault", func() bool {
		ok, msg := r.d.Health()
		return !ok && strings.Contains(msg, "signal too weak: AT+CSQ 3, signal_min 8")
	})
	if mSignal.Value() != 3 {
		t.Fatalf("signal gauge %v", mSignal.Value())
	}
	r.emu.SetSignal(99) // unknown counts as lost
	waitUntil(t, "unknown signal fault", func() bool { ok, msg := r.d.Health(); return !ok && strings.Contains(msg, "CSQ 99") })
	r.emu.SetSignal(21)
	waitUntil(t, "healthy again", func() bool { ok, msg := r.d.Health(); return ok && strings.Contains(msg, "registered") })
	r.emu.SetRegistration(2)
	waitUntil(t, "registration fault", func() bool {
		ok, msg := r.d.Health()
		return !ok && strings.Contains(msg, "not registered") && strings.Contains(msg, "searching")
	})
	if mRegistered.Value() != 0 {
		t.Fatalf("registered gauge %v", mRegistered.Value())
	}
	r.emu.SetRegistration(5)
	waitUntil(t, "roaming is fine", func() bool { ok, msg := r.d.Health(); return ok && strings.Contains(msg, "roaming") })
}

func sentTexts(t *testing.T, emu *modemtest.Emulator) []*Message {
	t.Helper()
	var out []*Message
	for _, p := range emu.Sent() {
		m, err := DecodePDU(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func countPrefix(cmds []string, prefix string) int {
	n := 0
	for _, c := range cmds {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func TestSendRetriesOnceAfterCMSErrorAndMatchesStatusReport(t *testing.T) {
	r := newRig(t, "", nil, nil)
	r.run()
	waitUntil(t, "ready", func() bool { ok, msg := r.d.Health(); return ok && strings.Contains(msg, "registered") })
	sent0, delivered0 := mSent.Value(), mReports.Value("delivered")
	r.emu.FailSends(1)
	err := r.d.Command(context.Background(), &pluginpb.DeviceCommand{Id: "c1", Device: tagDevice, Kind: "report_interval", Args: map[string]string{"interval_s": "30"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(r.emu.Commands(), "AT+CMGS="); n != 2 {
		t.Fatalf("%d AT+CMGS, want 2 (one retry)", n)
	}
	msgs := sentTexts(t, r.emu)
	if len(msgs) != 1 || msgs[0].Text != "fix030s***n123456" || msgs[0].Address != tagNumber || !msgs[0].SRR || msgs[0].Encoding != GSM7 {
		t.Fatalf("sent %+v", msgs)
	}
	if mSent.Value()-sent0 != 1 {
		t.Fatalf("sent +%v", mSent.Value()-sent0)
	}
	// The emulator gave message reference 1 to the accepted message.
	idx := r.emu.StatusReport(StatusReportPDU(1, tagNumber, scts, 0x00))
	r.waitCommands("report deleted", has(fmt.Sprintf("AT+CMGD=%d", idx)))
	waitUntil(t, "delivered counted", func() bool { return mReports.Value("delivered")-delivered0 == 1 })
}

func TestWarningInUCS2AndGivingUp(t *testing.T) {
	r := newRig(t, "", map[string]any{"send_retries": 2}, nil)
	r.run()
	waitUntil(t, "ready", func() bool { ok, msg := r.d.Health(); return ok && strings.Contains(msg, "registered") })
	if err := r.d.Command(context.Background(), &pluginpb.DeviceCommand{Device: unitDevice, Kind: "warn", Args: map[string]string{"message": "Gå inn – ring 112 😀"}}); err != nil {
		t.Fatal(err)
	}
	msgs := sentTexts(t, r.emu)
	if len(msgs) != 1 || msgs[0].Text != "Gå inn – ring 112 😀" || msgs[0].Encoding != UCS2 || msgs[0].Address != unitNumber {
		t.Fatalf("sent %+v", msgs)
	}
	failed0 := mSendFailed.Value()
	r.emu.FailSends(10)
	err := r.d.Command(context.Background(), &pluginpb.DeviceCommand{Device: unitDevice, Kind: "warn"})
	if err == nil || !strings.Contains(err.Error(), "+CMS ERROR: 500") {
		t.Fatalf("err %v", err)
	}
	if n := countPrefix(r.emu.Commands(), "AT+CMGS="); n != 1+3 {
		t.Fatalf("%d AT+CMGS, want 1 + 3 (first try and 2 retries)", n)
	}
	if mSendFailed.Value()-failed0 != 1 {
		t.Fatal("failure not counted")
	}
	for _, bad := range []*pluginpb.DeviceCommand{
		{Device: "nobody", Kind: "warn"},
		{Device: tagDevice, Kind: "explode"},
		{Device: tagDevice, Kind: "report_interval"},
	} {
		if err := r.d.Command(context.Background(), bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestUnplugReopensAndReinitialises(t *testing.T) {
	r := newRig(t, "", nil, nil)
	r.run()
	waitUntil(t, "ready", func() bool { ok, msg := r.d.Health(); return ok && strings.Contains(msg, "registered") })
	r.emu.Stop()
	r.pair.Close() // unplug
	waitUntil(t, "not ready", func() bool { ok, msg := r.d.Health(); return !ok && strings.Contains(msg, "not ready") })

	p2 := openPair(t) // replug under another pts
	emu2 := modemtest.Start(p2.Master, "")
	t.Cleanup(emu2.Stop)
	tmp := r.link + ".new"
	if err := os.Symlink(p2.Path, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, r.link); err != nil {
		t.Fatal(err)
	}
	if err := emu2.WaitFor(10*time.Second, "init on the new port", has("AT+CMGL=4")); err != nil {
		t.Fatal(err)
	}
	want := []string{"AT", "ATE0", "AT+CMEE=2", "AT+CPIN?", "AT+CMGF=0", "AT+CNMI=2,1,0,2,0"}
	if got := emu2.Commands(); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("after replug %q", got)
	}
	waitUntil(t, "healthy again", func() bool { ok, msg := r.d.Health(); return ok && strings.Contains(msg, "registered") })
	idx := emu2.Deliver(deliverPDU(t, tagNumber, "lat:59.5 lon:10.5", scts))
	if err := emu2.WaitFor(10*time.Second, "delete", has(fmt.Sprintf("AT+CMGD=%d", idx))); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	cases := []struct{ cfg, field, text string }{
		{`{}`, "port", "is required"},
		{`{"port": "/dev/null"}`, "devices", "is required"},
		{`{"port": "tty0", "devices": {"+4791234567": "a"}}`, "port", "absolute"},
		{`{"port": "/dev/null", "devices": {"abc": "a"}}`, "devices.abc", "not a phone number"},
		{`{"port": "/dev/null", "devices": [{"number": "+4791234567", "device": ""}]}`, "devices[0]", "device id"},
		{`{"port": "/dev/null", "devices": {}}`, "devices", "at least one"},
		{`{"port": "/dev/null", "devices": {"+4791234567": "a"}, "pin": "12"}`, "pin", "4 to 8 digits"},
		{`{"port": "/dev/null", "devices": {"+4791234567": "a"}, "baud": 1234}`, "baud", "line speed"},
		{`{"port": "/dev/null", "devices": {"+4791234567": "a"}, "signal_min": 40}`, "signal_min", "0 to 31"},
		{`{"port": "/dev/null", "devices": {"+4791234567": "a"}, "send_retries": -1}`, "send_retries", "0 to 10"},
		{`{"port": "/dev/null", "devices": {"+4791234567": "a"}, "smsc": "x"}`, "smsc", "phone number"},
		{`{"port": "/dev/null", "devices": {"+4791234567": "a"}, "commands": {"dance": "x"}}`, "commands.dance", "unknown command"},
		{`{"port": "/dev/null", "devices": {"+4791234567": "a"}, "colour": 1}`, "colour", "unknown attribute"},
		{`{"port": "/dev/null", "devices": {"+4791234567": "a"}}`, "port", "/dev/null"},
	}
	for _, c := range cases {
		d := New(Options{})
		errs := d.Configure([]byte(c.cfg), "n")
		d.Close()
		found := false
		for _, e := range errs {
			if e.Field == c.field && strings.Contains(e.Message, c.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: errors %v, want one on %q with %q", c.cfg, errs, c.field, c.text)
		}
	}
	errs := New(Options{}).Configure([]byte(`{"port": "/dev/null", "devices": {"+4791234567": "a"}, "pin": "12345678901"}`), "n")
	for _, e := range errs {
		if strings.Contains(e.Message, "12345678901") {
			t.Fatalf("the PIN is repeated in %v", e)
		}
	}
	cfg, errs := ParseConfig([]byte(`{"port": "/dev/x", "devices": [{"number": "0047 912 34 567", "device": "a"}]}`))
	if len(errs) > 0 || cfg.Devices["+4791234567"] != "a" || cfg.Baud != 115200 || cfg.SignalMin != 5 || cfg.SendRetries != 3 || cfg.PollS != 30 {
		t.Fatalf("%+v %v", cfg, errs)
	}
}

func TestRenderCommand(t *testing.T) {
	got, err := renderCommand("fix{interval_s:3}s***n{password}", map[string]string{"interval_s": "5"}, "000000")
	if err != nil || got != "fix005s***n000000" {
		t.Fatalf("%q %v", got, err)
	}
	if got, _ := renderCommand("{message}", nil, ""); got != DefaultWarnMessage {
		t.Fatalf("%q", got)
	}
	if _, err := renderCommand("x{interval_s}", nil, ""); err == nil || !strings.Contains(err.Error(), "interval_s") {
		t.Fatalf("err %v", err)
	}
}

func TestDirectlyRoutedMessage(t *testing.T) {
	r := newRig(t, "", nil, nil)
	r.run()
	r.waitCommands("init", has("AT+CMGL=4"))
	// A modem that ignores the +CNMI storage mode sends the PDU itself (+CMT: <alpha>,<length>).
	pdu := deliverPDU(t, tagNumber, "lat:59.77 lon:10.77", scts)
	r.emu.Unsolicited(fmt.Sprintf("+CMT: ,%d\r\n%s", len(pdu)/2-1, pdu))
	waitUntil(t, "observation", func() bool { return len(r.em.observations()) == 1 })
	if o := r.em.observations()[0]; o.Lat != 59.77 || o.Device != tagDevice {
		t.Fatalf("%+v", o)
	}
	if slices.ContainsFunc(r.emu.Commands(), func(c string) bool { return strings.HasPrefix(c, "AT+CMGD") }) {
		t.Fatal("deleted a message that was never stored")
	}
}

func TestDirectStatusReportsWhenStoredOnesAreRefused(t *testing.T) {
	r := newRig(t, "", nil, nil)
	r.emu.RefuseStoredReports()
	r.run()
	r.waitCommands("init", has("AT+CMGL=4"))
	if !slices.Contains(r.emu.Commands(), "AT+CNMI=2,1,0,1,0") {
		t.Fatalf("no fallback to direct status reports: %q", r.emu.Commands())
	}
	waitUntil(t, "ready", func() bool { ok, msg := r.d.Health(); return ok && strings.Contains(msg, "registered") })
	if err := r.d.Command(context.Background(), &pluginpb.DeviceCommand{Device: tagDevice, Kind: "vibrate"}); err != nil {
		t.Fatal(err)
	}
	failed0 := mReports.Value("failed")
	pdu := StatusReportPDU(1, tagNumber, scts, 0x41)
	r.emu.Unsolicited(fmt.Sprintf("+CDS: %d\r\n%s", len(pdu)/2-1, pdu))
	waitUntil(t, "failed report counted", func() bool { return mReports.Value("failed")-failed0 == 1 })
}
