// Package gt06 is the driver for tags that speak the Concox GT06 binary protocol over TCP. Tags connect to
// the configured address (default 127.0.0.1:5023), log in with their IMEI (the device id) and then send
// location (0x12, 0x22), status/heartbeat (0x13) and alarm (0x16) packets. Each packet becomes one
// observation; the driver acknowledges it to the tag only after the node committed it (Emit returned nil),
// so a tag that hears no ACK sends the packet again: at-least-once from tag to log. Login is acknowledged
// at once (tags hang up if the login ACK is late).
//
// Frames that fail the codec (bad CRC, bad stop bytes, bad length, unknown type, short content) are
// dropped and counted by reason; the connection is kept and the decoder resynchronises on the next start
// marker. The codec is in package protocol; this package does the TCP, the mapping to observations and the
// commands (server command packet 0x80, texts configurable per command kind).
package gt06

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/skjold-alarm/skjold/drivers/gt06/protocol"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

// Version is the driver's version, reported in Info.
const Version = "0.1.0"

// writeTimeout bounds one write of an ACK or command to a tag.
const writeTimeout = 10 * time.Second

// Metrics, exported by the host on the node's /metrics with a plugin label.
var (
	framesAccepted = sdk.NewCounter("gt06_frames_accepted_total", "GT06 frames decoded and handled, by protocol number", "protocol")
	framesRejected = sdk.NewCounter("gt06_frames_rejected_total", "GT06 frames dropped, by reason", "reason")
	devicesGauge   = sdk.NewGauge("gt06_devices_connected", "GT06 tags logged in on an open connection")
	connsOpen      = sdk.NewGauge("gt06_connections_open", "open GT06 TCP connections")
	connsTotal     = sdk.NewCounter("gt06_connections_total", "GT06 TCP connections accepted")
	emitFailures   = sdk.NewCounter("gt06_emit_failures_total", "GT06 packets not committed by the node (not acknowledged; the tag sends them again)")
	commandsSent   = sdk.NewCounter("gt06_commands_total", "device commands, by command kind and result", "command", "result")
)

// Options tune a Driver; zero values give the defaults.
type Options struct {
	Logger hclog.Logger
	Now    func() time.Time
}

// Driver implements sdk.Driver.
type Driver struct {
	log hclog.Logger
	now func() time.Time

	flag atomic.Uint32 // server flag of the next 0x80 command

	mu     sync.Mutex
	cfg    Config
	ln     net.Listener
	conns  map[*conn]struct{}
	byIMEI map[string]*conn
}

// New returns an unconfigured driver.
func New(opts Options) *Driver {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Driver{log: opts.Logger, now: opts.Now, conns: map[*conn]struct{}{}, byIMEI: map[string]*conn{}}
}

// Info names the driver.
func (d *Driver) Info() sdk.Info { return sdk.Info{Name: "gt06", Version: Version} }

// ConfigSchema describes the config block.
func (d *Driver) ConfigSchema() []*pluginpb.ConfigField { return Schema() }

// Configure checks the config and opens the listening socket; an address that cannot be bound is an
// error on "listen".
func (d *Driver) Configure(raw []byte, _ string) []*pluginpb.ConfigError {
	cfg, errs := ParseConfig(raw)
	if len(errs) > 0 {
		return errs
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ln != nil {
		_ = d.ln.Close()
		d.ln = nil
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return []*pluginpb.ConfigError{sdk.ConfigErr("listen", "cannot listen on %s: %v", cfg.Listen, err)}
	}
	d.cfg, d.ln = cfg, ln
	d.log.Info("listening for GT06 tags", "address", ln.Addr().String())
	return nil
}

// Addr is the address the driver listens on, or nil before Configure.
func (d *Driver) Addr() net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ln == nil {
		return nil
	}
	return d.ln.Addr()
}

// Health reports the listener and the connected tags.
func (d *Driver) Health() (bool, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ln == nil {
		return false, "not listening"
	}
	return true, fmt.Sprintf("listening on %s; %d tags logged in, %d connections", d.ln.Addr(), len(d.byIMEI), len(d.conns))
}

// Devices lists the IMEIs logged in on an open connection.
func (d *Driver) Devices() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.byIMEI))
	for imei := range d.byIMEI {
		out = append(out, imei)
	}
	sort.Strings(out)
	return out
}

