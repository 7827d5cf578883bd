// Package serialrx is the serial receiver driver: a base station hears the tags by radio and streams
// their fixes over RS-232 as NMEA 0183 lines. Every fix is two sentences, each with its own checksum:
//
//	$PSKJ,<device-id>[,<battery-pct>[,<strap>]]*hh
//	$GPRMC,<hhmmss.ss>,<A|V>,<ddmm.mmmm>,<N|S>,<dddmm.mmmm>,<E|W>,<knots>,<course>,<ddmmyy>,<var>,<E|W>[,<mode>]*hh
//
// for example
//
//	$PSKJ,864717003283581,87,C*5F
//	$GPRMC,120001.00,A,5954.6300,N,01045.4800,E,2.5,87.3,261126,,,A*63
//
// PSKJ (proprietary, manufacturer code SKJ) names the device of the RMC sentence on the very next line;
// battery (0-100) and strap (C closed, O open) are optional. An RMC sentence that is not directly
// preceded by a PSKJ sentence is dropped (no_id), and a PSKJ sentence that is not directly followed by an
// RMC sentence is dropped (orphan_id): a lost or garbled line can never give one tag's fix to another.
// $GNRMC (multi-constellation receivers) is accepted like $GPRMC. The checksum is the XOR of the
// characters between '$' and '*', two hex digits; lines end in CR LF (LF alone is accepted).
//
// The port is opened through plugins/sdk/serialport (stable /dev/serial/by-id names, reopened after an
// unplug); the base station is receive-only, so the driver takes no device commands.
package serialrx

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport"
)

// Version is the driver's version, reported in Info.
const Version = "0.1.0"

const (
	// readTimeout bounds one read, so the loop notices ctx and a vanished device.
	readTimeout = 200 * time.Millisecond
	// idPairWindow is how long a PSKJ sentence waits for its RMC line.
	idPairWindow = 2 * time.Second
	// deviceTTL is how long a device counts as heard (Devices).
	deviceTTL = 10 * time.Minute
	// maxQueue bounds observations waiting for the node; the oldest is dropped beyond it.
	maxQueue = 1000
	// retryDelay is the pause before an observation the node did not acknowledge is sent again.
	retryDelay = 100 * time.Millisecond
)

// Metrics, exported by the host on the node's /metrics with a plugin label.
var (
	linesAccepted = sdk.NewCounter("serialrx_lines_accepted_total", "NMEA lines used, by sentence", "sentence")
	linesRejected = sdk.NewCounter("serialrx_lines_rejected_total", "NMEA lines dropped, by reason", "reason")
	devicesGauge  = sdk.NewGauge("serialrx_devices_heard", "devices heard in the last 10 minutes")
	portOpen      = sdk.NewGauge("serialrx_port_open", "1 while the serial port is open")
	emitFailures  = sdk.NewCounter("serialrx_emit_failures_total", "batches the node did not acknowledge (sent again)")
	queueDropped  = sdk.NewCounter("serialrx_queue_dropped_total", "observations dropped because the queue to the node was full or the node rejected them", "why")
)

// Options tune a Driver; zero values give the defaults.
type Options struct {
	Logger hclog.Logger
	Now    func() time.Time
	// ReopenMin and ReopenMax bound the backoff between attempts to reopen a lost port (100 ms, 5 s).
	ReopenMin, ReopenMax time.Duration
}

// Driver implements sdk.Driver.
type Driver struct {
	opts Options
	log  hclog.Logger
	now  func() time.Time

	mu    sync.Mutex
	cfg   Config
	port  *serialport.Reopening
	heard map[string]time.Time
	lines uint64
	queue []*pluginpb.Observation
	ready chan struct{} // signalled when queue gains an item
}

// New returns an unconfigured driver.
func New(opts Options) *Driver {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Driver{opts: opts, log: opts.Logger, now: opts.Now, heard: map[string]time.Time{}, ready: make(chan struct{}, 1)}
}

// Info names the driver.
func (d *Driver) Info() sdk.Info { return sdk.Info{Name: "serialrx", Version: Version} }

// ConfigSchema describes the config block.
func (d *Driver) ConfigSchema() []*pluginpb.ConfigField { return Schema() }

