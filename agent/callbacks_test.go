package agent

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/plugins/hooks/cap"
	"github.com/skjold-alarm/skjold/plugins/host"
)

// selfSigned writes a self-signed server certificate for 127.0.0.1 and its key, and returns a pool that
// trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "skjold-node-1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// capReceiver is the CAD's CAP endpoint: it keeps every document POSTed to it.
type capReceiver struct {
	mu   sync.Mutex
	docs []*cap.Alert
}

func (c *capReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	al, err := cap.ParseAlert(b)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.docs = append(c.docs, al)
	c.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (c *capReceiver) find(match func(*cap.Alert) bool) *cap.Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.docs {
		if match(d) {
			return d
		}
	}
	return nil
}

func param(al *cap.Alert, name string) string {
	for _, in := range al.Info {
		for _, p := range in.Parameters {
			if p.ValueName == name {
				return p.Value
			}
		}
	}
	return ""
}

// The CAD acknowledges an alarm on the CAP hook's endpoint; the hook calls the node back through the
// go-plugin broker, and the alarm shows acknowledged by the hook and the CAD's sender. A repeated Ack is
// answered as already taken, an Update adds the CAD's note, an Ack of an unknown alarm is refused.
func TestCADAcknowledgementReachesTheAlarm(t *testing.T) {
	dir := t.TempDir()
	capBin := capBinary
	sum, err := host.FileSHA256(capBin)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, pool := selfSigned(t, dir)
	rc := &capReceiver{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rc}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	ackAddr := freeAddr(t)

	cfg := DefaultConfig()
	cfg.NodeID = "test-1"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.APIListen = "127.0.0.1:0"
	cfg.RaftBind = "127.0.0.1:0"
	hookCfg := fmt.Sprintf(`{"url": "http://%s/cap", "allow_http": true, "sender": "skjold-oslo",
		"cert_file": %q, "key_file": %q, "ack_listen": %q}`, l.Addr(), certFile, keyFile, ackAddr)
	cfg.Hooks = []PluginConfig{{Name: "cap", Path: capBin, SHA256: sum, Config: []byte(hookCfg)}}
	n, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	waitFor(t, "leadership and the hook", func() bool { return n.raft.IsLeader() && n.pluginPID("cap") != 0 })
	if r := call(t, n, "POST", "/v1/orders", apiOrder); r.status != 201 {
		t.Fatalf("order: %d %s", r.status, r.body)
	}
	obs := fmt.Sprintf(`[{"device": "864717003283581", "time": %q, "lat": 59.9105, "lon": 10.758, "accuracy_m": 4}]`, time.Now().UTC().Format(time.RFC3339))
	if r := call(t, n, "POST", "/v1/observations", obs); r.status != 200 {
		t.Fatalf("observation: %d %s", r.status, r.body)
	}

	// The breach reaches the CAD as a CAP Alert.
	var alert *cap.Alert
	waitFor(t, "the CAP Alert of the breach", func() bool {
		alert = rc.find(func(a *cap.Alert) bool { return a.MsgType == cap.MsgAlert && param(a, "class") == "police" })
		return alert != nil
	})
	alarmID := param(alert, "alarm_id")
	// The zone travels with the alert: the node attaches the order's geometry on delivery.
	if zoned := rc.find(func(a *cap.Alert) bool {
		return a.MsgType == cap.MsgAlert && len(a.Info) > 0 && len(a.Info[0].Areas) > 1 && len(a.Info[0].Areas[0].Polygons) == 1
	}); zoned == nil {
		t.Error("no CAP Alert carries the zone polygon in its <area>")
	}
	getAlarm := func() alarm.Alarm {
		var a alarm.Alarm
		n.Machine().View(func(ev *breach.Evaluator) { a, _ = ev.Alarm(alarmID) })
		return a
	}
	if a := getAlarm(); a.State != alarm.Raised {
		t.Fatalf("alarm %s is %s before the CAD answered", alarmID, a.State)
	}

	// The CAD acknowledges it on the hook's endpoint.
	cad := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 20 * time.Second}
	t.Cleanup(cad.CloseIdleConnections)
	post := func(msgType, refs, note string) (int, string) {
		t.Helper()
		doc, err := (&cap.Alert{Identifier: "CAD-2026-0042", Sender: "cad@politiet.no", Sent: "2026-11-26T16:19:10+01:00",
			Status: "Actual", MsgType: msgType, Scope: "Restricted", Note: note, References: refs}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cad.Post("https://"+ackAddr+"/cap/ack", cap.ContentType, bytes.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ref := alert.Sender + "," + alert.Identifier + "," + alert.Sent
	waitFor(t, "the acknowledgement endpoint", func() bool {
		c, err := net.Dial("tcp", ackAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if code, body := post(cap.MsgAck, ref, "patrol 12 dispatched"); code != http.StatusOK || !strings.Contains(body, "acknowledged") {
		t.Fatalf("ack: %d %s", code, body)
	}
	a := getAlarm()
	last := a.Transitions[len(a.Transitions)-1]
	if a.State != alarm.Acknowledged || last.Event != alarm.EventAcknowledged || last.By != "hook:cap/cad@politiet.no" ||
		!strings.Contains(last.Note, "patrol 12 dispatched") || !strings.Contains(last.Note, alert.Identifier) {
		t.Fatalf("after the CAD's Ack: state %s, last transition %+v", a.State, last)
	}
	// The acknowledgement goes back out to the CAD as an Update naming who took it.
	waitFor(t, "the CAP Update of the acknowledgement", func() bool {
		return rc.find(func(d *cap.Alert) bool {
			return d.MsgType == cap.MsgUpdate && param(d, "alarm_id") == alarmID && param(d, "event") == "acknowledged" &&
				param(d, "by") == "hook:cap/cad@politiet.no"
		}) != nil
	})

	// The CAD posts its Ack again: the alarm is taken, nothing changes.
	if code, body := post(cap.MsgAck, ref, "patrol 12 dispatched"); code != http.StatusOK || !strings.Contains(body, "already") {
		t.Fatalf("repeated ack: %d %s", code, body)
	}
	if got := len(getAlarm().Transitions); got != len(a.Transitions) {
		t.Fatalf("a repeated Ack added a transition: %d, was %d", got, len(a.Transitions))
	}

	// An Update from the CAD annotates the alarm; its state stays.
	if code, body := post(cap.MsgUpdate, ref, "patrol 12 on site"); code != http.StatusOK || !strings.Contains(body, "annotated") {
		t.Fatalf("update: %d %s", code, body)
	}
	a = getAlarm()
	last = a.Transitions[len(a.Transitions)-1]
	if a.State != alarm.Acknowledged || last.Event != breach.EventAnnotated || last.State != alarm.Acknowledged ||
		last.By != "hook:cap/cad@politiet.no" || !strings.Contains(last.Note, "patrol 12 on site") {
		t.Fatalf("after the CAD's Update: state %s, last transition %+v", a.State, last)
	}

	// An Ack of an alarm the node does not have.
	if code, body := post(cap.MsgAck, alert.Sender+",alm-99999999:1,"+alert.Sent, ""); code != http.StatusNotFound {
		t.Fatalf("unknown alarm: %d %s", code, body)
	}
}
