package cap

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDeliverAlertUpdateCancelWithReferences(t *testing.T) {
	p := newPKI(t, "test-ca")
	rc := newReceiver(t, p, false)
	rc.answer = func(n int, w http.ResponseWriter) {
		if n == 0 {
			w.Header().Set("X-Request-Id", "  cad-4711  ")
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("\n incident-" + itoa(uint32(n)) + " \n"))
	}
	h := configured(t, map[string]any{"url": rc.URL + "/cap", "ca_file": p.caFile, "headers": map[string]string{"X-Api-Key": "s3cret"}})
	before := map[string]float64{}
	for _, mt := range []string{MsgAlert, MsgUpdate, MsgCancel} {
		before[mt] = alertsPosted.Value(mt, "delivered")
	}

	steps := []struct {
		event, state, msgType, ref string
	}{
		{"raised", "raised", MsgAlert, "cad-4711"},
		{"acknowledged", "acknowledged", MsgUpdate, "incident-1"},
		{"escalated", "acknowledged", MsgUpdate, "incident-2"},
		{"restored", "acknowledged", MsgUpdate, "incident-3"},
		{"resolved", "resolved", MsgCancel, "incident-4"},
	}
	for i, s := range steps {
		rcpt, err := h.Deliver(context.Background(), event("alm-00000003", uint32(i+1), s.event, s.state))
		if err != nil {
			t.Fatalf("step %d (%s): %v", i+1, s.event, err)
		}
		if !rcpt.GetDelivered() || rcpt.GetReference() != s.ref {
			t.Fatalf("step %d: receipt %+v, want delivered with reference %q", i+1, rcpt, s.ref)
		}
	}
	reqs := rc.requests()
	if len(reqs) != len(steps) {
		t.Fatalf("receiver got %d requests, want %d", len(reqs), len(steps))
	}
	var first *Alert
	for i, r := range reqs {
		if ct := r.Header.Get("Content-Type"); ct != ContentType {
			t.Errorf("request %d: Content-Type %q", i, ct)
		}
		if k := r.Header.Get("X-Api-Key"); k != "s3cret" {
			t.Errorf("request %d: configured header missing (%q)", i, k)
		}
		al, err := ParseAlert(r.Body)
		if err != nil {
			t.Fatalf("request %d: %v\n%s", i, err, r.Body)
		}
		wantID := "alm-00000003:" + itoa(uint32(i+1))
		if al.Identifier != wantID || al.MsgType != steps[i].msgType || al.Sender != "skjold@node-1" || al.Scope != "Restricted" || al.Status != "Actual" {
			t.Errorf("request %d: identifier %q msgType %q sender %q scope %q status %q", i, al.Identifier, al.MsgType, al.Sender, al.Scope, al.Status)
		}
		if i == 0 {
			first = al
			if al.References != "" {
				t.Errorf("the Alert has references %q", al.References)
			}
			if al.Sent != "2026-11-26T16:18:36-00:00" {
				t.Errorf("Alert sent = %q, want raised_at without fraction", al.Sent)
			}
			continue
		}
		want := first.Sender + "," + first.Identifier + "," + first.Sent
		if al.References != want {
			t.Errorf("request %d: references %q, want %q", i, al.References, want)
		}
		wantSent := FormatSent(raisedAt.Add(time.Duration(i) * 30 * time.Second))
		if al.Sent != wantSent {
			t.Errorf("request %d: sent %q, want the transition time %q", i, al.Sent, wantSent)
		}
	}
	for mt, n := range map[string]float64{MsgAlert: 1, MsgUpdate: 3, MsgCancel: 1} {
		if got := alertsPosted.Value(mt, "delivered") - before[mt]; got != n {
			t.Errorf("cap_alerts_posted_total{msg_type=%s,result=delivered} rose by %v, want %v", mt, got, n)
		}
	}
	if got := lastStatus.Value(); got != 201 {
		t.Errorf("cap_last_status_code = %v", got)
	}
}

// After a restart the hook has no memory of the first Alert; the references it writes must still be
// exactly the Alert's sender,identifier,sent.
func TestReferencesAfterRestartAreReconstructed(t *testing.T) {
	p := newPKI(t, "test-ca")
	rc := newReceiver(t, p, false)
	cfg := map[string]any{"url": rc.URL, "ca_file": p.caFile, "sender": "skjold-oslo"}
	h1 := configured(t, cfg)
	if _, err := h1.Deliver(context.Background(), event("alm-9", 1, "raised", "raised")); err != nil {
		t.Fatal(err)
	}
	h1.Close()
	h2 := configured(t, cfg) // a new process
	if _, err := h2.Deliver(context.Background(), event("alm-9", 2, "resolved", "resolved")); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	a, _ := ParseAlert(reqs[0].Body)
	c, _ := ParseAlert(reqs[1].Body)
	if c.MsgType != MsgCancel || c.References != "skjold-oslo,alm-9:1,"+a.Sent || a.Identifier != "alm-9:1" {
		t.Fatalf("alert %q %q, cancel %q references %q", a.Identifier, a.Sent, c.MsgType, c.References)
	}
}

