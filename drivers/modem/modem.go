// Package modem is the GSM modem driver: it speaks 3GPP TS 27.005/27.007 AT commands to a modem on a
// serial port, receives position texts from tags in PDU mode (+CMTI -> AT+CMGR -> decode -> emit ->
// AT+CMGD), sends device commands and warnings as SMS-SUBMIT with status reports, and watches signal
// (AT+CSQ) and network registration (AT+CREG?). The PDU codec, the position text parser and the AT atConn
// are plain code tested on their own; Driver wires them to the SDK.
package modem

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport"
)

// Version is the driver's version, reported in Info.
const Version = "0.1.0"

// Metrics, exported by the host with a plugin label.
var (
	mReceived     = sdk.NewCounter("modem_sms_received_total", "SMS-DELIVER messages read from the modem")
	mSent         = sdk.NewCounter("modem_sms_sent_total", "messages (parts) accepted by the network (+CMGS)")
	mSendFailed   = sdk.NewCounter("modem_sms_send_failed_total", "messages given up after every retry")
	mDecodeErrors = sdk.NewCounter("modem_pdu_decode_errors_total", "PDUs that could not be decoded, by reason", "reason")
	mUnparsed     = sdk.NewCounter("modem_sms_unparsed_total", "texts from known devices that are not position reports")
	mUnknown      = sdk.NewCounter("modem_sms_unknown_sender_total", "messages from numbers not in devices")
	mConcatDrop   = sdk.NewCounter("modem_sms_concat_dropped_total", "incomplete concatenated messages dropped (timeout or buffer full)")
	mReports      = sdk.NewCounter("modem_sms_status_reports_total", "status reports of sent messages, by result", "result")
	mObservations = sdk.NewCounter("modem_observations_total", "observations committed by the node")
	mSignal       = sdk.NewGauge("modem_signal_csq", "last AT+CSQ signal (0-31, 99 unknown)")
	mRegistered   = sdk.NewGauge("modem_registered", "1 while registered on the network (home or roaming)")
)

// Options tune a Driver; zero values give the defaults in brackets.
type Options struct {
	Logger         hclog.Logger
	Now            func() time.Time
	CommandTimeout time.Duration // bound of one AT command [5 s]
	SendTimeout    time.Duration // bound of +CMGS after the PDU [60 s]
	RetryBackoff   time.Duration // wait before the first send retry, doubling [1 s]
	RecoverEvery   time.Duration // how often a lost or failed modem is tried again [1 s]
	ReopenMin      time.Duration // serial reopen backoff [100 ms, 5 s]
	ReopenMax      time.Duration
	ConcatTimeout  time.Duration // how long parts of a concatenated message wait for the rest [10 min]
	ConcatMax      int           // concatenated messages being assembled at once [32]
	EmitTimeout    time.Duration // bound of one Emit before it is retried later [10 s]
}

// Driver implements sdk.Driver.
type Driver struct {
	opts Options
	log  hclog.Logger

	mu       sync.Mutex
	cfg      Config
	byNumber map[string]string // number -> device
	byDevice map[string]string // device -> number
	port     *serialport.Reopening
	conn     *atConn
	ready    bool   // initialised on the current port generation
	initGen  uint64 // port generation the modem was initialised on
	notReady string // why the modem is not ready
	tried    bool   // an initialisation was attempted
	csq      int
	creg     int
	polled   bool
	sent     map[uint8]sentMessage // by message reference, awaiting a status report
	concat   *assembler
	pending  []pendingObs // observations not yet committed, with the SIM indices to delete after
	held     map[int]bool // SIM indices held by pending or concat
	ref      uint8        // concatenation reference of the next multi-part message
}

type sentMessage struct {
	device, command string
	at              time.Time
}

type pendingObs struct {
	obs     *pluginpb.Observation
	indices []int
}

