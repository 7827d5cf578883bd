// Package siren is the siren/strobe hook: it switches one relay — a channel of an LCUS USB relay board or a
// coil of a Modbus RTU relay module — while police alarms wait (AlarmEvent.active_police_alarms > 0), steady
// or pulsing, and switches it off when none do. The whole state is in every event, so each delivery simply
// asserts it again (idempotent re-assertion); a goroutine of the hook drives a pulsing pattern between
// deliveries, and after the relay was unplugged and came back the current state is written again.
package siren

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/skjold-alarm/skjold/plugins/hooks/siren/lcus"
	"github.com/skjold-alarm/skjold/plugins/hooks/siren/modbus"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport"
)

// Version is the hook's version, reported in Info.
const Version = "0.2.0"

// Protocols and patterns.
const (
	ProtocolLCUS   = "lcus"
	ProtocolModbus = "modbus"
	PatternSteady  = "steady"
	PatternPulse   = "pulse"
)

// Defaults and bounds of the config attributes.
const (
	DefaultPulseMS        = 500
	MinPulseMS            = 100
	MaxPulseMS            = 10000
	DefaultReplyTimeoutMS = 500
	MinReplyTimeoutMS     = 100
	MaxReplyTimeoutMS     = 10000
	// modbusReadTimeout bounds one read of the echo; the whole wait is bounded by reply_timeout_ms.
	modbusReadTimeout = 100 * time.Millisecond
)

// Config is the hook's config block.
type Config struct {
	Port     string `json:"port"`
	Protocol string `json:"protocol"`
	// Channel is the LCUS relay channel (1-8).
	Channel int `json:"channel"`
	// Slave and Coil address the Modbus relay (1-247, 0-65535).
	Slave int `json:"slave"`
	Coil  int `json:"coil"`
	Baud  int `json:"baud"`
	// ReplyTimeoutMS bounds the wait for a Modbus module's echo.
	ReplyTimeoutMS int `json:"reply_timeout_ms"`
	// Pattern is used while police alarms wait and none is escalated, EscalatedPattern once one is.
	Pattern          string `json:"pattern"`
	EscalatedPattern string `json:"escalated_pattern"`
	// PulseMS is the length of each ON and each OFF phase of the pulse pattern.
	PulseMS int `json:"pulse_ms"`
}

// Options tune a Hook; zero values give the defaults.
type Options struct {
	Logger hclog.Logger
	// ReopenMin and ReopenMax bound the backoff between attempts to reopen a lost port (100 ms, 5 s).
	ReopenMin, ReopenMax time.Duration
	// MaintainEvery is how often the hook checks a lost port and re-asserts the relay once it is back (1 s).
	MaintainEvery time.Duration
}

// mode is what the relay is asked to do.
type mode int

const (
	modeUnknown mode = iota // nothing delivered since Configure
	modeOff
	modeSteady
	modePulse
)

// Hook implements sdk.Hook.
type Hook struct {
	opts Options
	log  hclog.Logger

	mu    sync.Mutex
	cfg   Config
	relay relay
	port  *serialport.Reopening
	// Latest state given by a delivery.
	active, escalation uint32
	mode               mode
	on                 bool      // the relay's current phase: what was (or is being) written
	nextToggle         time.Time // when a pulsing relay changes phase next
	frame              []byte    // the last frame written (or attempted)
	writtenGen         uint64    // port generation the current phase was last confirmed on (0: not)
	lastErr            error
	wake               chan struct{} // tells the loop that the mode or the phase deadline changed
	stop               chan struct{}
	done               chan struct{}
}

// New returns an unconfigured hook.
func New(opts Options) *Hook {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.MaintainEvery <= 0 {
		opts.MaintainEvery = time.Second
	}
	return &Hook{opts: opts, log: opts.Logger}
}

// Info names the hook.
func (h *Hook) Info() sdk.Info { return sdk.Info{Name: "siren", Version: Version} }

