// Package cap is the CAP hook: every alarm transition becomes an OASIS CAP 1.2 alert (Alert, then Update
// and Cancel referencing it) POSTed over HTTPS to a dispatch system (CAD). Optionally it serves an HTTPS
// endpoint where the CAD posts its acknowledgement (a CAP Ack or Update referencing an alert).
package cap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	hclog "github.com/hashicorp/go-hclog"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

// Version is the hook's version, reported in Info.
const Version = "0.1.0"

// ContentType is the media type of a CAP document.
const ContentType = "application/cap+xml"

// ReferenceMax bounds Receipt.reference, in bytes.
const ReferenceMax = 200

const (
	defaultTimeout = 10 * time.Second
	bodyMax        = 64 << 10 // of a receiver's answer read for the receipt or error
	errBodyMax     = 200
)

// Metrics (the node adds plugin and kind labels).
var (
	alertsPosted = sdk.NewCounter("cap_alerts_posted_total",
		"CAP alerts POSTed, by CAP msgType and result (delivered: 2xx; rejected: 4xx; failed: other status; error: no answer).",
		"msg_type", "result")
	lastStatus = sdk.NewGauge("cap_last_status_code", "HTTP status code of the last POST (0: no answer).")
	acksRecv   = sdk.NewCounter("cap_acks_received_total",
		"Acknowledgements posted by the CAD on the ack endpoint, by result (accepted, rejected).", "result")
	lastAckUnix = sdk.NewGauge("cap_last_ack_timestamp_seconds", "When the last acknowledgement was accepted (Unix seconds).")
	acksFwd     = sdk.NewCounter("cap_acks_forwarded_total",
		"Acknowledgements (Ack) and notes (Update) from the CAD passed to the node, by result (done, already: the alarm was no longer raised, not_found, refused, failed: retry).",
		"result")
)

// Config is the hook's config block.
type Config struct {
	URL       string            `json:"url"`
	AllowHTTP bool              `json:"allow_http"`
	CAFile    string            `json:"ca_file"`
	CertFile  string            `json:"cert_file"`
	KeyFile   string            `json:"key_file"`
	Sender    string            `json:"sender"`
	TimeoutS  float64           `json:"timeout_s"`
	Headers   map[string]string `json:"headers"`
	AckListen string            `json:"ack_listen"`
}

var known = []string{"url", "allow_http", "ca_file", "cert_file", "key_file", "sender", "timeout_s", "headers", "ack_listen"}

// Options tune a Hook; zero values give the defaults.
type Options struct {
	Logger hclog.Logger
	Now    func() time.Time // [time.Now]
}

// Ack is an acknowledgement the CAD posted for one of our alerts.
type Ack struct {
	AlarmID    string    // from the referenced identifier (alarm id + ":" + seq)
	Identifier string    // the referenced alert's identifier
	By         string    // the CAD's <sender>
	At         time.Time // the CAD's <sent>
	MsgType    string    // Ack or Update
	Note       string
	Received   time.Time
	// Result is what the node made of it: "acknowledged", "annotated", "already acknowledged or
	// resolved", "recorded only" (no node callbacks: not run by a node), or why it failed.
	Result string
}

// Hook implements sdk.Hook.
type Hook struct {
	opts Options
	log  hclog.Logger

	mu     sync.Mutex
	cfg    Config
	client *http.Client
	first  map[string]Reference // alarm id → reference of its first Alert, as sent by this process
	ack    *ackServer
	acks   []Ack // the last acknowledgements, newest last (bounded)
	last   string
	host   sdk.Host // the node's callbacks; nil when not run by a node (tests)
}

// SetHost receives the node's callbacks (sdk.HostUser): acknowledgements from the CAD go there.
func (h *Hook) SetHost(host sdk.Host) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.host = host
}

var _ sdk.HostUser = (*Hook)(nil)

// New returns an unconfigured hook.
func New(opts Options) *Hook {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Hook{opts: opts, log: opts.Logger, first: map[string]Reference{}}
}

// Info names the hook.
func (h *Hook) Info() sdk.Info { return sdk.Info{Name: "cap", Version: Version} }