// New returns an unconfigured driver.
func New(opts Options) *Driver {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.CommandTimeout, 5*time.Second)
	def(&opts.SendTimeout, 60*time.Second)
	def(&opts.RetryBackoff, time.Second)
	def(&opts.RecoverEvery, time.Second)
	def(&opts.ConcatTimeout, 10*time.Minute)
	def(&opts.EmitTimeout, 10*time.Second)
	if opts.ConcatMax <= 0 {
		opts.ConcatMax = 32
	}
	return &Driver{opts: opts, log: opts.Logger, notReady: "not initialised", csq: -1, creg: -1,
		sent: map[uint8]sentMessage{}, held: map[int]bool{}}
}

// Info names the driver.
func (d *Driver) Info() sdk.Info { return sdk.Info{Name: "modem", Version: Version} }

// ConfigSchema describes the config block.
func (d *Driver) ConfigSchema() []*pluginpb.ConfigField { return Schema() }

// Configure checks the config and opens the port; a port that cannot be opened is an error on "port".
func (d *Driver) Configure(raw []byte, _ string) []*pluginpb.ConfigError {
	cfg, errs := ParseConfig(raw)
	if len(errs) > 0 {
		return errs
	}
	port, err := serialport.OpenReopening(
		serialport.Config{Name: cfg.Port, Baud: cfg.Baud, ReadTimeout: 200 * time.Millisecond},
		serialport.ReopenOptions{BackoffMin: d.opts.ReopenMin, BackoffMax: d.opts.ReopenMax},
	)
	if err != nil {
		return []*pluginpb.ConfigError{sdk.ConfigErr("port", "%v", err)}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.port != nil {
		_ = d.port.Close()
	}
	d.cfg, d.port = cfg, port
	d.byNumber, d.byDevice = cfg.Devices, map[string]string{}
	for n, dev := range cfg.Devices {
		d.byDevice[dev] = n
	}
	d.conn = newATConn(port, d.logCommand)
	d.concat = newAssembler(d.opts.ConcatMax, d.opts.ConcatTimeout)
	d.log.Info("modem port open", "port", cfg.Port, "device", port.Device(), "devices", len(cfg.Devices))
	return nil
}

func (d *Driver) logCommand(cmd string, lines []string, err error) {
	if err != nil {
		d.log.Warn("AT command failed", "command", cmd, "lines", lines, "error", err)
		return
	}
	d.log.Debug("AT command", "command", cmd, "lines", lines)
}

// Close closes the port.
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.port != nil {
		_ = d.port.Close()
	}
}

// Health is unhealthy while the modem is not usable, the signal is below signal_min or the modem is not
// registered on the network.
func (d *Driver) Health() (bool, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.port == nil {
		return false, "not configured"
	}
	if !d.tried {
		// Between Configure and the first initialisation (Run starts when the node opens the stream): the
		// port is open, nothing has failed yet.
		return true, fmt.Sprintf("modem on %s: port open, initialising", d.cfg.Port)
	}
	if !d.ready {
		return false, "modem not ready: " + d.notReady
	}
	if !d.polled {
		return true, fmt.Sprintf("modem on %s initialised; signal not polled yet", d.cfg.Port)
	}
	if d.csq == 99 || d.csq < d.cfg.SignalMin {
		return false, fmt.Sprintf("GSM signal too weak: AT+CSQ %d, signal_min %d", d.csq, d.cfg.SignalMin)
	}
	if d.creg != 1 && d.creg != 5 {
		return false, fmt.Sprintf("not registered on the GSM network: +CREG stat %d (%s)", d.creg, cregText(d.creg))
	}
	return true, fmt.Sprintf("modem on %s: signal %d, registered (%s), %d devices", d.cfg.Port, d.csq, cregText(d.creg), len(d.cfg.Devices))
}

func cregText(s int) string {
	switch s {
	case 0:
		return "not searching"
	case 1:
		return "home"
	case 2:
		return "searching"
	case 3:
		return "denied"
	case 5:
		return "roaming"
	}
	return "unknown"
}

// Devices lists the configured devices.
func (d *Driver) Devices() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.byDevice))
	for dev := range d.byDevice {
		out = append(out, dev)
	}
	sort.Strings(out)
	return out
}

func (d *Driver) setNotReady(why string) {
	d.mu.Lock()
	d.tried = true
	if d.ready || d.notReady != why {
		d.log.Warn("modem not ready", "reason", why)
	}
	d.ready, d.notReady = false, why
	d.mu.Unlock()
}

