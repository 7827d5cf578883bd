package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/breach"
)

// startNode runs a real node in-process: Raft, Pebble and the HTTP API on loopback, no plugins.
func startNode(t *testing.T, dir string) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID = "test-1"
	cfg.DataDir = dir
	cfg.APIListen = "127.0.0.1:0"
	cfg.RaftBind = "127.0.0.1:0"
	n, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	waitFor(t, "leadership", func() bool { return n.raft.IsLeader() })
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type resp struct {
	status int
	body   []byte
}

func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r resp) errorField(t *testing.T) (code, field, msg string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Field, Message string }
	}
	r.decode(t, &e)
	return e.Error.Code, e.Error.Field, e.Error.Message
}

func call(t *testing.T, n *Node, method, path, body string) resp {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.APIAddr()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, b}
}

const apiOrder = `{
  "id": "ord-0001",
  "reference": "24-123456AST-TOSL/05",
  "basis": "straffeloven-57",
  "valid_from": "2020-11-26T00:00:00Z",
  "offender": {"device": "864717003283581"},
  "protected": [{"device": "unit-0017"}],
  "dynamic_zone": {"radius_m": 500, "warning_m": 1000},
  "zones": [
    {"id": "home", "kind": "exclusion", "warning_m": 200,
     "geometry": {"type": "Polygon", "coordinates": [[[10.75,59.91],[10.76,59.91],[10.76,59.92],[10.75,59.91]]]}}
  ]
}`

