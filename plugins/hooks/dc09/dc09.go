// Package dc09 is the SIA DC-09 hook: it reports alarm transitions to an alarm receiving centre (ARC)
// over TCP or UDP, as SIA-DCS or ADM-CID (Contact ID) messages, optionally AES-CBC encrypted, waits for
// the receiver's ACK (NAK: again with a fresh timestamp; DUH: given up) and tests the link with NULL
// messages when idle. The framing is in codec.go, the event mapping in events.go, the reasons in
// DESIGN.md.
package dc09

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

// Version is the hook's version, reported in Info.
const Version = "0.1.0"

// Config is the hook's config block.
type Config struct {
	Address     string        `json:"address"`
	Transport   string        `json:"transport"`
	Account     string        `json:"account"`
	Receiver    string        `json:"receiver"`
	Line        string        `json:"line"`
	Key         []byte        `json:"-"` // decoded from the hex "key"
	Format      string        `json:"format"`
	Timeout     time.Duration `json:"-"` // timeout_s
	Retries     int           `json:"retries"`
	Supervision time.Duration `json:"-"` // supervision_s; 0: off
}

var knownFields = []string{"address", "transport", "account", "receiver", "line", "key", "format", "timeout_s", "retries", "supervision_s"}

// ConfigSchema describes the config block.
func (h *Hook) ConfigSchema() []*pluginpb.ConfigField {
	return []*pluginpb.ConfigField{
		{Name: "address", Type: "string", Required: true, Description: "host:port of the alarm receiving centre's DC-09 receiver"},
		{Name: "transport", Type: "string", Description: `"tcp" or "udp"`, DefaultJson: `"tcp"`},
		{Name: "account", Type: "string", Required: true, Description: "account number at the receiving centre, 3-16 hex characters"},
		{Name: "receiver", Type: "string", Description: "receiver number (R field), hex; omitted when empty"},
		{Name: "line", Type: "string", Description: "line prefix (L field), hex", DefaultJson: `"0"`},
		{Name: "key", Type: "string", Description: "AES key in hex: 32, 48 or 64 hex characters (AES-128/192/256, CBC); empty: not encrypted"},
		{Name: "format", Type: "string", Description: `payload: "SIA-DCS" or "ADM-CID" (Contact ID)`, DefaultJson: `"SIA-DCS"`},
		{Name: "timeout_s", Type: "number", Description: "seconds to wait for the receiver's answer", DefaultJson: "5"},
		{Name: "retries", Type: "number", Description: "attempts after the first one (0-10)", DefaultJson: "3"},
		{Name: "supervision_s", Type: "number", Description: "seconds of idleness after which a NULL link test is sent; 0: off", DefaultJson: "0"},
	}
}

// ParseConfig checks a config block and fills the defaults. It returns every problem, each naming its field.
func ParseConfig(raw []byte) (Config, []*pluginpb.ConfigError) {
	cfg := Config{Transport: "tcp", Line: "0", Format: IDSIA, Timeout: 5 * time.Second, Retries: 3}
	fields, keys, cerr := sdk.ConfigFields(raw)
	if cerr != nil {
		return cfg, []*pluginpb.ConfigError{cerr}
	}
	var errs []*pluginpb.ConfigError
	bad := func(field, format string, args ...any) {
		errs = append(errs, sdk.ConfigErr(field, format, args...))
	}
	str := func(k string, dst *string) bool {
		if err := json.Unmarshal(fields[k], dst); err != nil || bytes.TrimSpace(fields[k])[0] != '"' {
			bad(k, "must be a string")
			return false
		}
		return true
	}
	for _, k := range keys {
		switch k {
		case "address":
			if !str(k, &cfg.Address) {
				continue
			}
			host, port, err := net.SplitHostPort(cfg.Address)
			if err != nil {
				bad(k, "%q is not host:port", cfg.Address)
			} else if p, perr := strconv.Atoi(port); perr != nil || p < 1 || p > 65535 || host == "" {
				bad(k, "%q needs a host and a port number 1-65535", cfg.Address)
			}
		case "transport":
			if str(k, &cfg.Transport) && cfg.Transport != "tcp" && cfg.Transport != "udp" {
				bad(k, `%q is not "tcp" or "udp"`, cfg.Transport)
			}
		case "account":
			if str(k, &cfg.Account) && (len(cfg.Account) < 3 || len(cfg.Account) > 16 || !allHex(cfg.Account)) {
				bad(k, "%q must be 3-16 hex characters", cfg.Account)
			}
		case "receiver":
			if str(k, &cfg.Receiver) && (len(cfg.Receiver) > 6 || !allHex(cfg.Receiver)) {
				bad(k, "%q must be up to 6 hex characters", cfg.Receiver)
			}
		case "line":
			if str(k, &cfg.Line) && (cfg.Line == "" || len(cfg.Line) > 6 || !allHex(cfg.Line)) {
				bad(k, "%q must be 1-6 hex characters", cfg.Line)
			}
		case "key":
			var s string
			if !str(k, &s) || s == "" {
				continue
			}
			b, err := hex.DecodeString(s)
			switch {
			case err != nil:
				bad(k, "is not hex")
			case len(b) != 16 && len(b) != 24 && len(b) != 32:
				bad(k, "is %d bytes; an AES key is 16, 24 or 32 bytes (32, 48 or 64 hex characters)", len(b))
			default:
				cfg.Key = b
			}
		case "format":
			if str(k, &cfg.Format) && cfg.Format != IDSIA && cfg.Format != IDCID {
				bad(k, `%q is not "SIA-DCS" or "ADM-CID"`, cfg.Format)
			}
		case "timeout_s":
			if v, ok := number(fields[k]); !ok || v <= 0 || v > 300 {
				bad(k, "must be a number of seconds above 0 and at most 300")
			} else {
				cfg.Timeout = seconds(v)
			}
		case "retries":
			if v, ok := number(fields[k]); !ok || v != float64(int(v)) || v < 0 || v > 10 {
				bad(k, "must be a whole number 0-10")
			} else {
				cfg.Retries = int(v)
			}
		case "supervision_s":
			if v, ok := number(fields[k]); !ok || v < 0 || v > 86400 {
				bad(k, "must be a number of seconds, 0 (off) to 86400")
			} else {
				cfg.Supervision = seconds(v)
			}
		default:
			bad(k, "unknown attribute (known: %s)", strings.Join(knownFields, ", "))
		}
	}
	for _, req := range []string{"address", "account"} {
		if _, ok := fields[req]; !ok {
			bad(req, "is required")
		}
	}
	return cfg, errs
}