// Command sends a server command (0x80) to the connection the device logged in on.
func (d *Driver) Command(_ context.Context, cmd *pluginpb.DeviceCommand) error {
	d.mu.Lock()
	cfg := d.cfg
	c := d.byIMEI[cmd.GetDevice()]
	d.mu.Unlock()
	kind := cmd.GetKind()
	text, err := cfg.CommandText(kind, cmd.GetArgs())
	if err != nil {
		commandsSent.Inc(label(kind), "invalid")
		return err
	}
	if c == nil {
		commandsSent.Inc(kind, "offline")
		return fmt.Errorf("device %q is not connected to this GT06 driver", cmd.GetDevice())
	}
	frame, err := protocol.CommandFrame(d.flag.Add(1), text, c.nextSerial())
	if err != nil {
		commandsSent.Inc(kind, "invalid")
		return err
	}
	if err := c.write(frame); err != nil {
		commandsSent.Inc(kind, "write_failed")
		return fmt.Errorf("device %q: %w", cmd.GetDevice(), err)
	}
	commandsSent.Inc(kind, "sent")
	d.log.Info("command sent", "id", cmd.GetId(), "device", cmd.GetDevice(), "kind", kind, "text", text)
	return nil
}

// label keeps metric labels to the known kinds.
func label(kind string) string {
	if _, ok := DefaultCommands[kind]; ok {
		return kind
	}
	return "unknown"
}

// Run accepts tag connections until ctx ends.
func (d *Driver) Run(ctx context.Context, emit sdk.Emitter) error {
	d.mu.Lock()
	ln, cfg := d.ln, d.cfg
	d.mu.Unlock()
	if ln == nil {
		return errors.New("not configured")
	}
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer func() {
		d.mu.Lock()
		for c := range d.conns {
			_ = c.nc.Close()
		}
		d.mu.Unlock()
		wg.Wait()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		connsTotal.Inc()
		c := &conn{nc: nc}
		d.mu.Lock()
		full := len(d.conns) >= cfg.MaxConnections
		if !full {
			d.conns[c] = struct{}{}
			connsOpen.Set(float64(len(d.conns)))
		}
		d.mu.Unlock()
		if full {
			d.log.Warn("too many connections; closing", "remote", nc.RemoteAddr().String(), "max", cfg.MaxConnections)
			_ = nc.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.serve(ctx, c, emit, cfg)
		}()
	}
}

// conn is one tag connection.
type conn struct {
	nc     net.Conn
	wmu    sync.Mutex
	serial atomic.Uint32 // serial of server-originated frames
	imei   string        // set by login; only the connection's goroutine writes it, under Driver.mu
}

func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.nc.Write(b)
	return err
}

func (c *conn) nextSerial() uint16 { return uint16(c.serial.Add(1)) }

func (d *Driver) serve(ctx context.Context, c *conn, emit sdk.Emitter, cfg Config) {
	remote := c.nc.RemoteAddr().String()
	log := d.log.With("remote", remote)
	log.Debug("tag connected")
	defer func() {
		_ = c.nc.Close()
		d.mu.Lock()
		delete(d.conns, c)
		if c.imei != "" && d.byIMEI[c.imei] == c {
			delete(d.byIMEI, c.imei)
		}
		devicesGauge.Set(float64(len(d.byIMEI)))
		connsOpen.Set(float64(len(d.conns)))
		d.mu.Unlock()
		log.Debug("tag disconnected", "imei", c.imei)
	}()
	var dec protocol.Decoder
	buf := make([]byte, 4096)
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		n, rerr := c.nc.Read(buf)
		if n > 0 {
			dec.Write(buf[:n])
			for {
				f, err := dec.Next()
				if errors.Is(err, protocol.ErrNeedMore) {
					break
				}
				if err != nil {
					d.reject(log, c, err)
					continue
				}
				if err := d.handle(ctx, log, c, f, emit); err != nil {
					log.Debug("closing connection", "reason", err)
					return
				}
			}
		}
		if rerr != nil {
			if err := dec.End(); err != nil {
				d.reject(log, c, err)
			}
			return
		}
	}
}

func (d *Driver) reject(log hclog.Logger, c *conn, err error) {
	reason := protocol.Reason(err)
	if reason == "" {
		reason = "other"
	}
	framesRejected.Inc(reason)
	log.Warn("frame dropped", "imei", c.imei, "reason", reason, "error", err)
}