func TestClientCertificateRequiredByReceiver(t *testing.T) {
	p := newPKI(t, "police-ca")
	rc := newReceiver(t, p, true)
	_, certFile, keyFile := p.issue(t, "skjold-node-1", false)

	without := configured(t, map[string]any{"url": rc.URL, "ca_file": p.caFile})
	if _, err := without.Deliver(context.Background(), event("alm-1", 1, "raised", "raised")); err == nil {
		t.Fatal("delivered without the client certificate the receiver requires")
	}
	with := configured(t, map[string]any{"url": rc.URL, "ca_file": p.caFile, "cert_file": certFile, "key_file": keyFile})
	rcpt, err := with.Deliver(context.Background(), event("alm-1", 1, "raised", "raised"))
	if err != nil || !rcpt.GetDelivered() {
		t.Fatalf("with client certificate: %v %+v", err, rcpt)
	}
	reqs := rc.requests()
	if len(reqs) != 1 || reqs[0].ClientCert != "skjold-node-1" {
		t.Fatalf("receiver saw %d requests, client cert %q", len(reqs), reqs[len(reqs)-1].ClientCert)
	}
}

func TestUntrustedServerCertificateIsNotDelivered(t *testing.T) {
	p := newPKI(t, "receiver-ca")
	other := newPKI(t, "some-other-ca")
	rc := newReceiver(t, p, false)
	h := configured(t, map[string]any{"url": rc.URL, "ca_file": other.caFile})
	_, err := h.Deliver(context.Background(), event("alm-1", 1, "raised", "raised"))
	if err == nil {
		t.Fatal("delivered to a receiver whose certificate is not trusted")
	}
	if !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), rc.URL) {
		t.Fatalf("error does not say it is the certificate: %v", err)
	}
	if len(rc.requests()) != 0 {
		t.Fatal("the request reached the receiver over an untrusted connection")
	}
	if !strings.Contains(mustHealth(t, h), "certificate") {
		t.Fatalf("health does not tell: %s", mustHealth(t, h))
	}
}

func mustHealth(t *testing.T, h *Hook) string {
	t.Helper()
	ok, msg := h.Health()
	if !ok {
		t.Fatalf("unhealthy: %s", msg)
	}
	return msg
}

func TestReceiverErrorsAreNotDelivered(t *testing.T) {
	p := newPKI(t, "test-ca")
	for _, tc := range []struct {
		code   int
		body   string
		result string
	}{
		{500, "database down", "failed"},
		{503, "", "failed"},
		{400, "cvc-complex-type: element 'foo' not expected", "rejected"},
		{401, "bad api key", "rejected"},
	} {
		t.Run(itoa(uint32(tc.code)), func(t *testing.T) {
			rc := newReceiver(t, p, false)
			rc.answer = func(_ int, w http.ResponseWriter) { w.WriteHeader(tc.code); _, _ = w.Write([]byte(tc.body)) }
			h := configured(t, map[string]any{"url": rc.URL, "ca_file": p.caFile})
			before := alertsPosted.Value(MsgAlert, tc.result)
			rcpt, err := h.Deliver(context.Background(), event("alm-1", 1, "raised", "raised"))
			if err == nil || rcpt.GetDelivered() {
				t.Fatalf("status %d counted as delivered", tc.code)
			}
			if !strings.Contains(err.Error(), itoa(uint32(tc.code))) || !strings.Contains(err.Error(), tc.body) {
				t.Fatalf("error does not carry status and body: %v", err)
			}
			if alertsPosted.Value(MsgAlert, tc.result)-before != 1 {
				t.Fatalf("result %q not counted", tc.result)
			}
			if lastStatus.Value() != float64(tc.code) {
				t.Fatalf("last status %v", lastStatus.Value())
			}
		})
	}
}

func TestTimeoutIsNotDelivered(t *testing.T) {
	p := newPKI(t, "test-ca")
	rc := newReceiver(t, p, false)
	release := make(chan struct{})
	rc.answer = func(int, http.ResponseWriter) { <-release }
	t.Cleanup(func() { close(release) })
	h := configured(t, map[string]any{"url": rc.URL, "ca_file": p.caFile, "timeout_s": 0.3})
	start := time.Now()
	_, err := h.Deliver(context.Background(), event("alm-1", 1, "raised", "raised"))
	if err == nil {
		t.Fatal("a receiver that never answers counted as delivered")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout_s 0.3 took %v", d)
	}
}