func number(v json.RawMessage) (float64, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		return 0, false
	}
	return f, true
}

func seconds(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }

// Metrics of the hook process.
var (
	mSent     = sdk.NewCounter("dc09_messages_sent_total", "DC-09 messages written to the receiver, every attempt counted", "message")
	mAcks     = sdk.NewCounter("dc09_acks_total", "ACK answers matching a sent message")
	mNaks     = sdk.NewCounter("dc09_naks_total", "NAK answers (message refused, usually its timestamp)")
	mDuhs     = sdk.NewCounter("dc09_duhs_total", "DUH answers (message not understood)")
	mTimeouts = sdk.NewCounter("dc09_timeouts_total", "attempts without an answer within timeout_s")
	mLinkUp   = sdk.NewGauge("dc09_link_up", "1 when the last exchange with the receiver was answered, else 0")
)

// Options tune a Hook; zero values give the defaults.
type Options struct {
	Logger hclog.Logger
	// BackoffMin and BackoffMax bound the pause between attempts of one message (200 ms doubling to 2 s).
	BackoffMin, BackoffMax time.Duration
	// Now is the clock of the timestamps (time.Now).
	Now func() time.Time
	// Pad is the source of encryption pad bytes (crypto/rand).
	Pad io.Reader
}

// Hook implements sdk.Hook.
type Hook struct {
	opts Options
	log  hclog.Logger

	// xmu serialises exchanges: one message in flight on the link. It guards conn, rd and seq.
	xmu  sync.Mutex
	conn net.Conn
	rd   *bufio.Reader
	seq  int

	mu         sync.Mutex // guards the rest; never held across I/O
	cfg        Config
	configured bool
	lastActive time.Time // end of the last exchange (supervision counts idleness from it)
	linkErr    error     // the last exchange's link failure; nil after an answer
	lastAck    time.Time
	receipts   map[string]*pluginpb.Receipt // delivered idempotency keys
	order      []string
	stop, done chan struct{}
}

const maxReceipts = 4096

// New returns an unconfigured hook.
func New(opts Options) *Hook {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 200 * time.Millisecond
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = 10 * opts.BackoffMin
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Hook{opts: opts, log: opts.Logger, receipts: map[string]*pluginpb.Receipt{}}
}

// Info names the hook.
func (h *Hook) Info() sdk.Info { return sdk.Info{Name: "dc09", Version: Version} }

