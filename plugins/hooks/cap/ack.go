package cap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skjold-alarm/skjold/plugins/sdk"
)

// ackMax bounds the acknowledgements kept in memory (the newest are kept).
const ackMax = 256

// ackServer is the HTTPS endpoint where the CAD posts acknowledgements.
type ackServer struct {
	ln  net.Listener
	srv *http.Server
}

func startAck(h *Hook, cfg Config, pool *x509.CertPool, certs []tls.Certificate) (*ackServer, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: certs}
	if pool != nil {
		// The CAD proves who it is with a client certificate from the same CA as its server certificate.
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	ln, err := net.Listen("tcp", cfg.AckListen)
	if err != nil {
		return nil, err
	}
	sender := cfg.Sender
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { h.serveAck(w, r, sender) })
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          h.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	tln := tls.NewListener(ln, tc)
	go func() { _ = srv.Serve(tln) }()
	return &ackServer{ln: ln, srv: srv}, nil
}

func (a *ackServer) addr() string { return a.ln.Addr().String() }

func (a *ackServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}

// serveAck accepts POST of a CAP 1.2 alert with msgType Ack (or Update) whose <references> name at
// least one alert this hook sent (our sender). Each referenced alert is recorded as acknowledged.
func (h *Hook) serveAck(w http.ResponseWriter, r *http.Request, sender string) {
	reject := func(code int, format string, args ...any) {
		acksRecv.Inc("rejected")
		http.Error(w, fmt.Sprintf(format, args...), code)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		reject(http.StatusMethodNotAllowed, "POST a CAP 1.2 Ack")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, bodyMax+1))
	if err != nil {
		reject(http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	if len(body) > bodyMax {
		reject(http.StatusRequestEntityTooLarge, "a CAP Ack is at most %d bytes", bodyMax)
		return
	}
	acks, err := ParseAck(body, sender)
	if err != nil {
		reject(http.StatusBadRequest, "%v", err)
		return
	}
	h.mu.Lock()
	host := h.host
	h.mu.Unlock()
	// Pass each to the node: an Ack acknowledges the alarm, an Update adds the CAD's note to it. The
	// answer is the worst outcome: 503 (the CAD posts again later) before 404 before 400 before 200.
	code := http.StatusOK
	lines := make([]string, 0, len(acks))
	for i := range acks {
		c, result := h.forward(r.Context(), host, acks[i])
		acks[i].Result = result
		code = worse(code, c)
		lines = append(lines, acks[i].Identifier+": "+result)
	}
	now := h.opts.Now()
	h.mu.Lock()
	for i := range acks {
		acks[i].Received = now
		h.acks = append(h.acks, acks[i])
	}
	if n := len(h.acks); n > ackMax {
		h.acks = append([]Ack(nil), h.acks[n-ackMax:]...)
	}
	h.mu.Unlock()
	for _, a := range acks {
		acksRecv.Inc("accepted")
		h.log.Info("acknowledgement from the CAD", "alarm", a.AlarmID, "identifier", a.Identifier, "by", a.By, "at", a.At, "note", a.Note, "result", a.Result)
	}
	lastAckUnix.Set(float64(now.Unix()))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.WriteHeader(code)
	if code == http.StatusOK {
		fmt.Fprintf(w, "acknowledged %d\n", len(acks))
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// forwardTimeout bounds one callback to the node.
const forwardTimeout = 10 * time.Second

// forward passes one acknowledgement to the node and says how it went (an HTTP status for the CAD and a
// short text). Without a node (tests of the hook alone) it is only recorded.
func (h *Hook) forward(ctx context.Context, host sdk.Host, a Ack) (int, string) {
	if host == nil {
		return http.StatusOK, "recorded only"
	}
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	note := fmt.Sprintf("CAP %s %s sent %s", a.MsgType, a.Identifier, a.At.UTC().Format(time.RFC3339))
	if a.Note != "" {
		note += ": " + a.Note
	}
	var err error
	done := "acknowledged"
	if a.MsgType == MsgAck {
		err = host.Acknowledge(ctx, a.AlarmID, a.By, note)
	} else {
		done = "annotated"
		err = host.Annotate(ctx, a.AlarmID, a.By, note)
	}
	switch status.Code(err) {
	case codes.OK:
		acksFwd.Inc("done")
		return http.StatusOK, done
	case codes.FailedPrecondition:
		// The CAD posted it again, or an operator was first: the alarm is taken either way.
		acksFwd.Inc("already")
		return http.StatusOK, "already acknowledged or resolved"
	case codes.NotFound:
		acksFwd.Inc("not_found")
		return http.StatusNotFound, "no such alarm: " + status.Convert(err).Message()
	case codes.InvalidArgument:
		acksFwd.Inc("refused")
		return http.StatusBadRequest, "refused: " + status.Convert(err).Message()
	}
	acksFwd.Inc("failed")
	h.log.Warn("the node did not take the acknowledgement; the CAD must post it again", "alarm", a.AlarmID, "error", err)
	if errors.Is(err, sdk.ErrNoHost) {
		return http.StatusServiceUnavailable, "not passed on: " + err.Error()
	}
	return http.StatusServiceUnavailable, "not passed on: " + status.Convert(err).Message()
}

// worse orders the answers to the CAD: 503 before 404 before 400 before 200.
func worse(a, b int) int {
	rank := func(c int) int {
		switch c {
		case http.StatusServiceUnavailable:
			return 3
		case http.StatusNotFound:
			return 2
		case http.StatusBadRequest:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// ParseAck reads a CAP acknowledgement: an alert in the CAP 1.2 namespace with msgType Ack or Update and
// <references> naming alerts whose sender is ours. It returns one Ack per referenced alert of ours.
func ParseAck(doc []byte, ourSender string) ([]Ack, error) {
	al, err := ParseAlert(doc)
	if err != nil {
		return nil, fmt.Errorf("not a CAP 1.2 alert: %v", err)
	}
	if al.MsgType != MsgAck && al.MsgType != MsgUpdate {
		return nil, fmt.Errorf("msgType %q: an acknowledgement is Ack or Update", al.MsgType)
	}
	if strings.TrimSpace(al.Sender) == "" {
		return nil, errors.New("sender is missing")
	}
	at, err := time.Parse("2006-01-02T15:04:05-07:00", strings.TrimSpace(al.Sent))
	if err != nil {
		return nil, fmt.Errorf("sent %q is not a CAP date-time", al.Sent)
	}
	var out []Ack
	for _, f := range strings.Fields(al.References) {
		parts := strings.Split(f, ",")
		if len(parts) != 3 {
			return nil, fmt.Errorf("references: %q is not sender,identifier,sent", f)
		}
		if parts[0] != ourSender {
			continue
		}
		id := parts[1]
		alarmID := unCAPID(id)
		if i := strings.LastIndexByte(alarmID, ':'); i > 0 {
			alarmID = alarmID[:i]
		}
		out = append(out, Ack{AlarmID: alarmID, Identifier: id, By: al.Sender, At: at, MsgType: al.MsgType, Note: al.Note})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("references name no alert sent by %s", ourSender)
	}
	return out, nil
}

// unCAPID reverses CAPID's percent-encoding.
func unCAPID(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, ok := unhex(s[i+1], s[i+2]); ok {
				b.WriteByte(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(a, b byte) (byte, bool) {
	d := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		}
		return 0, false
	}
	x, ok1 := d(a)
	y, ok2 := d(b)
	return x<<4 | y, ok1 && ok2
}