// ConfigSchema describes the config block.
func (h *Hook) ConfigSchema() []*pluginpb.ConfigField {
	return []*pluginpb.ConfigField{
		{Name: "port", Type: "string", Required: true, Description: "serial port of the relay, preferably /dev/serial/by-id/..."},
		{Name: "protocol", Type: "string", Description: `relay protocol: "lcus" (USB relay board) or "modbus" (Modbus RTU relay module, function 05)`, DefaultJson: `"lcus"`},
		{Name: "channel", Type: "number", Description: "LCUS relay channel, 1-8 (lcus only)", DefaultJson: "1"},
		{Name: "slave", Type: "number", Description: "Modbus slave address, 1-247 (modbus only)", DefaultJson: "1"},
		{Name: "coil", Type: "number", Description: "Modbus coil of the relay, 0-65535 (modbus only)", DefaultJson: "0"},
		{Name: "baud", Type: "number", Description: "line speed", DefaultJson: "9600"},
		{Name: "reply_timeout_ms", Type: "number", Description: "how long to wait for the Modbus module's echo, 100-10000 ms (modbus only)", DefaultJson: "500"},
		{Name: "pattern", Type: "string", Description: `while police alarms wait: "steady" (relay on) or "pulse" (on and off every pulse_ms)`, DefaultJson: `"steady"`},
		{Name: "escalated_pattern", Type: "string", Description: `once a waiting police alarm is escalated: "steady" or "pulse"`, DefaultJson: `"pulse"`},
		{Name: "pulse_ms", Type: "number", Description: "length of each ON and OFF phase of the pulse pattern, 100-10000 ms", DefaultJson: "500"},
	}
}

const knownAttributes = "port, protocol, channel, slave, coil, baud, reply_timeout_ms, pattern, escalated_pattern, pulse_ms"

// ParseConfig checks a config block and fills the defaults. It returns every problem, each naming its field.
func ParseConfig(raw []byte) (Config, []*pluginpb.ConfigError) {
	cfg := Config{
		Protocol: ProtocolLCUS, Channel: 1, Slave: 1, Coil: 0, Baud: serialport.DefaultBaud,
		ReplyTimeoutMS: DefaultReplyTimeoutMS, Pattern: PatternSteady, EscalatedPattern: PatternPulse, PulseMS: DefaultPulseMS,
	}
	fields, keys, cerr := sdk.ConfigFields(raw)
	if cerr != nil {
		return cfg, []*pluginpb.ConfigError{cerr}
	}
	var errs []*pluginpb.ConfigError
	number := func(k string, v json.RawMessage, lo, hi int, dst *int) {
		if n, ok := integer(v); !ok {
			errs = append(errs, sdk.ConfigErr(k, "must be a whole number"))
		} else if n < lo || n > hi {
			errs = append(errs, sdk.ConfigErr(k, "%d is out of range [%d, %d]", n, lo, hi))
		} else {
			*dst = n
		}
	}
	pattern := func(k string, v json.RawMessage, dst *string) {
		var p string
		if err := json.Unmarshal(v, &p); err != nil {
			errs = append(errs, sdk.ConfigErr(k, `must be a string: "steady" or "pulse"`))
		} else if p != PatternSteady && p != PatternPulse {
			errs = append(errs, sdk.ConfigErr(k, `%q is not a known pattern; use "steady" or "pulse"`, p))
		} else {
			*dst = p
		}
	}
	protocolOK := true
	for _, k := range keys {
		v := fields[k]
		switch k {
		case "port":
			if err := json.Unmarshal(v, &cfg.Port); err != nil {
				errs = append(errs, sdk.ConfigErr("port", "must be a string (a path such as /dev/serial/by-id/usb-...)"))
			} else if cfg.Port == "" {
				errs = append(errs, sdk.ConfigErr("port", "must not be empty"))
			} else if !filepath.IsAbs(cfg.Port) {
				errs = append(errs, sdk.ConfigErr("port", "%q is not an absolute path", cfg.Port))
			}
		case "protocol":
			if err := json.Unmarshal(v, &cfg.Protocol); err != nil {
				errs = append(errs, sdk.ConfigErr("protocol", "must be a string"))
				protocolOK = false
			} else if cfg.Protocol != ProtocolLCUS && cfg.Protocol != ProtocolModbus {
				errs = append(errs, sdk.ConfigErr("protocol", `%q is not a known relay protocol; use "lcus" or "modbus"`, cfg.Protocol))
				protocolOK = false
			}
		case "channel":
			number(k, v, lcus.MinChannel, lcus.MaxChannel, &cfg.Channel)
		case "slave":
			number(k, v, modbus.MinSlave, modbus.MaxSlave, &cfg.Slave)
		case "coil":
			number(k, v, modbus.MinCoil, modbus.MaxCoil, &cfg.Coil)
		case "reply_timeout_ms":
			number(k, v, MinReplyTimeoutMS, MaxReplyTimeoutMS, &cfg.ReplyTimeoutMS)
		case "pulse_ms":
			number(k, v, MinPulseMS, MaxPulseMS, &cfg.PulseMS)
		case "pattern":
			pattern(k, v, &cfg.Pattern)
		case "escalated_pattern":
			pattern(k, v, &cfg.EscalatedPattern)
		case "baud":
			if n, ok := integer(v); !ok {
				errs = append(errs, sdk.ConfigErr("baud", "must be a whole number"))
			} else if !serialport.ValidBaud(n) {
				errs = append(errs, sdk.ConfigErr("baud", "%d is not a supported line speed (e.g. 9600, 19200, 115200)", n))
			} else {
				cfg.Baud = n
			}
		default:
			errs = append(errs, sdk.ConfigErr(k, "unknown attribute (known: %s)", knownAttributes))
		}
	}
	if _, ok := fields["port"]; !ok {
		errs = append(errs, sdk.ConfigErr("port", "is required"))
	}
	// Attributes of the other protocol are a mistake worth naming: the relay would not be the one meant.
	if protocolOK {
		var foreign []string
		if cfg.Protocol == ProtocolLCUS {
			foreign = []string{"slave", "coil", "reply_timeout_ms"}
		} else {
			foreign = []string{"channel"}
		}
		for _, k := range foreign {
			if _, ok := fields[k]; ok {
				errs = append(errs, sdk.ConfigErr(k, "does not apply to protocol %q", cfg.Protocol))
			}
		}
	}
	return cfg, errs
}

