package cap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// pki is a test CA with its certificates written as PEM files.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	pool   *x509.CertPool
	serial int64
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key, pool: x509.NewCertPool(), serial: 1}
	p.pool.AddCert(ca)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue makes a leaf certificate (server for 127.0.0.1, or client) and returns it with its PEM files.
func (p *pki) issue(t *testing.T, cn string, server bool) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := p.write(t, cn+".pem", "CERTIFICATE", der)
	keyFile := p.write(t, cn+"-key.pem", "EC PRIVATE KEY", kder)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c, certFile, keyFile
}

// request is what the receiver recorded of one POST.
type request struct {
	Header     http.Header
	Body       []byte
	ClientCert string // CN of the verified client certificate, if any
}

// receiver is a local CAD stand-in over real HTTPS on 127.0.0.1.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
	// answer decides the response for the n-th request (0-based); nil answers 200 with "ok-<n>".
	answer func(n int, w http.ResponseWriter)
}

func newReceiver(t *testing.T, p *pki, requireClient bool) *receiver {
	t.Helper()
	rc := &receiver{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := request{Header: r.Header.Clone(), Body: body}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			req.ClientCert = r.TLS.VerifiedChains[0][0].Subject.CommonName
		}
		rc.mu.Lock()
		n := len(rc.reqs)
		rc.reqs = append(rc.reqs, req)
		answer := rc.answer
		rc.mu.Unlock()
		if answer != nil {
			answer(n, w)
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok-"+string(rune('0'+n%10)))
	}))
	cert, _, _ := p.issue(t, "receiver", true)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if requireClient {
		srv.TLS.ClientAuth, srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, p.pool
	}
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	rc.Server = srv
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func cfgJSON(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// configured returns a hook configured with cfg, closed at the end of the test.
func configured(t *testing.T, cfg map[string]any) *Hook {
	t.Helper()
	h := New(Options{})
	if errs := h.Configure(cfgJSON(t, cfg), "node-1"); len(errs) > 0 {
		t.Fatalf("Configure: %v", errs)
	}
	t.Cleanup(h.Close)
	return h
}

var raisedAt = time.Date(2026, 11, 26, 16, 18, 36, 250_000_000, time.UTC)

// event is one transition of a police breach alarm.
func event(id string, seq uint32, ev, state string) *pluginpb.AlarmEvent {
	at := raisedAt.Add(time.Duration(seq-1) * 30 * time.Second)
	return &pluginpb.AlarmEvent{
		IdempotencyKey: id + ":" + itoa(seq),
		Alarm: &pluginpb.Alarm{
			Id: id, OrderId: "ord-demo", Kind: "breach", Class: "police", Severity: "critical", State: state,
			ZoneId: "home", Device: "864717003283581", RaisedAt: timestamppb.New(raisedAt),
			Position:  &pluginpb.Position{Lat: 59.9105, Lon: 10.758, AccuracyM: 8, Time: timestamppb.New(raisedAt)},
			DistanceM: 7, Message: "offender 864717003283581 is 7 m inside exclusion zone home", Active: true,
		},
		Transition:         &pluginpb.Transition{Seq: seq, State: state, Event: ev, At: timestamppb.New(at), By: "evaluator"},
		ActivePoliceAlarms: 1,
	}
}

func itoa(n uint32) string {
	b := []byte{}
	if n == 0 {
		return "0"
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
