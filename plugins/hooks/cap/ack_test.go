package cap

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skjold-alarm/skjold/plugins/sdk"
)

func ackDoc(sender, msgType, refs string) []byte {
	al := &Alert{
		Identifier: "CAD-2026-0042", Sender: sender, Sent: "2026-11-26T16:19:10+01:00", Status: "Actual",
		MsgType: msgType, Scope: "Restricted", Note: "patrol 12 dispatched", References: refs,
	}
	doc, _ := al.Marshal()
	return doc
}

func TestAckEndpointRecordsCADAcknowledgement(t *testing.T) {
	p := newPKI(t, "police-ca")
	rc := newReceiver(t, p, false)
	_, hookCert, hookKey := p.issue(t, "skjold-node-1", true)
	h := configured(t, map[string]any{
		"url": rc.URL, "ca_file": p.caFile, "cert_file": hookCert, "key_file": hookKey,
		"sender": "skjold-oslo", "ack_listen": "127.0.0.1:0",
	})
	if _, err := h.Deliver(context.Background(), event("alm-00000003", 1, "raised", "raised")); err != nil {
		t.Fatal(err)
	}
	sent, _ := ParseAlert(rc.requests()[0].Body)
	ref := sent.Sender + "," + sent.Identifier + "," + sent.Sent
	if ok, msg := h.Health(); !ok || !strings.Contains(msg, "none yet") {
		t.Fatalf("health before any ack: %v %s", ok, msg)
	}

	cadCert, _, _ := p.issue(t, "cad-oslo", false)
	post := func(cert *tls.Certificate, body []byte) (int, string, error) {
		tc := &tls.Config{RootCAs: p.pool}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
		defer c.CloseIdleConnections()
		resp, err := c.Post("https://"+h.AckAddr()+"/cap/ack", ContentType, bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	accepted := acksRecv.Value("accepted")
	rejected := acksRecv.Value("rejected")

	// Without a client certificate the CAD is not let in.
	if _, _, err := post(nil, ackDoc("cad@politiet.no", MsgAck, ref)); err == nil {
		t.Fatal("an acknowledgement without a client certificate was accepted")
	}
	// An Ack that references an alert of another sender is refused.
	if code, body, err := post(&cadCert, ackDoc("cad@politiet.no", MsgAck, "someone-else,x:1,2026-11-26T16:18:36-00:00")); err != nil || code != http.StatusBadRequest {
		t.Fatalf("foreign reference: %d %s %v", code, body, err)
	}
	// Not CAP.
	if code, _, _ := post(&cadCert, []byte("<ack/>")); code != http.StatusBadRequest {
		t.Fatalf("not CAP: %d", code)
	}
	// A proper Ack.
	code, body, err := post(&cadCert, ackDoc("cad@politiet.no", MsgAck, ref))
	if err != nil || code != http.StatusOK {
		t.Fatalf("ack: %d %s %v", code, body, err)
	}
	acks := h.Acks()
	if len(acks) != 1 {
		t.Fatalf("acks %+v", acks)
	}
	a := acks[0]
	wantAt := time.Date(2026, 11, 26, 15, 19, 10, 0, time.UTC)
	if a.AlarmID != "alm-00000003" || a.Identifier != "alm-00000003:1" || a.By != "cad@politiet.no" || !a.At.Equal(wantAt) || a.Note != "patrol 12 dispatched" || a.MsgType != MsgAck {
		t.Fatalf("ack recorded as %+v", a)
	}
	if ok, msg := h.Health(); !ok || !strings.Contains(msg, "Ack of alm-00000003:1 by cad@politiet.no at 2026-11-26T15:19:10Z") {
		t.Fatalf("health: %s", msg)
	}
	if acksRecv.Value("accepted")-accepted != 1 || acksRecv.Value("rejected")-rejected != 2 {
		t.Fatalf("ack metrics: accepted +%v rejected +%v", acksRecv.Value("accepted")-accepted, acksRecv.Value("rejected")-rejected)
	}
	if lastAckUnix.Value() == 0 {
		t.Fatal("cap_last_ack_timestamp_seconds not set")
	}
}

func TestParseAck(t *testing.T) {
	refs := "skjold,alm%201%2C2:1,2026-11-26T16:18:36-00:00 other,y:1,2026-11-26T16:18:36-00:00 skjold,alm-2:3,2026-11-26T16:18:36-00:00"
	acks, err := ParseAck(ackDoc("cad", MsgUpdate, refs), "skjold")
	if err != nil || len(acks) != 2 || acks[0].AlarmID != "alm 1,2" || acks[1].AlarmID != "alm-2" {
		t.Fatalf("%+v %v", acks, err)
	}
	for name, doc := range map[string][]byte{
		"alert":     ackDoc("cad", MsgAlert, refs),
		"no refs":   ackDoc("cad", MsgAck, ""),
		"bad ref":   ackDoc("cad", MsgAck, "skjold,x"),
		"no sender": ackDoc("", MsgAck, refs),
		"bad sent":  bytes.Replace(ackDoc("cad", MsgAck, refs), []byte("+01:00</sent>"), []byte("</sent>"), 1),
		"cap 1.1":   bytes.Replace(ackDoc("cad", MsgAck, refs), []byte("cap:1.2"), []byte("cap:1.1"), 1),
	} {
		if _, err := ParseAck(doc, "skjold"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// fakeHost answers the hook's callbacks as the node would.
type fakeHost struct {
	mu    sync.Mutex
	calls []string
	err   map[string]error // by alarm id
}

func (f *fakeHost) record(what, alarmID, by, note string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, what+" "+alarmID+" "+by+" "+note)
	return f.err[alarmID]
}

func (f *fakeHost) Acknowledge(_ context.Context, alarmID, by, note string) error {
	return f.record("ack", alarmID, by, note)
}

func (f *fakeHost) Annotate(_ context.Context, alarmID, by, note string) error {
	return f.record("note", alarmID, by, note)
}

// The endpoint passes an Ack to Host.Acknowledge and an Update to Host.Annotate, and answers the CAD by
// the node's outcome: taken or already taken 200, unknown alarm 404, not committed 503.
func TestAckEndpointCallsTheHost(t *testing.T) {
	p := newPKI(t, "police-ca")
	rc := newReceiver(t, p, false)
	_, hookCert, hookKey := p.issue(t, "skjold-node-1", true)
	fh := &fakeHost{err: map[string]error{
		"alm-2": status.Error(codes.FailedPrecondition, `alarm "alm-2" is acknowledged`),
		"alm-3": status.Error(codes.NotFound, `alarm "alm-3" does not exist`),
		"alm-4": status.Error(codes.Unavailable, "not committed: no leader"),
		"alm-5": fmt.Errorf("%w: not configured yet", sdk.ErrNoHost),
	}}
	h := New(Options{})
	h.SetHost(fh)
	raw, _ := json.Marshal(map[string]any{"url": rc.URL, "ca_file": p.caFile, "cert_file": hookCert, "key_file": hookKey,
		"sender": "skjold-oslo", "ack_listen": "127.0.0.1:0"})
	if errs := h.Configure(raw, "node-1"); len(errs) > 0 {
		t.Fatal(errs)
	}
	t.Cleanup(h.Close)
	cadCert, _, _ := p.issue(t, "cad-oslo", false)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{cadCert}}}, Timeout: 5 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	post := func(msgType string, alarmIDs ...string) (int, string, http.Header) {
		t.Helper()
		var refs []string
		for _, id := range alarmIDs {
			refs = append(refs, "skjold-oslo,"+id+":1,2026-11-26T15:18:36-00:00")
		}
		resp, err := c.Post("https://"+h.AckAddr()+"/", ContentType, bytes.NewReader(ackDoc("cad@politiet.no", msgType, strings.Join(refs, " "))))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, tc := range []struct {
		msgType string
		ids     []string
		code    int
		body    string
	}{
		{MsgAck, []string{"alm-1"}, 200, "alm-1:1: acknowledged"},
		{MsgUpdate, []string{"alm-1"}, 200, "alm-1:1: annotated"},
		{MsgAck, []string{"alm-2"}, 200, "already acknowledged or resolved"},
		{MsgAck, []string{"alm-1", "alm-3"}, 404, "alm-3:1: no such alarm"},
		{MsgAck, []string{"alm-3", "alm-4"}, 503, "alm-4:1: not passed on: not committed: no leader"},
		{MsgAck, []string{"alm-5"}, 503, "the node offers no callbacks"},
	} {
		code, body, hdr := post(tc.msgType, tc.ids...)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s %v: %d %q, want %d with %q", tc.msgType, tc.ids, code, body, tc.code, tc.body)
		}
		if code == 503 && hdr.Get("Retry-After") == "" {
			t.Errorf("%s %v: 503 without Retry-After", tc.msgType, tc.ids)
		}
	}
	fh.mu.Lock()
	first := fh.calls[0]
	second := fh.calls[1]
	fh.mu.Unlock()
	if first != "ack alm-1 cad@politiet.no CAP Ack alm-1:1 sent 2026-11-26T15:19:10Z: patrol 12 dispatched" ||
		!strings.HasPrefix(second, "note alm-1 cad@politiet.no CAP Update alm-1:1") {
		t.Fatalf("host calls %q, %q", first, second)
	}
	if a := h.Acks(); len(a) == 0 || a[len(a)-1].Result == "" {
		t.Fatalf("results not recorded: %+v", a)
	}
}