func integer(v json.RawMessage) (int, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, false // not a JSON number (json.Number would also take a quoted one)
	}
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var n json.Number
	if err := d.Decode(&n); err != nil {
		return 0, false
	}
	i, err := n.Int64()
	if err != nil || i < -1<<31 || i > 1<<31-1 {
		return 0, false
	}
	return int(i), true
}

// relay is one protocol's way of switching the relay.
type relay interface {
	// frame is the request that switches the relay on or off.
	frame(on bool) []byte
	// name names the relay in references and messages: "relay 1", "slave 1 coil 0".
	name() string
	// confirm waits for the device's answer to req, if the protocol has one.
	confirm(p *serialport.Reopening, req []byte) error
}

type lcusRelay struct{ channel int }

func (r lcusRelay) frame(on bool) []byte {
	b, _ := lcus.Encode(r.channel, on) // the channel was checked by ParseConfig
	return b
}
func (r lcusRelay) name() string                                { return fmt.Sprintf("relay %d", r.channel) }
func (r lcusRelay) confirm(*serialport.Reopening, []byte) error { return nil } // the board does not answer

type modbusRelay struct {
	slave, coil int
	timeout     time.Duration
}

func (r modbusRelay) frame(on bool) []byte {
	b, _ := modbus.Encode(r.slave, r.coil, on) // slave and coil were checked by ParseConfig
	return b
}
func (r modbusRelay) name() string { return fmt.Sprintf("slave %d coil %d", r.slave, r.coil) }

// confirm reads until the echo of req (or an exception response) arrives or the reply timeout passes. Stale
// bytes, such as the late echo of an earlier request, are skipped.
func (r modbusRelay) confirm(p *serialport.Reopening, req []byte) error {
	deadline := time.Now().Add(r.timeout)
	var got []byte
	buf := make([]byte, 64)
	for {
		n, err := p.Read(buf)
		got = append(got, buf[:n]...)
		if done, rerr := modbus.CheckReply(req, got); done {
			return rerr
		}
		if err != nil && !errors.Is(err, serialport.ErrTimeout) {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("modbus %s: no echo within %s: %s", r.name(), r.timeout, modbus.DescribeReply(req, got))
		}
	}
}