// Configure checks the config and opens the port; a port that cannot be opened is an error on "port".
func (d *Driver) Configure(raw []byte, _ string) []*pluginpb.ConfigError {
	cfg, errs := ParseConfig(raw)
	if len(errs) > 0 {
		return errs
	}
	port, err := serialport.OpenReopening(
		serialport.Config{Name: cfg.Port, Baud: cfg.Baud, ReadTimeout: readTimeout},
		serialport.ReopenOptions{BackoffMin: d.opts.ReopenMin, BackoffMax: d.opts.ReopenMax},
	)
	if err != nil {
		return []*pluginpb.ConfigError{sdk.ConfigErr("port", "%v", err)}
	}
	d.mu.Lock()
	old := d.port
	d.cfg, d.port = cfg, port
	d.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	portOpen.Set(1)
	d.log.Info("base station port open", "port", cfg.Port, "device", port.Device(), "baud", cfg.Baud)
	return nil
}

// Health reports the port's state.
func (d *Driver) Health() (bool, string) {
	d.mu.Lock()
	port, cfg, lines := d.port, d.cfg, d.lines
	d.mu.Unlock()
	if port == nil {
		return false, "not configured"
	}
	open, _, err := port.State()
	if !open {
		return false, fmt.Sprintf("port %s not open: %v", cfg.Port, err)
	}
	return true, fmt.Sprintf("port %s open (%s) at %d baud; %d lines used", cfg.Port, port.Device(), cfg.Baud, lines)
}

// Devices lists the devices heard in the last ten minutes.
func (d *Driver) Devices() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	var out []string
	for id, at := range d.heard {
		if now.Sub(at) <= deviceTTL {
			out = append(out, id)
		} else {
			delete(d.heard, id)
		}
	}
	devicesGauge.Set(float64(len(out)))
	sort.Strings(out)
	return out
}

// ErrReceiveOnly is returned by Command: the base station only listens.
var ErrReceiveOnly = errors.New("serialrx: the base station is receive-only; it cannot send commands to tags")

// Command always fails: the serial link has no way to the tags.
func (d *Driver) Command(context.Context, *pluginpb.DeviceCommand) error { return ErrReceiveOnly }

// Run reads the port and hands the observations to the node until ctx ends.
func (d *Driver) Run(ctx context.Context, emit sdk.Emitter) error {
	d.mu.Lock()
	port := d.port
	d.mu.Unlock()
	if port == nil {
		return errors.New("not configured")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.sendLoop(ctx, emit)
	}()
	d.readLoop(ctx, port)
	<-done
	_ = port.Close()
	portOpen.Set(0)
	return ctx.Err()
}

// readLoop reads lines until ctx ends, reopening the port after an unplug.
func (d *Driver) readLoop(ctx context.Context, port *serialport.Reopening) {
	d.mu.Lock()
	accuracyM := d.cfg.AccuracyM
	d.mu.Unlock()
	var lr lineReader
	var pending *ID
	var pendingAt time.Time
	buf := make([]byte, 512)
	wasOpen := true
	for ctx.Err() == nil {
		if err := port.Ensure(); err != nil {
			if wasOpen {
				d.log.Warn("base station port lost", "error", err)
				wasOpen = false
				portOpen.Set(0)
			}
			lr.reset()
			pending = nil
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		if !wasOpen {
			wasOpen = true
			portOpen.Set(1)
			d.log.Info("base station port open again", "device", port.Device())
		}
		n, err := port.Read(buf)
		for _, line := range lr.feed(buf[:n]) {
			if line.err != nil {
				d.reject(line.err)
				pending = d.dropPending(pending)
				continue
			}
			if line.text == "" {
				continue
			}
			s, perr := ParseLine(line.text)
			now := d.now()
			if pending != nil && now.Sub(pendingAt) > idPairWindow {
				pending = d.dropPending(pending)
			}
			switch {
			case perr != nil:
				d.reject(perr)
				pending = d.dropPending(pending)
			case s.ID != nil:
				pending = d.dropPending(pending)
				pending, pendingAt = s.ID, now
			case s.RMC != nil:
				if pending == nil {
					d.reject(lineErr(ReasonNoID, "RMC without a PSKJ line before it"))
					continue
				}
				linesAccepted.Inc("PSKJ")
				linesAccepted.Inc("RMC")
				d.enqueue(ToObservation(pending, s.RMC, now, accuracyM))
				pending = nil
			}
		}
		if err != nil && !errors.Is(err, serialport.ErrTimeout) {
			// The port is closed and will be reopened; a line cut by the unplug must not join the next.
			lr.reset()
			pending = nil
		}
	}
}

func (d *Driver) dropPending(p *ID) *ID {
	if p != nil {
		d.reject(lineErr(ReasonOrphanID, "PSKJ %s not followed by its RMC line", p.Device))
	}
	return nil
}

func (d *Driver) reject(err error) {
	reason := "other"
	var le *LineError
	if errors.As(err, &le) {
		reason = le.Reason
	}
	linesRejected.Inc(reason)
	d.log.Debug("line dropped", "reason", reason, "error", err)
}

func (d *Driver) enqueue(o *pluginpb.Observation) {
	d.mu.Lock()
	d.lines += 2
	d.heard[o.GetDevice()] = d.now()
	if len(d.queue) >= maxQueue {
		d.queue = d.queue[1:]
		queueDropped.Inc("full")
	}
	d.queue = append(d.queue, o)
	d.mu.Unlock()
	d.Devices() // refresh the gauge
	select {
	case d.ready <- struct{}{}:
	default:
	}
}

// sendLoop hands queued observations to the node in order, in batches, sending a batch again until the
// node commits or rejects it: the base station cannot resend, so the driver must.
func (d *Driver) sendLoop(ctx context.Context, emit sdk.Emitter) {
	for {
		d.mu.Lock()
		batch := append([]*pluginpb.Observation(nil), d.queue...)
		d.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-d.ready:
			}
			continue
		}
		err := emit.Emit(ctx, batch)
		var rej *sdk.RejectedError
		switch {
		case err == nil:
		case errors.As(err, &rej):
			queueDropped.Add(float64(len(batch)), "rejected")
			d.log.Error("node rejected observations; dropped", "count", len(batch), "error", err)
		default:
			if ctx.Err() != nil {
				return
			}
			emitFailures.Inc()
			d.log.Warn("observations not acknowledged; sending again", "count", len(batch), "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryDelay):
			}
			continue
		}
		d.mu.Lock()
		// Remove what was sent; the queue may have dropped its oldest items meanwhile.
		d.queue = removeSent(d.queue, batch)
		d.mu.Unlock()
	}
}