// exec runs a command when the modem is ready.
func (d *Driver) exec(ctx context.Context, cmd, expect string) ([]string, error) {
	return d.conn.exec(ctx, cmd, expect, "", d.opts.CommandTimeout)
}

// initialise runs the init sequence on the current port.
func (d *Driver) initialise(ctx context.Context) error {
	d.mu.Lock()
	pin := d.cfg.PIN
	d.mu.Unlock()
	var err error
	for i := 0; i < 3; i++ { // the first AT after power-up or autobauding may be lost
		if _, err = d.exec(ctx, "AT", ""); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("modem does not answer AT: %w", err)
	}
	for _, c := range []string{"ATE0", "AT+CMEE=2"} {
		if _, err := d.exec(ctx, c, ""); err != nil {
			return err
		}
	}
	lines, err := d.exec(ctx, "AT+CPIN?", "+CPIN:")
	if err != nil {
		return err
	}
	state := ""
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "+CPIN:"); ok {
			state = strings.TrimSpace(v)
		}
	}
	switch state {
	case "READY":
	case "SIM PIN":
		if pin == "" {
			return errors.New("the SIM asks for a PIN and none is configured (pin)")
		}
		if _, err := d.conn.exec(ctx, "AT+CPIN="+pin, "", "AT+CPIN=****", d.opts.CommandTimeout); err != nil {
			var ae *ATError
			if errors.As(err, &ae) {
				return fmt.Errorf("the SIM refused the PIN: %s", ae.Result) // the answer, never the PIN
			}
			return errors.New("AT+CPIN=****: no answer")
		}
	default:
		return fmt.Errorf("SIM not ready: +CPIN: %s", state)
	}
	if _, err := d.exec(ctx, "AT+CMGF=0", ""); err != nil {
		return err
	}
	// Stored status reports (+CDSI) where the modem supports them, else routed directly (+CDS).
	if _, err := d.exec(ctx, "AT+CNMI=2,1,0,2,0", ""); err != nil {
		var ae *ATError
		if !errors.As(err, &ae) {
			return err
		}
		if _, err := d.exec(ctx, "AT+CNMI=2,1,0,1,0", ""); err != nil {
			return err
		}
	}
	return nil
}

// maintain opens and initialises the modem when needed. It reports whether the modem is ready.
func (d *Driver) maintain(ctx context.Context, emit sdk.Emitter) bool {
	d.mu.Lock()
	port, ready, initGen := d.port, d.ready, d.initGen
	d.mu.Unlock()
	if err := port.Ensure(); err != nil {
		d.setNotReady(err.Error())
		return false
	}
	_, gen, _ := port.State()
	if ready && gen == initGen {
		return true
	}
	if err := d.initialise(ctx); err != nil {
		d.setNotReady(err.Error())
		return false
	}
	d.mu.Lock()
	d.ready, d.initGen, d.notReady, d.tried = true, gen, "", true
	d.mu.Unlock()
	d.log.Info("modem initialised", "port", port.Name(), "device", port.Device(), "generation", gen)
	d.poll(ctx)
	d.scan(ctx, emit)
	return true
}

// poll reads signal and registration.
func (d *Driver) poll(ctx context.Context) {
	csq, creg := -1, -1
	if lines, err := d.exec(ctx, "AT+CSQ", "+CSQ:"); err == nil {
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "+CSQ:"); ok {
				f := strings.Split(strings.TrimSpace(v), ",")
				if n, err := strconv.Atoi(strings.TrimSpace(f[0])); err == nil {
					csq = n
				}
			}
		}
	}
	if lines, err := d.exec(ctx, "AT+CREG?", "+CREG:"); err == nil {
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "+CREG:"); ok {
				f := strings.Split(strings.TrimSpace(v), ",")
				if len(f) >= 2 {
					if n, err := strconv.Atoi(strings.TrimSpace(f[1])); err == nil {
						creg = n
					}
				}
			}
		}
	}
	if csq < 0 || creg < 0 {
		return // the command failed; a lost port is noticed by the reader
	}
	mSignal.Set(float64(csq))
	reg := 0.0
	if creg == 1 || creg == 5 {
		reg = 1
	}
	mRegistered.Set(reg)
	d.mu.Lock()
	changed := d.csq != csq || d.creg != creg
	d.csq, d.creg, d.polled = csq, creg, true
	d.mu.Unlock()
	if changed {
		d.log.Info("signal and registration", "csq", csq, "creg", creg)
	}
}