func newRelay(cfg Config) relay {
	if cfg.Protocol == ProtocolModbus {
		return modbusRelay{slave: cfg.Slave, coil: cfg.Coil, timeout: time.Duration(cfg.ReplyTimeoutMS) * time.Millisecond}
	}
	return lcusRelay{channel: cfg.Channel}
}

// Configure checks the config and opens the port; a port that cannot be opened is an error on "port".
func (h *Hook) Configure(raw []byte, _ string) []*pluginpb.ConfigError {
	cfg, errs := ParseConfig(raw)
	if len(errs) > 0 {
		return errs
	}
	pc := serialport.Config{Name: cfg.Port, Baud: cfg.Baud}
	if cfg.Protocol == ProtocolModbus {
		pc.ReadTimeout = modbusReadTimeout
	}
	port, err := serialport.OpenReopening(pc, serialport.ReopenOptions{BackoffMin: h.opts.ReopenMin, BackoffMax: h.opts.ReopenMax})
	if err != nil {
		return []*pluginpb.ConfigError{sdk.ConfigErr("port", "%v", err)}
	}
	h.Close()
	h.mu.Lock()
	h.cfg, h.relay, h.port = cfg, newRelay(cfg), port
	h.active, h.escalation, h.mode, h.on = 0, 0, modeUnknown, false
	h.frame, h.writtenGen, h.lastErr = nil, 0, nil
	h.wake, h.stop, h.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	wake, stop, done := h.wake, h.stop, h.done
	h.mu.Unlock()
	h.log.Info("relay port open", "port", cfg.Port, "device", port.Device(), "protocol", cfg.Protocol,
		"relay", h.relay.name(), "pattern", cfg.Pattern, "escalated_pattern", cfg.EscalatedPattern)
	go h.loop(wake, stop, done)
	return nil
}

// loop drives the relay between deliveries: it switches a pulsing relay at every phase deadline, and
// every MaintainEvery it checks a lost port and re-asserts the state once the port is back.
func (h *Hook) loop(wake, stop, done chan struct{}) {
	defer close(done)
	maintain := time.NewTicker(h.opts.MaintainEvery)
	defer maintain.Stop()
	pulse := time.NewTimer(time.Hour)
	defer pulse.Stop()
	for {
		h.mu.Lock()
		pulsing, next := h.mode == modePulse, h.nextToggle
		h.mu.Unlock()
		var pulseC <-chan time.Time
		if pulsing {
			pulse.Reset(time.Until(next))
			pulseC = pulse.C
		}
		select {
		case <-stop:
			return
		case <-wake:
		case <-maintain.C:
			h.maintain()
		case <-pulseC:
			h.toggle()
		}
		pulse.Stop()
	}
}

// toggle switches a pulsing relay to its other phase once the phase deadline has come.
func (h *Hook) toggle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.port == nil || h.mode != modePulse {
		return
	}
	now := time.Now()
	if now.Before(h.nextToggle) {
		return // a delivery moved the deadline
	}
	h.on = !h.on
	h.nextToggle = h.nextToggle.Add(h.pulse())
	if h.nextToggle.Before(now) {
		h.nextToggle = now.Add(h.pulse()) // the write of the last phase took longer than a phase
	}
	if err := h.writeLocked(); err != nil {
		h.log.Warn("relay pulse write failed", "error", err, "relay", h.relay.name(), "on", h.on)
	}
}

func (h *Hook) pulse() time.Duration { return time.Duration(h.cfg.PulseMS) * time.Millisecond }

// maintain reopens a lost port when the backoff allows and writes the current phase again to a port that
// was reopened since it was written, or where the last write was not confirmed.
func (h *Hook) maintain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.port == nil {
		return
	}
	if err := h.port.Ensure(); err != nil {
		return
	}
	if _, gen, _ := h.port.State(); h.mode != modeUnknown && gen != h.writtenGen {
		if err := h.writeLocked(); err == nil {
			h.log.Info("relay state re-asserted", "relay", h.relay.name(), "on", h.on)
		}
	}
}

