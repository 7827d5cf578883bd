// Package siren is the siren/strobe hook: it switches one channel of a USB relay board on while police
// alarms are active (AlarmEvent.active_police_alarms > 0) and off when none are. The whole state is in every
// event, so each delivery simply writes the frame for it again (idempotent re-assertion), and after the
// board was unplugged and came back the last frame is written again.
package siren

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/skjold-alarm/skjold/plugins/hooks/siren/lcus"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport"
)

// Version is the hook's version, reported in Info.
const Version = "0.1.0"

// Config is the hook's config block.
type Config struct {
	Port     string `json:"port"`
	Protocol string `json:"protocol"`
	Channel  int    `json:"channel"`
	Baud     int    `json:"baud"`
}

// Options tune a Hook; zero values give the defaults.
type Options struct {
	Logger hclog.Logger
	// ReopenMin and ReopenMax bound the backoff between attempts to reopen a lost port (100 ms, 5 s).
	ReopenMin, ReopenMax time.Duration
	// MaintainEvery is how often the hook checks a lost port and re-asserts the relay once it is back (1 s).
	MaintainEvery time.Duration
}

// Hook implements sdk.Hook.
type Hook struct {
	opts Options
	log  hclog.Logger

	mu         sync.Mutex
	cfg        Config
	port       *serialport.Reopening
	frame      []byte // the frame of the last delivery
	on         bool
	writtenGen uint64 // port generation the frame was last written to (0: not written)
	lastErr    error
	stop       chan struct{}
	done       chan struct{}
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
		{Name: "port", Type: "string", Required: true, Description: "serial port of the relay board, preferably /dev/serial/by-id/..."},
		{Name: "protocol", Type: "string", Description: `relay protocol: "lcus"`, DefaultJson: `"lcus"`},
		{Name: "channel", Type: "number", Description: "relay channel, 1-8", DefaultJson: "1"},
		{Name: "baud", Type: "number", Description: "line speed", DefaultJson: "9600"},
	}
}

// ParseConfig checks a config block and fills the defaults. It returns every problem, each naming its field.
func ParseConfig(raw []byte) (Config, []*pluginpb.ConfigError) {
	cfg := Config{Protocol: "lcus", Channel: 1, Baud: serialport.DefaultBaud}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return cfg, []*pluginpb.ConfigError{sdk.ConfigErr("", "the configuration must be a JSON object")}
	}
	var errs []*pluginpb.ConfigError
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
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
			} else {
				switch cfg.Protocol {
				case "lcus":
				case "modbus":
					errs = append(errs, sdk.ConfigErr("protocol", `"modbus" is not supported yet; use "lcus"`))
				default:
					errs = append(errs, sdk.ConfigErr("protocol", `%q is not a known relay protocol; use "lcus"`, cfg.Protocol))
				}
			}
		case "channel":
			if n, ok := integer(v); !ok {
				errs = append(errs, sdk.ConfigErr("channel", "must be a whole number"))
			} else if n < lcus.MinChannel || n > lcus.MaxChannel {
				errs = append(errs, sdk.ConfigErr("channel", "%d is out of range [%d, %d]", n, lcus.MinChannel, lcus.MaxChannel))
			} else {
				cfg.Channel = n
			}
		case "baud":
			if n, ok := integer(v); !ok {
				errs = append(errs, sdk.ConfigErr("baud", "must be a whole number"))
			} else if !serialport.ValidBaud(n) {
				errs = append(errs, sdk.ConfigErr("baud", "%d is not a supported line speed (e.g. 9600, 19200, 115200)", n))
			} else {
				cfg.Baud = n
			}
		default:
			errs = append(errs, sdk.ConfigErr(k, "unknown attribute (known: port, protocol, channel, baud)"))
		}
	}
	if _, ok := fields["port"]; !ok {
		errs = append(errs, sdk.ConfigErr("port", "is required"))
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

// Configure checks the config and opens the port; a port that cannot be opened is an error on "port".
func (h *Hook) Configure(raw []byte, _ string) []*pluginpb.ConfigError {
	cfg, errs := ParseConfig(raw)
	if len(errs) > 0 {
		return errs
	}
	port, err := serialport.OpenReopening(
		serialport.Config{Name: cfg.Port, Baud: cfg.Baud},
		serialport.ReopenOptions{BackoffMin: h.opts.ReopenMin, BackoffMax: h.opts.ReopenMax},
	)
	if err != nil {
		return []*pluginpb.ConfigError{sdk.ConfigErr("port", "%v", err)}
	}
	h.Close()
	h.mu.Lock()
	h.cfg, h.port = cfg, port
	h.frame, h.writtenGen, h.lastErr = nil, 0, nil
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	stop, done := h.stop, h.done
	h.mu.Unlock()
	h.log.Info("relay port open", "port", cfg.Port, "device", port.Device(), "channel", cfg.Channel)
	go h.maintainLoop(stop, done)
	return nil
}

func (h *Hook) maintainLoop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(h.opts.MaintainEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.maintain()
		}
	}
}

// maintain reopens a lost port when the backoff allows and writes the last frame again to a port that was
// reopened since it was written.
func (h *Hook) maintain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.port == nil {
		return
	}
	if err := h.port.Ensure(); err != nil {
		return
	}
	if _, gen, _ := h.port.State(); h.frame != nil && gen != h.writtenGen {
		if err := h.writeLocked(); err == nil {
			h.log.Info("relay state re-asserted after the port came back", "on", h.on)
		}
	}
}

func (h *Hook) writeLocked() error {
	_, err := h.port.Write(h.frame)
	h.lastErr = err
	if err != nil {
		h.writtenGen = 0
		return err
	}
	_, h.writtenGen, _ = h.port.State()
	return nil
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
	state := "unknown"
	if h.frame != nil {
		state = "OFF"
		if h.on {
			state = "ON"
		}
	}
	if !open {
		return false, fmt.Sprintf("not open: %v (relay %d last %s)", err, h.cfg.Channel, state)
	}
	if h.lastErr != nil {
		return false, fmt.Sprintf("port %s: last write failed: %v", h.cfg.Port, h.lastErr)
	}
	return true, fmt.Sprintf("port %s open (%s), relay %d %s", h.cfg.Port, h.port.Device(), h.cfg.Channel, state)
}

// Deliver writes the relay frame for the event.
func (h *Hook) Deliver(_ context.Context, ev *pluginpb.AlarmEvent) (*pluginpb.Receipt, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.port == nil {
		return nil, errors.New("not configured")
	}
	on := ev.GetActivePoliceAlarms() > 0
	frame, err := lcus.Encode(h.cfg.Channel, on)
	if err != nil {
		return nil, err
	}
	h.frame, h.on = frame, on
	ref := lcus.Frame{Channel: uint8(h.cfg.Channel), On: on}.String()
	if err := h.writeLocked(); err != nil {
		h.log.Warn("relay write failed", "error", err, "key", ev.GetIdempotencyKey())
		return &pluginpb.Receipt{Delivered: false, Reference: ref, Error: err.Error()}, nil
	}
	h.log.Debug("relay switched", "relay", ref, "key", ev.GetIdempotencyKey())
	return &pluginpb.Receipt{Delivered: true, Reference: ref}, nil
}

// Close stops the maintenance loop and closes the port.
func (h *Hook) Close() {
	h.mu.Lock()
	stop, done, port := h.stop, h.done, h.port
	h.stop, h.done, h.port = nil, nil, nil
	h.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	if port != nil {
		_ = port.Close()
	}
}

var _ sdk.Hook = (*Hook)(nil)