// Configure checks the config. It does not connect: a receiving centre that is down at start is a
// failed delivery (and an unhealthy link), not a refused configuration.
func (h *Hook) Configure(raw []byte, _ string) []*pluginpb.ConfigError {
	cfg, errs := ParseConfig(raw)
	if len(errs) > 0 {
		return errs
	}
	h.Close()
	h.mu.Lock()
	h.cfg, h.configured = cfg, true
	for _, m := range []*sdk.Metric{mAcks, mNaks, mDuhs, mTimeouts} {
		m.Add(0) // every series exists from the start
	}
	mSent.Add(0, cfg.Format)
	if cfg.Supervision > 0 {
		mSent.Add(0, IDNull)
	}
	if h.lastAck.IsZero() {
		mLinkUp.Set(0)
	}
	h.linkErr, h.lastActive = nil, h.opts.Now()
	if cfg.Supervision > 0 {
		h.stop, h.done = make(chan struct{}), make(chan struct{})
		go h.supervise(cfg, h.stop, h.done)
	}
	h.mu.Unlock()
	h.log.Info("configured", "address", cfg.Address, "transport", cfg.Transport, "account", cfg.Account,
		"format", cfg.Format, "encrypted", cfg.Key != nil, "supervision", cfg.Supervision)
	return nil
}

// Health is unhealthy while the last exchange with the receiver (a delivery or a NULL link test) got no
// answer.
func (h *Hook) Health() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.configured {
		return false, "not configured"
	}
	link := fmt.Sprintf("%s %s account %s", h.cfg.Transport, h.cfg.Address, h.cfg.Account)
	if h.linkErr != nil {
		return false, fmt.Sprintf("receiver %s not answering: %v", link, h.linkErr)
	}
	if h.lastAck.IsZero() {
		return true, fmt.Sprintf("receiver %s: nothing sent yet", link)
	}
	return true, fmt.Sprintf("receiver %s: last ACK %s", link, h.lastAck.UTC().Format(time.RFC3339))
}

// Deliver sends a transition and waits for the receiver's ACK.
func (h *Hook) Deliver(ctx context.Context, ev *pluginpb.AlarmEvent) (*pluginpb.Receipt, error) {
	h.mu.Lock()
	cfg, ok := h.cfg, h.configured
	prev := h.receipts[ev.GetIdempotencyKey()]
	h.mu.Unlock()
	if !ok {
		return nil, errors.New("not configured")
	}
	if prev != nil { // at least once upstream, at most once to the receiving centre
		return &pluginpb.Receipt{Delivered: true, Reference: prev.GetReference()}, nil
	}
	act := ActionFor(ev.GetTransition().GetEvent())
	if act == SendNothing {
		return &pluginpb.Receipt{Delivered: true, Reference: "not transmitted: " + ev.GetTransition().GetEvent()}, nil
	}
	data, err := Payload(cfg.Format, cfg.Account, ev, act)
	if err != nil {
		return nil, err
	}
	f := Frame{ID: cfg.Format, Receiver: cfg.Receiver, Line: cfg.Line, Account: cfg.Account, Data: data}
	seq, err := h.exchange(ctx, cfg, f)
	if err != nil {
		h.log.Warn("delivery failed", "key", ev.GetIdempotencyKey(), "seq", seq, "error", err)
		return &pluginpb.Receipt{Delivered: false, Reference: seq, Error: err.Error()}, nil
	}
	r := &pluginpb.Receipt{Delivered: true, Reference: seq}
	h.mu.Lock()
	if key := ev.GetIdempotencyKey(); key != "" {
		h.receipts[key] = r
		h.order = append(h.order, key)
		if len(h.order) > maxReceipts {
			delete(h.receipts, h.order[0])
			h.order = h.order[1:]
		}
	}
	h.mu.Unlock()
	h.log.Debug("delivered", "key", ev.GetIdempotencyKey(), "seq", seq, "data", data)
	return &pluginpb.Receipt{Delivered: true, Reference: seq}, nil
}

// nextSeq advances the sequence number: 0001…9999, then 0001 again. Called with xmu held.
func (h *Hook) nextSeq() string {
	h.seq = h.seq%9999 + 1
	return SeqString(h.seq)
}

// errNak, errTimeout classify a failed attempt.
var (
	errNak     = errors.New("receiver answered NAK (message refused, usually for its timestamp)")
	errTimeout = errors.New("no answer")
)

// exchange sends f with the next sequence number until it is ACKed, at most 1+retries times. It returns
// the sequence number used.
func (h *Hook) exchange(ctx context.Context, cfg Config, f Frame) (string, error) {
	h.xmu.Lock()
	defer h.xmu.Unlock()
	f.Seq = h.nextSeq()
	err := h.attempts(ctx, cfg, f)
	h.mu.Lock()
	now := h.opts.Now()
	h.lastActive = now
	var duh *duhError
	switch {
	case err == nil:
		h.linkErr, h.lastAck = nil, now
		mLinkUp.Set(1)
	case errors.As(err, &duh):
		h.linkErr = nil // the receiver answers: the link is up
		mLinkUp.Set(1)
	case ctx.Err() != nil:
		// cancelled by the caller: says nothing about the link
	default:
		h.linkErr = err
		mLinkUp.Set(0)
	}
	h.mu.Unlock()
	return f.Seq, err
}