// ConfigSchema describes the config block.
func (h *Hook) ConfigSchema() []*pluginpb.ConfigField {
	return []*pluginpb.ConfigField{
		{Name: "url", Type: "string", Required: true, Description: "https:// URL the CAP alerts are POSTed to"},
		{Name: "allow_http", Type: "bool", Description: "accept an http:// url (tests and labs only)", DefaultJson: "false"},
		{Name: "ca_file", Type: "string", Description: "PEM file of the CA(s) to trust for the receiver (instead of the system's); also verifies client certificates on ack_listen"},
		{Name: "cert_file", Type: "string", Description: "PEM client certificate (with key_file); also the certificate of ack_listen"},
		{Name: "key_file", Type: "string", Description: "PEM private key of cert_file"},
		{Name: "sender", Type: "string", Description: `CAP <sender>; default "skjold@<node>"`},
		{Name: "timeout_s", Type: "number", Description: "bound of one POST, seconds", DefaultJson: "10"},
		{Name: "headers", Type: "object", Description: `extra HTTP headers, e.g. {"X-Api-Key": "..."}`},
		{Name: "ack_listen", Type: "string", Description: "host:port of the HTTPS endpoint where the CAD posts acknowledgements (needs cert_file/key_file)"},
	}
}

// ParseConfig checks a config block and fills the defaults. It returns every problem, each naming its
// field. Files are read and the TLS material is loaded by Configure, not here.
func ParseConfig(raw []byte, node string) (Config, []*pluginpb.ConfigError) {
	cfg := Config{TimeoutS: defaultTimeout.Seconds()}
	fields, keys, cerr := sdk.ConfigFields(raw)
	if cerr != nil {
		return cfg, []*pluginpb.ConfigError{cerr}
	}
	var errs []*pluginpb.ConfigError
	bad := func(field, format string, args ...any) { errs = append(errs, sdk.ConfigErr(field, format, args...)) }
	str := func(k string, v json.RawMessage, dst *string) bool {
		if err := json.Unmarshal(v, dst); err != nil || !isJSONString(v) {
			bad(k, "must be a string")
			return false
		}
		return true
	}
	for _, k := range keys {
		v := fields[k]
		switch k {
		case "url", "ca_file", "cert_file", "key_file", "ack_listen":
			var s string
			if !str(k, v, &s) {
				continue
			}
			if strings.TrimSpace(s) == "" {
				bad(k, "must not be empty (leave it out instead)")
				continue
			}
			switch k {
			case "url":
				cfg.URL = s
			case "ca_file":
				cfg.CAFile = s
			case "cert_file":
				cfg.CertFile = s
			case "key_file":
				cfg.KeyFile = s
			case "ack_listen":
				if _, port, err := net.SplitHostPort(s); err != nil {
					bad(k, "%q is not host:port: %v", s, err)
				} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
					bad(k, "%q: port must be a number 0-65535", s)
				}
				cfg.AckListen = s
			}
		case "sender":
			if str(k, v, &cfg.Sender) {
				if cfg.Sender == "" {
					bad(k, "must not be empty (leave it out for skjold@<node>)")
				} else if CAPID(cfg.Sender) != cfg.Sender {
					bad(k, "%q: a CAP sender must not contain spaces, commas, '<', '&', '%%' or control characters", cfg.Sender)
				}
			}
		case "allow_http":
			if err := json.Unmarshal(v, &cfg.AllowHTTP); err != nil {
				bad(k, "must be true or false")
			}
		case "timeout_s":
			var f float64
			if err := json.Unmarshal(v, &f); err != nil {
				bad(k, "must be a number of seconds")
			} else if f <= 0 || f > 300 {
				bad(k, "%v is out of range (0, 300]", f)
			} else {
				cfg.TimeoutS = f
			}
		case "headers":
			var hs map[string]string
			if err := json.Unmarshal(v, &hs); err != nil || hs == nil {
				bad(k, `must be an object of strings, e.g. {"X-Api-Key": "..."}`)
				continue
			}
			names := make([]string, 0, len(hs))
			for n := range hs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				f := "headers." + n
				switch {
				case !validHeaderName(n):
					bad(f, "%q is not a valid HTTP header name", n)
				case strings.EqualFold(n, "Content-Type"), strings.EqualFold(n, "Content-Length"), strings.EqualFold(n, "Host"):
					bad(f, "is set by the hook and cannot be configured")
				case strings.ContainsAny(hs[n], "\r\n\x00"):
					bad(f, "the value must not contain line breaks or NUL")
				}
			}
			cfg.Headers = hs
		default:
			bad(k, "unknown attribute (known: %s)", strings.Join(known, ", "))
		}
	}
	if _, ok := fields["url"]; !ok {
		bad("url", "is required: the https:// address of the CAD's CAP endpoint")
	} else if cfg.URL != "" {
		u, err := url.Parse(cfg.URL)
		switch {
		case err != nil:
			bad("url", "%q is not a URL: %v", cfg.URL, err)
		case u.Host == "":
			bad("url", "%q has no host", cfg.URL)
		case u.Scheme == "https":
		case u.Scheme == "http" && cfg.AllowHTTP:
		case u.Scheme == "http":
			bad("url", "%q is plain http: use https://, or set allow_http = true (tests and labs only)", cfg.URL)
		default:
			bad("url", "%q: the scheme must be https", cfg.URL)
		}
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		if cfg.CertFile == "" {
			bad("cert_file", "is required with key_file (a client certificate needs both)")
		} else {
			bad("key_file", "is required with cert_file (a client certificate needs both)")
		}
	}
	if cfg.AckListen != "" && cfg.CertFile == "" {
		bad("ack_listen", "needs cert_file and key_file: the acknowledgement endpoint serves HTTPS with that certificate")
	}
	if cfg.Sender == "" {
		cfg.Sender = "skjold@" + CAPID(orDefault(node, "node"))
	}
	return cfg, errs
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func isJSONString(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == '"'
}