// Run initialises the modem, reads the messages stored while the driver was away, and then handles
// indications, polls signal and registration, and retries what is pending, until ctx ends.
func (d *Driver) Run(ctx context.Context, emit sdk.Emitter) error {
	d.mu.Lock()
	conn, port, pollEvery := d.conn, d.port, time.Duration(d.cfg.PollS*float64(time.Second))
	d.mu.Unlock()
	if conn == nil {
		return errors.New("not configured")
	}
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() { defer close(readerDone); conn.readLoop(stop) }()
	defer func() { close(stop); <-readerDone; _ = port.Close() }()

	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	recoverT := time.NewTicker(d.opts.RecoverEvery)
	defer recoverT.Stop()
	ready := d.maintain(ctx, emit)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-conn.lost:
			d.setNotReady("serial port lost: " + err.Error())
			ready = false
		case <-recoverT.C:
			if !ready {
				ready = d.maintain(ctx, emit)
			}
			if ready {
				d.retry(ctx, emit)
			}
		case <-poll.C:
			if ready = d.maintain(ctx, emit); ready {
				d.poll(ctx)
				d.retry(ctx, emit)
			}
		case u := <-conn.urcs:
			if ready {
				d.handleURC(ctx, emit, u)
			}
		}
		if conn.dropped.Swap(0) > 0 && ready { // indications were lost: look at everything stored
			d.scan(ctx, emit)
		}
	}
}

// retry emits pending observations again and drops expired concatenation parts.
func (d *Driver) retry(ctx context.Context, emit sdk.Emitter) {
	d.flush(ctx, emit)
	d.mu.Lock()
	expired := d.concat.expire(d.opts.Now())
	d.mu.Unlock()
	for _, p := range expired {
		mConcatDrop.Inc()
		d.log.Warn("incomplete concatenated message dropped", "sender", p.sender, "parts", len(p.parts), "of", p.total)
		d.deleteIndices(ctx, p.indices)
	}
}

func (d *Driver) handleURC(ctx context.Context, emit sdk.Emitter, u URC) {
	switch {
	case strings.HasPrefix(u.Line, "+CMTI:"), strings.HasPrefix(u.Line, "+CDSI:"):
		// +CMTI: "SM",3
		f := strings.Split(u.Line, ",")
		idx, err := strconv.Atoi(strings.TrimSpace(f[len(f)-1]))
		if err != nil || len(f) < 2 {
			d.log.Warn("bad indication", "line", u.Line)
			return
		}
		d.read(ctx, emit, idx)
	case strings.HasPrefix(u.Line, "+CMT:"), strings.HasPrefix(u.Line, "+CDS:"):
		// Routed directly (the modem ignored the +CNMI mode): nothing stored to delete.
		d.handlePDU(ctx, emit, -1, u.PDU)
	default:
		d.log.Debug("unsolicited result", "line", u.Line)
	}
}

// read reads and handles one stored message.
func (d *Driver) read(ctx context.Context, emit sdk.Emitter, idx int) {
	d.mu.Lock()
	held := d.held[idx]
	d.mu.Unlock()
	if held {
		return
	}
	lines, err := d.exec(ctx, fmt.Sprintf("AT+CMGR=%d", idx), "+CMGR:")
	if err != nil {
		return
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "+CMGR:") && i+1 < len(lines) {
			d.handlePDU(ctx, emit, idx, lines[i+1])
			return
		}
	}
}