func TestOrdersOverHTTP(t *testing.T) {
	n := startNode(t, t.TempDir())
	bad := []struct {
		name, body, field string
		status            int
	}{
		{"unclosed ring", strings.Replace(apiOrder, "[10.75,59.91]]]}", "[10.75,59.9101]]]}", 1), "zones[0].geometry.coordinates[0]", 400},
		{"unknown field", strings.Replace(apiOrder, `"basis"`, `"colour": 1, "basis"`, 1), "colour", 400},
		{"bad radius", strings.Replace(apiOrder, `"radius_m": 500`, `"radius_m": -1`, 1), "dynamic_zone.radius_m", 400},
		{"not json", `{"id": `, "", 400},
	}
	for _, c := range bad {
		r := call(t, n, "POST", "/v1/orders", c.body)
		code, field, msg := r.errorField(t)
		if r.status != c.status || field != c.field || msg == "" || code == "" {
			t.Errorf("%s: %d %s %q %q", c.name, r.status, code, field, msg)
		}
	}
	var list struct{ Orders []json.RawMessage }
	call(t, n, "GET", "/v1/orders", "").decode(t, &list)
	if len(list.Orders) != 0 {
		t.Fatalf("rejected orders were stored: %d", len(list.Orders))
	}
	r := call(t, n, "POST", "/v1/orders", apiOrder)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if r := call(t, n, "POST", "/v1/orders", apiOrder); r.status != http.StatusConflict {
		t.Fatalf("second create: %d %s", r.status, r.body)
	}
	other := strings.Replace(strings.Replace(apiOrder, "ord-0001", "ord-0002", 1), "864717003283581", "999", 1)
	r = call(t, n, "POST", "/v1/orders", other)
	if _, field, _ := r.errorField(t); r.status != http.StatusConflict || field != "protected[0].device" {
		t.Fatalf("device of another order: %d %s", r.status, r.body)
	}
	r = call(t, n, "PUT", "/v1/orders/ord-0001", strings.Replace(apiOrder, "24-123456AST", "24-999999AST", 1))
	var o struct {
		Version   int
		Reference string
	}
	r.decode(t, &o)
	if r.status != 200 || o.Version != 2 || !strings.HasPrefix(o.Reference, "24-999999") {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	if r := call(t, n, "POST", "/v1/orders/ord-0001/end", `{"reason": "x"}`); r.status != 400 {
		t.Fatalf("end without by: %d", r.status)
	}
	r = call(t, n, "POST", "/v1/orders/ord-0001/end", `{"by": "officer-1", "reason": "lifted by the court"}`)
	var ended struct {
		State   string
		EndedBy string `json:"ended_by"`
	}
	r.decode(t, &ended)
	if r.status != 200 || ended.State != "ended" || ended.EndedBy != "officer-1" {
		t.Fatalf("end: %d %s", r.status, r.body)
	}
	if r := call(t, n, "GET", "/v1/orders/nope", ""); r.status != 404 {
		t.Fatalf("missing order: %d", r.status)
	}
}

func TestObservationsAlarmsAndEventsOverHTTP(t *testing.T) {
	n := startNode(t, t.TempDir())
	if r := call(t, n, "POST", "/v1/orders", apiOrder); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	// Subscribe before anything happens.
	req, _ := http.NewRequest("GET", "http://"+n.APIAddr()+"/v1/alarms/events", nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	events := make(chan map[string]json.RawMessage, 64)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev map[string]json.RawMessage
				json.Unmarshal([]byte(d), &ev)
				events <- ev
			}
		}
		close(events)
	}()

	bad := []struct{ body, field string }{
		{`[{"device": "864717003283581", "time": "2026-11-26T12:00:00Z", "lat": 95, "lon": 10}]`, "[0].lat"},
		{`[{"device": "", "time": "2026-11-26T12:00:00Z"}]`, "[0].device"},
		{`[{"device": "x", "time": "2026-11-26T12:00:00Z"}, {"device": "x", "time": "2026-11-26T12:00:00Z", "lat": 59}]`, "[1].lon"},
		{`[{"device": "x", "time": "2026-11-26T12:00:00Z", "speed": 3}]`, "[0].speed"},
		{`[]`, ""},
	}
	for _, c := range bad {
		r := call(t, n, "POST", "/v1/observations", c.body)
		if _, field, _ := r.errorField(t); r.status != 400 || field != c.field {
			t.Errorf("%s: %d %s", c.body, r.status, r.body)
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	obs := fmt.Sprintf(`[{"device": "864717003283581", "time": %q, "lat": 59.9105, "lon": 10.758, "accuracy_m": 4},
	                    {"device": "stranger", "time": %q, "lat": 59.9105, "lon": 10.7502}]`, now.Format(time.RFC3339), now.Format(time.RFC3339))
	r := call(t, n, "POST", "/v1/observations", obs)
	var res struct{ Accepted, Dropped int }
	r.decode(t, &res)
	if r.status != 200 || res.Accepted != 1 || res.Dropped != 1 {
		t.Fatalf("observations: %d %s", r.status, r.body)
	}
	// The breach is on the stream, already committed.
	var breachID string
	for breachID == "" {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			var a alarm.Alarm
			json.Unmarshal(ev["alarm"], &a)
			if a.Kind == alarm.Breach {
				breachID = a.ID
				var key string
				json.Unmarshal(ev["idempotency_key"], &key)
				if key != a.ID+":1" {
					t.Fatalf("idempotency key %q", key)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no breach event")
		}
	}
	var list struct{ Alarms []alarm.Alarm }
	call(t, n, "GET", "/v1/alarms?order=ord-0001", "").decode(t, &list)
	if len(list.Alarms) < 2 {
		t.Fatalf("open alarms: %d", len(list.Alarms))
	}
	if r := call(t, n, "GET", "/v1/alarms?state=bogus", ""); r.status != 400 {
		t.Fatalf("bad state filter: %d", r.status)
	}
	r = call(t, n, "POST", "/v1/alarms/"+breachID+"/ack", `{"by": "operator-1", "note": "patrol 12 sent"}`)
	var acked alarm.Alarm
	r.decode(t, &acked)
	if r.status != 200 || acked.State != alarm.Acknowledged || acked.Last().By != "operator-1" {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	if r := call(t, n, "POST", "/v1/alarms/"+breachID+"/ack", `{"by": "operator-2"}`); r.status != http.StatusConflict {
		t.Fatalf("second ack: %d %s", r.status, r.body)
	}
	if r := call(t, n, "POST", "/v1/alarms/alm-99999999/resolve", `{"by": "operator-2"}`); r.status != 404 {
		t.Fatalf("resolve missing: %d", r.status)
	}
	r = call(t, n, "POST", "/v1/alarms/"+breachID+"/resolve", `{"by": "operator-2", "reason": "arrested"}`)
	if r.status != 200 {
		t.Fatalf("resolve: %d %s", r.status, r.body)
	}
	var dev struct {
		Device  string
		OrderID string `json:"order_id"`
		Role    string
		LastFix *struct{ Lat float64 } `json:"last_fix"`
	}
	call(t, n, "GET", "/v1/devices/864717003283581", "").decode(t, &dev)
	if dev.OrderID != "ord-0001" || dev.Role != "offender" || dev.LastFix == nil || dev.LastFix.Lat != 59.9105 {
		t.Fatalf("device: %+v", dev)
	}
	if r := call(t, n, "GET", "/v1/devices/stranger", ""); r.status != 404 {
		t.Fatalf("unbound device: %d", r.status)
	}
	var track struct{ Fixes []json.RawMessage }
	call(t, n, "GET", "/v1/devices/864717003283581/track", "").decode(t, &track)
	if len(track.Fixes) != 1 {
		t.Fatalf("track: %d fixes", len(track.Fixes))
	}
	var h struct {
		Status             string
		ActivePoliceAlarms int `json:"active_police_alarms"`
	}
	r = call(t, n, "GET", "/v1/health", "")
	r.decode(t, &h)
	if r.status != 200 || h.Status != "ok" || h.ActivePoliceAlarms != 1 {
		t.Fatalf("health: %d %s", r.status, r.body)
	}
	r = call(t, n, "GET", "/metrics", "")
	if r.status != 200 || !bytes.Contains(r.body, []byte("skjold_observations_dropped_total 1")) {
		t.Fatalf("metrics lack the dropped count: %s", r.body)
	}
	// Last-Event-ID replays what a client missed, from the committed outbox.
	req, _ = http.NewRequest("GET", "http://"+n.APIAddr()+"/v1/alarms/events?since=0", nil)
	replay, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Body.Close()
	sc := bufio.NewScanner(replay.Body)
	var ids []string
	for sc.Scan() && len(ids) < 4 {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			ids = append(ids, id)
		}
	}
	// The stream replays the alarm transitions of the outbox, in order; device commands are not events.
	items, _ := n.Machine().OutboxAfter(0, 100)
	var want []string
	for _, it := range items {
		if it.Command == nil && len(want) < 4 {
			want = append(want, fmt.Sprint(it.Seq))
		}
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") || len(ids) != 4 {
		t.Fatalf("replayed ids %v, want %v", ids, want)
	}
	_ = breach.DefaultConfig
}