func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// tlsMaterial loads the CA pool and client certificate named in cfg; errors name the field.
func tlsMaterial(cfg Config) (*x509.CertPool, []tls.Certificate, []*pluginpb.ConfigError) {
	var errs []*pluginpb.ConfigError
	var pool *x509.CertPool
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			errs = append(errs, sdk.ConfigErr("ca_file", "%v", err))
		} else {
			pool = x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, sdk.ConfigErr("ca_file", "%s holds no PEM certificate", cfg.CAFile))
			}
		}
	}
	var certs []tls.Certificate
	if cfg.CertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			field := "cert_file"
			if _, statErr := os.Stat(cfg.KeyFile); statErr != nil || strings.Contains(err.Error(), "private key") {
				field = "key_file"
			}
			errs = append(errs, sdk.ConfigErr(field, "loading the client certificate: %v", err))
		} else {
			certs = []tls.Certificate{c}
		}
	}
	return pool, certs, errs
}

// Configure checks the config, loads the TLS material and (re)starts the acknowledgement endpoint.
func (h *Hook) Configure(raw []byte, node string) []*pluginpb.ConfigError {
	cfg, errs := ParseConfig(raw, node)
	if len(errs) > 0 {
		return errs
	}
	pool, certs, errs := tlsMaterial(cfg)
	if len(errs) > 0 {
		return errs
	}
	tr := &http.Transport{
		Proxy:               nil, // the CAD is reached directly; the plugin has no environment anyway
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: certs},
		TLSHandshakeTimeout: time.Duration(cfg.TimeoutS * float64(time.Second)),
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	client := &http.Client{
		Transport: tr,
		Timeout:   time.Duration(cfg.TimeoutS * float64(time.Second)),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a POST is not followed anywhere: a 3xx is an answer
		},
	}
	h.mu.Lock()
	oldAck, oldCfg := h.ack, h.cfg
	h.mu.Unlock()
	var ack *ackServer
	if cfg.AckListen != "" {
		if oldAck != nil && oldCfg.AckListen == cfg.AckListen {
			oldAck.close() // free the address before listening on it again
			oldAck = nil
			h.mu.Lock()
			h.ack = nil
			h.mu.Unlock()
		}
		var err error
		ack, err = startAck(h, cfg, pool, certs)
		if err != nil {
			return []*pluginpb.ConfigError{sdk.ConfigErr("ack_listen", "%v", err)}
		}
	}
	h.mu.Lock()
	h.cfg, h.client, h.ack = cfg, client, ack
	h.mu.Unlock()
	lastStatus.Add(0) // the family shows from the start, before the first POST
	if oldAck != nil {
		oldAck.close()
	}
	h.log.Info("configured", "url", cfg.URL, "sender", cfg.Sender, "client_cert", cfg.CertFile != "", "ack_listen", cfg.AckListen)
	return nil
}

// AckAddr is the address the acknowledgement endpoint listens on ("" when it is off).
func (h *Hook) AckAddr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ack == nil {
		return ""
	}
	return h.ack.addr()
}

// Close stops the acknowledgement endpoint and idle connections.
func (h *Hook) Close() {
	h.mu.Lock()
	ack, client := h.ack, h.client
	h.ack = nil
	h.mu.Unlock()
	if ack != nil {
		ack.close()
	}
	if client != nil {
		client.CloseIdleConnections()
	}
}