type duhError struct{ seq string }

func (e *duhError) Error() string {
	return fmt.Sprintf("receiver answered DUH to message %s: it could not understand it; not repeated", e.seq)
}

func (h *Hook) attempts(ctx context.Context, cfg Config, f Frame) error {
	backoff := h.opts.BackoffMin
	var last error
	for attempt := 0; attempt <= cfg.Retries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("message %s: %w (last attempt: %v)", f.Seq, ctx.Err(), last)
			case <-t.C:
			}
			backoff = min(2*backoff, h.opts.BackoffMax)
		}
		f.Time = h.opts.Now() // a fresh timestamp every attempt (a NAK is usually about it)
		raw, err := Encode(f, cfg.Key, h.opts.Pad)
		if err != nil {
			return err
		}
		kind, err := h.attempt(ctx, cfg, f, raw)
		switch {
		case err == nil && kind == Ack:
			mAcks.Inc()
			return nil
		case err == nil && kind == Nak:
			mNaks.Inc()
			last = errNak
		case err == nil && kind == Duh:
			mDuhs.Inc()
			return &duhError{seq: f.Seq}
		default:
			if errors.Is(err, errTimeout) {
				mTimeouts.Inc()
			}
			last = err
			h.closeConn() // reconnect for the next attempt
		}
		if ctx.Err() != nil {
			return fmt.Errorf("message %s: %w (last attempt: %v)", f.Seq, ctx.Err(), last)
		}
	}
	return fmt.Errorf("message %s to %s %s: no ACK after %d attempts: %v", f.Seq, cfg.Transport, cfg.Address, cfg.Retries+1, last)
}

// attempt writes raw once and reads answers until one about this message arrives or the timeout ends.
func (h *Hook) attempt(ctx context.Context, cfg Config, f Frame, raw []byte) (AckKind, error) {
	if h.conn == nil {
		d := net.Dialer{Timeout: cfg.Timeout}
		c, err := d.DialContext(ctx, cfg.Transport, cfg.Address)
		if err != nil {
			return 0, fmt.Errorf("connect: %w", err)
		}
		h.conn = c
		h.rd = bufio.NewReaderSize(c, MaxFrame+16)
	}
	c := h.conn
	deadline := time.Now().Add(cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(raw); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	mSent.Inc(f.ID)
	buf := make([]byte, MaxFrame+16)
	for {
		var ans []byte
		var err error
		if cfg.Transport == "udp" {
			var n int
			n, err = c.Read(buf)
			ans = buf[:n]
		} else {
			ans, err = readFrame(h.rd)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				return 0, fmt.Errorf("%w within %v", errTimeout, cfg.Timeout)
			}
			return 0, fmt.Errorf("read: %w", err)
		}
		kind, a, err := ParseAck(ans, cfg.Key)
		if err != nil {
			h.log.Warn("unreadable answer ignored", "error", err, "answer", fmt.Sprintf("%q", ans))
			continue
		}
		switch {
		case kind == Nak:
			return Nak, nil
		case a.Seq != f.Seq && !(kind == Duh && a.Seq == "0000"):
			h.log.Debug("answer to another message ignored", "answer", kind, "seq", a.Seq, "want", f.Seq)
			continue
		case kind == Ack && !strings.EqualFold(a.Account, f.Account):
			h.log.Warn("ACK for another account ignored", "account", a.Account, "want", f.Account)
			continue
		}
		return kind, nil
	}
}

// readFrame reads up to and including the next CR, refusing more than MaxFrame bytes.
func readFrame(rd *bufio.Reader) ([]byte, error) {
	b, err := rd.ReadSlice('\r')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("answer longer than %d bytes without CR", MaxFrame)
	}
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

func (h *Hook) closeConn() {
	if h.conn != nil {
		_ = h.conn.Close()
		h.conn, h.rd = nil, nil
	}
}

// supervise sends a NULL message whenever the link has been idle for cfg.Supervision.
func (h *Hook) supervise(cfg Config, stop, done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		h.mu.Lock()
		wait := h.lastActive.Add(cfg.Supervision).Sub(h.opts.Now())
		h.mu.Unlock()
		if wait <= 0 {
			f := Frame{ID: IDNull, Receiver: cfg.Receiver, Line: cfg.Line, Account: cfg.Account}
			if seq, err := h.exchange(ctx, cfg, f); err != nil && ctx.Err() == nil {
				h.log.Warn("link test failed", "seq", seq, "error", err)
			}
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Close stops link supervision and closes the connection.
func (h *Hook) Close() {
	h.mu.Lock()
	stop, done := h.stop, h.done
	h.stop, h.done = nil, nil
	h.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	h.xmu.Lock()
	h.closeConn()
	h.xmu.Unlock()
}

var _ sdk.Hook = (*Hook)(nil)