// scan lists every stored message (AT+CMGL=4) and handles those not yet held.
func (d *Driver) scan(ctx context.Context, emit sdk.Emitter) {
	lines, err := d.exec(ctx, "AT+CMGL=4", "+CMGL:")
	if err != nil {
		return
	}
	for i := 0; i < len(lines); i++ {
		v, ok := strings.CutPrefix(lines[i], "+CMGL:")
		if !ok || i+1 >= len(lines) {
			continue
		}
		idx, err := strconv.Atoi(strings.TrimSpace(strings.Split(v, ",")[0]))
		i++
		if err != nil {
			continue
		}
		d.mu.Lock()
		held := d.held[idx]
		d.mu.Unlock()
		if !held {
			d.handlePDU(ctx, emit, idx, lines[i])
		}
	}
}

func (d *Driver) deleteIndices(ctx context.Context, indices []int) {
	for _, idx := range indices {
		if idx < 0 {
			continue
		}
		_, _ = d.exec(ctx, fmt.Sprintf("AT+CMGD=%d", idx), "")
		d.mu.Lock()
		delete(d.held, idx)
		d.mu.Unlock()
	}
}

// handlePDU decodes a stored message (idx -1: not stored) and acts on it.
func (d *Driver) handlePDU(ctx context.Context, emit sdk.Emitter, idx int, pdu string) {
	m, err := DecodePDU(pdu)
	if err != nil {
		var de *DecodeError
		reason := "other"
		if errors.As(err, &de) {
			reason = de.Reason
		}
		mDecodeErrors.Inc(reason)
		d.log.Warn("undecodable message dropped", "index", idx, "error", err)
		d.deleteIndices(ctx, []int{idx})
		return
	}
	switch m.Type {
	case StatusReport:
		d.statusReport(m)
		d.deleteIndices(ctx, []int{idx})
		return
	case Submit:
		return // a message in the SIM's outbox: not ours to handle or delete
	}
	mReceived.Inc()
	number := NormalizeNumber(m.Address)
	d.mu.Lock()
	dev, known := d.byNumber[number]
	d.mu.Unlock()
	if !known {
		mUnknown.Inc()
		d.log.Warn("message from an unknown number dropped", "sender", number)
		d.deleteIndices(ctx, []int{idx})
		return
	}
	text, indices, scts := m.Text, []int{idx}, m.Time
	if m.Concat != nil && m.Concat.Total > 1 {
		d.mu.Lock()
		whole, dropped := d.concat.add(number, m, idx, d.opts.Now())
		if idx >= 0 {
			d.held[idx] = true
		}
		d.mu.Unlock()
		if dropped != nil {
			mConcatDrop.Inc()
			d.log.Warn("concatenation buffer full: oldest incomplete message dropped", "sender", dropped.sender)
			d.deleteIndices(ctx, dropped.indices)
		}
		if whole == nil {
			return
		}
		text, indices, scts = whole.text, whole.indices, whole.first
	}
	pos, err := ParsePositionText(text)
	if err != nil {
		mUnparsed.Inc()
		d.log.Info("text is not a position report; dropped", "device", dev, "text", text)
		d.deleteIndices(ctx, indices)
		return
	}
	at := pos.Time
	if at.IsZero() {
		at = scts
	}
	d.mu.Lock()
	acc := d.cfg.AccuracyM
	d.mu.Unlock()
	o := &pluginpb.Observation{Device: dev, Time: sdk.Timestamp(at), HasFix: true, Lat: pos.Lat, Lon: pos.Lon,
		AccuracyM: acc, Source: "sms"}
	if pos.SpeedKmh != nil {
		v := math.Round(*pos.SpeedKmh/3.6*1000) / 1000
		o.SpeedMps = &v
	}
	if pos.BatteryPct != nil {
		b := int32(*pos.BatteryPct)
		o.BatteryPct = &b
	}
	d.mu.Lock()
	d.pending = append(d.pending, pendingObs{obs: o, indices: indices})
	for _, i := range indices {
		if i >= 0 {
			d.held[i] = true
		}
	}
	d.mu.Unlock()
	d.flush(ctx, emit)
}