// Health is healthy once configured; the message says how the last POST went and the last CAD ack.
// A receiver that is down does not make the hook unhealthy: the host sees that in its receipts, and a
// restart of the plugin would not bring the CAD back.
func (h *Hook) Health() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client == nil {
		return false, "not configured"
	}
	msg := "url " + h.cfg.URL
	if h.last != "" {
		msg += "; last post: " + h.last
	}
	if h.ack != nil {
		msg += "; acks on " + h.ack.addr()
		if n := len(h.acks); n > 0 {
			a := h.acks[n-1]
			msg += fmt.Sprintf(": last %s of %s by %s at %s", a.MsgType, a.Identifier, a.By, a.At.UTC().Format(time.RFC3339))
			if a.Result != "" {
				msg += " (" + a.Result + ")"
			}
		} else {
			msg += ": none yet"
		}
	}
	return true, msg
}

// Acks returns the acknowledgements received, oldest first.
func (h *Hook) Acks() []Ack {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Ack(nil), h.acks...)
}

// Document builds the CAP document for one event, as Deliver would POST it now.
func (h *Hook) Document(ev *pluginpb.AlarmEvent) (*Alert, []byte, error) {
	h.mu.Lock()
	sender := h.cfg.Sender
	var first *Reference
	if r, ok := h.first[ev.GetAlarm().GetId()]; ok {
		first = &r
	}
	h.mu.Unlock()
	al := BuildAlert(ev, BuildOptions{Sender: sender, First: first, Now: h.opts.Now()})
	doc, err := al.Marshal()
	return al, doc, err
}

// Deliver POSTs the transition as a CAP alert. 2xx is delivered; anything else is an error, which the
// host retries (a 4xx too: see DESIGN.md).
func (h *Hook) Deliver(ctx context.Context, ev *pluginpb.AlarmEvent) (*pluginpb.Receipt, error) {
	h.mu.Lock()
	client, cfg := h.client, h.cfg
	h.mu.Unlock()
	if client == nil {
		return nil, errors.New("not configured")
	}
	if ev.GetAlarm() == nil {
		return nil, errors.New("event without an alarm")
	}
	al, doc, err := h.Document(ev)
	if err != nil {
		return nil, fmt.Errorf("building the CAP document: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	for k, v := range cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "skjold-hook-cap/"+Version)
	resp, err := client.Do(req)
	if err != nil {
		lastStatus.Set(0)
		alertsPosted.Inc(al.MsgType, "error")
		h.setLast(fmt.Sprintf("%s %s: %v", al.MsgType, al.Identifier, err))
		return nil, fmt.Errorf("POST %s: %w", cfg.URL, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, bodyMax))
	_ = resp.Body.Close()
	lastStatus.Set(float64(resp.StatusCode))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		alertsPosted.Inc(al.MsgType, "delivered")
		if al.MsgType == MsgAlert {
			h.mu.Lock()
			h.first[ev.GetAlarm().GetId()] = Reference{Sender: al.Sender, Identifier: al.Identifier, Sent: al.Sent}
			h.mu.Unlock()
		} else if al.MsgType == MsgCancel {
			h.mu.Lock()
			delete(h.first, ev.GetAlarm().GetId()) // the alarm is over; the map stays bounded
			h.mu.Unlock()
		}
		ref := strings.TrimSpace(resp.Header.Get("X-Request-Id"))
		if ref == "" {
			ref = strings.TrimSpace(string(body))
		}
		ref = truncate(ref, ReferenceMax)
		h.setLast(fmt.Sprintf("%s %s delivered (%d)", al.MsgType, al.Identifier, resp.StatusCode))
		return &pluginpb.Receipt{Delivered: true, Reference: ref}, nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		alertsPosted.Inc(al.MsgType, "rejected")
	default:
		alertsPosted.Inc(al.MsgType, "failed")
	}
	msg := fmt.Sprintf("%s %s: the receiver answered %s", al.MsgType, al.Identifier, resp.Status)
	if b := truncate(strings.TrimSpace(string(body)), errBodyMax); b != "" {
		msg += ": " + b
	}
	h.setLast(msg)
	return nil, errors.New(msg)
}

func (h *Hook) setLast(s string) {
	h.mu.Lock()
	h.last = s
	h.mu.Unlock()
}

// truncate cuts s to at most n bytes on a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