func TestHTTPNeedsAllowHTTP(t *testing.T) {
	rc := newPlainReceiver(t)
	h := New(Options{})
	errs := h.Configure(cfgJSON(t, map[string]any{"url": rc}), "n")
	if len(errs) != 1 || errs[0].GetField() != "url" || !strings.Contains(errs[0].GetMessage(), "allow_http") {
		t.Fatalf("http:// without allow_http: %v", errs)
	}
	h = configured(t, map[string]any{"url": rc, "allow_http": true})
	if _, err := h.Deliver(context.Background(), event("alm-1", 1, "raised", "raised")); err != nil {
		t.Fatalf("allow_http: %v", err)
	}
}

func newPlainReceiver(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestConfigErrorsNameTheField(t *testing.T) {
	p := newPKI(t, "test-ca")
	_, certFile, keyFile := p.issue(t, "client", false)
	for _, tc := range []struct {
		name  string
		cfg   string
		field string
		msg   string
	}{
		{"missing url", `{}`, "url", "required"},
		{"url wrong type", `{"url": 5}`, "url", "string"},
		{"url ftp", `{"url": "ftp://cad.example/cap"}`, "url", "https"},
		{"url no host", `{"url": "https:///cap"}`, "url", "host"},
		{"http", `{"url": "http://cad.example/cap"}`, "url", "allow_http"},
		{"allow_http type", `{"url": "https://cad.example", "allow_http": "yes"}`, "allow_http", "true or false"},
		{"unknown", `{"url": "https://cad.example", "urll": "x"}`, "urll", "unknown"},
		{"cert without key", `{"url": "https://cad.example", "cert_file": "` + certFile + `"}`, "key_file", "required"},
		{"key without cert", `{"url": "https://cad.example", "key_file": "` + keyFile + `"}`, "cert_file", "required"},
		{"ca missing", `{"url": "https://cad.example", "ca_file": "/nonexistent/ca.pem"}`, "ca_file", "no such file"},
		{"ca not pem", `{"url": "https://cad.example", "ca_file": "` + keyFile + `"}`, "ca_file", "no PEM certificate"},
		{"key mismatch", `{"url": "https://cad.example", "cert_file": "` + certFile + `", "key_file": "` + p.caFile + `"}`, "key_file", "client certificate"},
		{"sender comma", `{"url": "https://cad.example", "sender": "a,b"}`, "sender", "commas"},
		{"sender space", `{"url": "https://cad.example", "sender": "skjold oslo"}`, "sender", "spaces"},
		{"timeout negative", `{"url": "https://cad.example", "timeout_s": -1}`, "timeout_s", "range"},
		{"timeout type", `{"url": "https://cad.example", "timeout_s": "10"}`, "timeout_s", "number"},
		{"headers type", `{"url": "https://cad.example", "headers": ["a"]}`, "headers", "object"},
		{"header content-type", `{"url": "https://cad.example", "headers": {"content-type": "text/xml"}}`, "headers.content-type", "set by the hook"},
		{"header bad name", `{"url": "https://cad.example", "headers": {"X Key": "v"}}`, "headers.X Key", "header name"},
		{"header newline", `{"url": "https://cad.example", "headers": {"X-Key": "a\r\nEvil: 1"}}`, "headers.X-Key", "line breaks"},
		{"ack_listen bad", `{"url": "https://cad.example", "ack_listen": "nowhere"}`, "ack_listen", "host:port"},
		{"ack_listen without cert", `{"url": "https://cad.example", "ack_listen": "127.0.0.1:0"}`, "ack_listen", "cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := New(Options{}).Configure([]byte(tc.cfg), "n")
			for _, e := range errs {
				if e.GetField() == tc.field && strings.Contains(e.GetMessage(), tc.msg) {
					return
				}
			}
			t.Fatalf("want an error on %q containing %q, got %v", tc.field, tc.msg, errs)
		})
	}
	// A good config with every attribute is accepted and fills the defaults.
	cfg, errs := ParseConfig([]byte(`{"url": "https://cad.example/cap", "cert_file": "c", "key_file": "k", "headers": {"X-Api-Key": "v"}}`), "node-7")
	if len(errs) != 0 || cfg.Sender != "skjold@node-7" || cfg.TimeoutS != 10 {
		t.Fatalf("defaults: %+v %v", cfg, errs)
	}
}