// flush emits every pending observation in one batch and deletes their messages once committed. A batch
// the node rejected is dropped (its messages too: sending it again would be rejected again); any other
// failure keeps them for the next retry.
func (d *Driver) flush(ctx context.Context, emit sdk.Emitter) {
	d.mu.Lock()
	batch := d.pending
	d.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	obs := make([]*pluginpb.Observation, len(batch))
	for i, p := range batch {
		obs[i] = p.obs
	}
	ectx, cancel := context.WithTimeout(ctx, d.opts.EmitTimeout)
	err := emit.Emit(ectx, obs)
	cancel()
	var rej *sdk.RejectedError
	if err != nil && !errors.As(err, &rej) {
		d.log.Warn("observations not committed; kept for retry", "count", len(obs), "error", err)
		return
	}
	if rej != nil {
		d.log.Error("observations rejected by the node; dropped", "count", len(obs), "reason", rej.Reason)
	} else {
		mObservations.Add(float64(len(obs)))
	}
	d.mu.Lock()
	d.pending = d.pending[len(batch):]
	d.mu.Unlock()
	for _, p := range batch {
		d.deleteIndices(ctx, p.indices)
	}
}

func (d *Driver) statusReport(m *Message) {
	d.mu.Lock()
	s, ok := d.sent[m.Reference]
	final := !m.Pending()
	if ok && final {
		delete(d.sent, m.Reference)
	}
	d.mu.Unlock()
	result := "failed"
	switch {
	case m.Delivered():
		result = "delivered"
	case m.Pending():
		result = "pending"
	}
	if !ok {
		mReports.Inc("unmatched")
		d.log.Info("status report for a message not sent by this driver", "reference", m.Reference, "status", m.Status)
		return
	}
	mReports.Inc(result)
	d.log.Info("status report", "reference", m.Reference, "device", s.device, "command", s.command, "result", result, "status", fmt.Sprintf("%02X", m.Status))
}

// Command sends the text for cmd.Kind to the device's number. It returns once the network accepted every
// part (+CMGS), after up to send_retries retries of a part answered with +CMS ERROR; the status report
// arrives later and is logged and counted.
func (d *Driver) Command(ctx context.Context, cmd *pluginpb.DeviceCommand) error {
	d.mu.Lock()
	number, ok := d.byDevice[cmd.GetDevice()]
	tmpl, known := d.cfg.Commands[cmd.GetKind()]
	password, smsc, retries, ready, why := d.cfg.Password, d.cfg.SMSC, d.cfg.SendRetries, d.ready, d.notReady
	d.ref++
	ref := d.ref
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("unknown device %q", cmd.GetDevice())
	}
	if !known {
		return fmt.Errorf("unknown command kind %q (known: report_interval, vibrate, warn)", cmd.GetKind())
	}
	if !ready {
		return fmt.Errorf("modem not ready: %s", why)
	}
	text, err := renderCommand(tmpl, cmd.GetArgs(), password)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd.GetKind(), err)
	}
	pdus, err := EncodeSubmit(number, text, SubmitOptions{SMSC: smsc, StatusReport: true, ConcatRef: ref})
	if err != nil {
		return err
	}
	for _, p := range pdus {
		mr, err := d.sendWithRetries(ctx, p, retries)
		if err != nil {
			mSendFailed.Inc()
			return fmt.Errorf("%s to %s: %w", cmd.GetKind(), cmd.GetDevice(), err)
		}
		mSent.Inc()
		d.mu.Lock()
		d.sent[mr] = sentMessage{device: cmd.GetDevice(), command: cmd.GetKind(), at: d.opts.Now()}
		d.mu.Unlock()
		d.log.Info("message sent", "device", cmd.GetDevice(), "command", cmd.GetKind(), "id", cmd.GetId(), "reference", mr)
	}
	return nil
}

func (d *Driver) sendWithRetries(ctx context.Context, p SubmitPDU, retries int) (uint8, error) {
	wait := d.opts.RetryBackoff
	for attempt := 0; ; attempt++ {
		mr, err := d.conn.sendPDU(ctx, p, d.opts.CommandTimeout, d.opts.SendTimeout)
		if err == nil {
			return mr, nil
		}
		var ae *ATError
		if !errors.As(err, &ae) || !ae.CMS() || attempt >= retries {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

var _ sdk.Driver = (*Driver)(nil)