// writeLocked writes the frame of the current phase and waits for the device's answer if it gives one.
func (h *Hook) writeLocked() error {
	h.frame = h.relay.frame(h.on)
	_, err := h.port.Write(h.frame)
	if err == nil {
		err = h.relay.confirm(h.port, h.frame)
	}
	h.lastErr = err
	if err != nil {
		h.writtenGen = 0
		return err
	}
	_, h.writtenGen, _ = h.port.State()
	return nil
}

// modeFor is the relay's mode for a siren state.
func (h *Hook) modeFor(active, escalation uint32) mode {
	if active == 0 {
		return modeOff
	}
	p := h.cfg.Pattern
	if escalation > 0 {
		p = h.cfg.EscalatedPattern
	}
	if p == PatternPulse {
		return modePulse
	}
	return modeSteady
}

// stateLocked describes what the relay is asked to do: "relay 1 ON", "slave 1 coil 0 PULSE 500ms".
func (h *Hook) stateLocked() string {
	switch h.mode {
	case modeOff:
		return h.relay.name() + " OFF"
	case modeSteady:
		return h.relay.name() + " ON"
	case modePulse:
		return fmt.Sprintf("%s PULSE %dms", h.relay.name(), h.cfg.PulseMS)
	}
	return h.relay.name() + " unknown"
}

// Health reports the port's state.
func (h *Hook) Health() (bool, string) {
	h.maintain()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.port == nil {
		return false, "not configured"
	}
	open, _, err := h.port.State()
	state := h.stateLocked()
	if h.mode == modePulse {
		phase := "OFF"
		if h.on {
			phase = "ON"
		}
		state += " (now " + phase + ")"
	}
	if !open {
		return false, fmt.Sprintf("not open: %v (%s last)", err, state)
	}
	if h.lastErr != nil {
		return false, fmt.Sprintf("port %s: last write failed: %v (%s)", h.cfg.Port, h.lastErr, state)
	}
	return true, fmt.Sprintf("port %s open (%s), %s", h.cfg.Port, h.port.Device(), state)
}

// Deliver takes the siren state of the event (active police alarms, their highest escalation) and asserts
// it at once: OFF, steady ON, or the current phase of the pulse pattern (a relay that starts pulsing starts
// with an ON phase). The receipt is delivered only once the frame was written and, for Modbus, echoed.
func (h *Hook) Deliver(_ context.Context, ev *pluginpb.AlarmEvent) (*pluginpb.Receipt, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.port == nil {
		return nil, errors.New("not configured")
	}
	// siren_alarms counts police alarms and monitoring faults; a host that predates it sends 0 there.
	h.active, h.escalation = max(ev.GetSirenAlarms(), ev.GetActivePoliceAlarms()), ev.GetPoliceEscalation()
	m := h.modeFor(h.active, h.escalation)
	switch {
	case m == modePulse && h.mode != modePulse:
		h.on, h.nextToggle = true, time.Now().Add(h.pulse())
	case m == modeSteady:
		h.on = true
	case m == modeOff:
		h.on = false
	}
	changed := m != h.mode
	h.mode = m
	if changed {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	ref := h.stateLocked()
	if err := h.writeLocked(); err != nil {
		h.log.Warn("relay write failed", "error", err, "key", ev.GetIdempotencyKey())
		return &pluginpb.Receipt{Delivered: false, Reference: ref, Error: err.Error()}, nil
	}
	h.log.Debug("relay switched", "relay", ref, "key", ev.GetIdempotencyKey())
	return &pluginpb.Receipt{Delivered: true, Reference: ref}, nil
}

// Close stops the hook's goroutine and closes the port. The relay is left as the last delivery asked: a
// pulsing relay caught in its OFF phase is switched ON first, so stopping the hook never silences a room
// where police alarms wait (the host restarts the hook and delivers the last change again).
func (h *Hook) Close() {
	h.mu.Lock()
	stop, done := h.stop, h.done
	h.stop, h.done = nil, nil
	h.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	h.mu.Lock()
	port := h.port
	if port != nil && h.mode == modePulse && !h.on {
		h.on = true
		if err := h.writeLocked(); err != nil {
			h.log.Warn("could not leave the pulsing relay ON", "error", err, "relay", h.relay.name())
		}
	}
	h.port = nil
	h.mu.Unlock()
	if port != nil {
		_ = port.Close()
	}
}

var _ sdk.Hook = (*Hook)(nil)
