package agent

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/plugins/host"
)

// Two CAP hooks with routes: the technical desk gets the equipment alarms, the CAD the breaches; each
// gets nothing of the other's, and both get everything of their own.
func TestHookRoutesDeliverOnlyWhatEachHookWants(t *testing.T) {
	sum, err := host.FileSHA256(capBinary)
	if err != nil {
		t.Fatal(err)
	}
	type receiver struct {
		mu    sync.Mutex
		kinds []string
		srv   *httptest.Server
	}
	newReceiver := func() *receiver {
		r := &receiver{}
		r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			b, _ := io.ReadAll(req.Body)
			if i := strings.Index(string(b), "<valueName>kind</valueName>"); i >= 0 {
				v := string(b[i:])
				v = v[strings.Index(v, "<value>")+7:]
				r.mu.Lock()
				r.kinds = append(r.kinds, v[:strings.Index(v, "<")])
				r.mu.Unlock()
			}
			w.WriteHeader(http.StatusOK)
		}))
		t.Cleanup(r.srv.Close)
		return r
	}
	desk, cad := newReceiver(), newReceiver()
	cfg := DefaultConfig()
	cfg.NodeID = "test-1"
	cfg.DataDir = t.TempDir()
	cfg.APIListen = "127.0.0.1:0"
	cfg.RaftBind = "127.0.0.1:0"
	cfg.Hooks = []PluginConfig{
		{Name: "desk", Path: capBinary, SHA256: sum, Route: &Route{Classes: []alarm.Class{alarm.Technical}},
			Config: []byte(fmt.Sprintf(`{"url": %q, "allow_http": true}`, desk.srv.URL))},
		{Name: "cad", Path: capBinary, SHA256: sum, Route: &Route{Kinds: []alarm.Kind{alarm.Breach}, MinSeverity: alarm.Critical},
			Config: []byte(fmt.Sprintf(`{"url": %q, "allow_http": true}`, cad.srv.URL))},
	}
	n, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	waitFor(t, "leadership and both hooks", func() bool {
		return n.raft.IsLeader() && n.pluginPID("desk") != 0 && n.pluginPID("cad") != 0
	})
	if r := call(t, n, "POST", "/v1/orders", apiOrder); r.status != 201 {
		t.Fatalf("order: %d", r.status)
	}
	// Inside the home (a breach and a warning, police) with a low battery (technical).
	obs := fmt.Sprintf(`[{"device": "864717003283581", "time": %q, "lat": 59.9105, "lon": 10.758, "accuracy_m": 4, "battery_pct": 5}]`,
		time.Now().UTC().Format(time.RFC3339))
	if r := call(t, n, "POST", "/v1/observations", obs); r.status != 200 {
		t.Fatalf("observation: %d", r.status)
	}
	got := func(r *receiver) []string {
		r.mu.Lock()
		defer r.mu.Unlock()
		return append([]string(nil), r.kinds...)
	}
	waitFor(t, "each hook's alarm", func() bool { return len(got(desk)) >= 1 && len(got(cad)) >= 1 })
	// Everything committed so far has been through both effectors once the cursors pass it.
	last := n.Machine().OutboxSeq()
	waitFor(t, "both cursors at the end of the outbox", func() bool {
		return n.Machine().Cursor("desk") >= last && n.Machine().Cursor("cad") >= last
	})
	if k := got(desk); strings.Join(k, ",") != "battery_low" {
		t.Errorf("the technical desk got %v, want only battery_low", k)
	}
	if k := got(cad); strings.Join(k, ",") != "breach" {
		t.Errorf("the CAD got %v, want only breach", k)
	}
}