// handle processes one frame; an error closes the connection.
func (d *Driver) handle(ctx context.Context, log hclog.Logger, c *conn, f protocol.Frame, emit sdk.Emitter) error {
	p, err := protocol.Parse(f)
	if err == nil && f.Protocol == protocol.ServerCommand {
		err = &protocol.Error{Reason: protocol.ReasonUnknownProtocol, Detail: "a server command (0x80) sent by a tag"}
	}
	if err != nil {
		d.reject(log, c, err)
		return nil
	}
	proto := fmt.Sprintf("0x%02x", f.Protocol)
	switch f.Protocol {
	case protocol.Login:
		d.login(log, c, p.IMEI)
		framesAccepted.Inc(proto)
		return c.write(protocol.Ack(f.Protocol, f.Serial))
	case protocol.CommandReply:
		framesAccepted.Inc(proto)
		log.Info("command reply", "imei", c.imei, "server_flag", p.ServerFlag, "text", p.Text)
		return nil
	}
	if c.imei == "" {
		d.reject(log, c, &protocol.Error{Reason: "no_login", Detail: fmt.Sprintf("protocol %s before login", proto)})
		return nil
	}
	framesAccepted.Inc(proto)
	obs := ToObservation(c.imei, p, d.now())
	if err := emit.Emit(ctx, []*pluginpb.Observation{obs}); err != nil {
		emitFailures.Inc()
		log.Warn("packet not committed; not acknowledged (the tag sends it again)", "imei", c.imei, "protocol", proto, "error", err)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return nil
	}
	return c.write(protocol.Ack(f.Protocol, f.Serial))
}

// login binds the connection to imei. A tag that logs in again on a new connection replaces its old one,
// which is closed: it is usually a half-open socket the tag gave up on.
func (d *Driver) login(log hclog.Logger, c *conn, imei string) {
	d.mu.Lock()
	if c.imei != "" && c.imei != imei && d.byIMEI[c.imei] == c {
		delete(d.byIMEI, c.imei)
	}
	old := d.byIMEI[imei]
	c.imei = imei
	d.byIMEI[imei] = c
	devicesGauge.Set(float64(len(d.byIMEI)))
	d.mu.Unlock()
	if old != nil && old != c {
		log.Info("tag logged in on a new connection; closing the old one", "imei", imei, "old", old.nc.RemoteAddr().String())
		_ = old.nc.Close()
	}
	log.Info("tag logged in", "imei", imei)
}

// AccuracyM is the horizontal accuracy assumed for a valid fix with this many satellites. GT06 reports no
// HDOP, so this is a conservative table: fewer satellites, worse geometry.
func AccuracyM(satellites int) float64 {
	switch {
	case satellites >= 8:
		return 10
	case satellites >= 6:
		return 20
	case satellites >= 4:
		return 50
	default:
		return 100
	}
}

// BatteryPct maps the GT06 voltage level (0 no power, 1 extremely low, 2 very low — the tag's low
// battery alarm, 3 low, 4 medium, 5 high, 6 very high) to a percentage.
func BatteryPct(level int) int32 {
	return [...]int32{0, 5, 10, 25, 50, 75, 100}[level]
}

// ToObservation maps a decoded location, status or alarm packet of device imei to an observation.
// received is when the driver read the frame: the time of a report without a valid fix.
func ToObservation(imei string, p protocol.Packet, received time.Time) *pluginpb.Observation {
	o := &pluginpb.Observation{Device: imei, Time: sdk.Timestamp(received), Source: fmt.Sprintf("gt06:0x%02x", p.Protocol)}
	if g := p.GPS; g != nil && g.Valid {
		o.Time = sdk.Timestamp(g.Time)
		o.HasFix, o.Lat, o.Lon, o.AccuracyM = true, g.Lat, g.Lon, AccuracyM(g.Satellites)
		speed := float64(g.SpeedKmh) / 3.6
		o.SpeedMps = &speed
		if g.Course < 360 {
			h := float64(g.Course)
			o.HeadingDeg = &h
		}
	}
	if t := p.Terminal; t != nil {
		if t.HasLevel && t.Level >= 0 && t.Level <= 6 {
			b := BatteryPct(t.Level)
			o.BatteryPct = &b
		}
		if t.HasInfo {
			ch := t.Charging()
			o.Charging = &ch
		}
		if t.Removed() {
			o.Strap = pluginpb.Strap_STRAP_OPEN
		}
	}
	return o
}

var _ sdk.Driver = (*Driver)(nil)