// removeSent drops the items of batch from the front of queue (by identity).
func removeSent(queue, batch []*pluginpb.Observation) []*pluginpb.Observation {
	sent := make(map[*pluginpb.Observation]bool, len(batch))
	for _, o := range batch {
		sent[o] = true
	}
	out := queue[:0]
	for _, o := range queue {
		if !sent[o] {
			out = append(out, o)
		}
	}
	return out
}

// ToObservation maps a PSKJ + RMC pair to an observation; received is when the driver read it, the time of
// a report without a valid fix and time.
// RMC carries no HDOP: a valid fix gets accuracyM (the config's accuracy_m).
func ToObservation(id *ID, r *RMC, received time.Time, accuracyM float64) *pluginpb.Observation {
	o := &pluginpb.Observation{Device: id.Device, Time: sdk.Timestamp(received), Source: "nmea:rmc", BatteryPct: id.BatteryPct}
	switch id.Strap {
	case StrapClosed:
		o.Strap = pluginpb.Strap_STRAP_CLOSED
	case StrapOpen:
		o.Strap = pluginpb.Strap_STRAP_OPEN
	}
	if !r.Time.IsZero() {
		o.Time = sdk.Timestamp(r.Time)
	}
	if r.Valid {
		o.HasFix, o.Lat, o.Lon, o.AccuracyM = true, r.Lat, r.Lon, accuracyM
		o.SpeedMps, o.HeadingDeg = r.SpeedMps, r.HeadingDeg
	}
	return o
}

// lineReader splits bytes into lines, bounding each to MaxLine.
type lineReader struct {
	buf      []byte
	skipping bool // discarding an over-long line up to its end
}

type readLine struct {
	text string
	err  error
}

func (l *lineReader) reset() { l.buf, l.skipping = l.buf[:0], false }

func (l *lineReader) feed(p []byte) []readLine {
	var out []readLine
	for _, c := range p {
		switch {
		case c == '\n':
			if l.skipping {
				l.skipping = false
			} else {
				s := string(l.buf)
				if len(s) > 0 && s[len(s)-1] == '\r' {
					s = s[:len(s)-1]
				}
				out = append(out, readLine{text: s})
			}
			l.buf = l.buf[:0]
		case l.skipping:
		case len(l.buf) > MaxLine: // room for the CR
			out = append(out, readLine{err: lineErr(ReasonTooLong, "no line end within %d characters", MaxLine)})
			l.buf, l.skipping = l.buf[:0], true
		default:
			l.buf = append(l.buf, c)
		}
	}
	return out
}

var _ sdk.Driver = (*Driver)(nil)
