package agent

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/plugins/host"
)

// A hook whose receiver is unreachable raises a monitoring fault of its own after hook_fault_after, the
// fault counts toward the siren, and it is restored when deliveries go through again.
func TestHookThatCannotDeliverRaisesAFault(t *testing.T) {
	dir := t.TempDir()
	capBin := capBinary
	sum, err := host.FileSHA256(capBin)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there yet

	cfg := DefaultConfig()
	cfg.NodeID = "test-1"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.APIListen = "127.0.0.1:0"
	cfg.RaftBind = "127.0.0.1:0"
	cfg.HookFaultAfter = time.Second
	cfg.Hooks = []PluginConfig{{Name: "cap", Path: capBin, SHA256: sum,
		Config: []byte(fmt.Sprintf(`{"url": "http://%s/cap", "allow_http": true, "timeout_s": 1}`, addr))}}
	n, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	waitFor(t, "leadership and the hook", func() bool { return n.raft.IsLeader() && n.pluginPID("cap") != 0 })
	if r := call(t, n, "POST", "/v1/orders", apiOrder); r.status != 201 {
		t.Fatalf("order: %d", r.status)
	}
	obs := fmt.Sprintf(`[{"device": "864717003283581", "time": %q, "lat": 59.9105, "lon": 10.758, "accuracy_m": 4}]`, time.Now().UTC().Format(time.RFC3339))
	if r := call(t, n, "POST", "/v1/observations", obs); r.status != 200 {
		t.Fatalf("observation: %d", r.status)
	}
	fault := func() *alarm.Alarm {
		var found *alarm.Alarm
		n.Machine().View(func(ev *breach.Evaluator) {
			for _, a := range ev.Alarms(false, "") {
				if a.Kind == alarm.MonitoringFault && a.Subject == "delivery:test-1/cap" {
					found = &a
				}
			}
		})
		return found
	}
	waitFor(t, "a monitoring fault for the hook that cannot deliver", func() bool { return fault() != nil })
	a := fault()
	if a.Class != alarm.Technical || !a.Active || !strings.Contains(a.Message, "cannot deliver") {
		t.Fatalf("fault %+v", a)
	}
	var siren int
	items, _ := n.Machine().OutboxAfter(0, 1000)
	for _, it := range items {
		if it.Command == nil && it.Change.Alarm.ID == a.ID {
			siren = it.Change.SirenAlarms
		}
	}
	if siren < 1 {
		t.Fatalf("the fault does not count toward the siren: siren_alarms = %d", siren)
	}

	// The receiver comes up: everything waiting is delivered, and the fault is restored.
	got := make(chan string, 100)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path
		w.WriteHeader(http.StatusOK)
	})}
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("nothing delivered after the receiver came up")
	}
	waitFor(t, "the fault restored", func() bool { f := fault(); return f != nil && !f.Active })
}
