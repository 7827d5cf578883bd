package agent

import (
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/core/state"
	"github.com/skjold-alarm/skjold/plugins/host"
)

var identifierRe = regexp.MustCompile(`<identifier>([^<]+)</identifier>`)

// BenchmarkBreachToCAP measures, on one node, the time from POST /v1/observations of a breaching fix to
// the CAP alert for that breach arriving at a local HTTPS receiver: the API, Raft on Pebble (synced),
// the evaluator, the outbox, the effector, the CAP hook process and its HTTPS POST.
func BenchmarkBreachToCAP(b *testing.B) {
	dir := b.TempDir()
	capBin := capBinary
	sum, err := host.FileSHA256(capBin)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	got := make(chan struct{}, 1024)
	recv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		if m := identifierRe.FindSubmatch(body); m != nil {
			mu.Lock()
			arrived[string(m[1])] = now
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer recv.Close()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: recv.Certificate().Raw}), 0o600)

	cfg := DefaultConfig()
	cfg.NodeID = "bench-1"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.APIListen = "127.0.0.1:0"
	cfg.RaftBind = "127.0.0.1:0"
	cfg.Evaluator.EscalateAfter = nil
	cfg.Hooks = []PluginConfig{{Name: "cap", Path: capBin, SHA256: sum,
		Config: []byte(fmt.Sprintf(`{"url": %q, "ca_file": %q}`, recv.URL, caFile))}}
	n, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer n.Stop()
	for !n.raft.IsLeader() || n.pluginPID("cap") == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	base := "http://" + n.APIAddr()
	post := func(path, body string) {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("%s: %s", path, resp.Status)
		}
	}
	post("/v1/orders", apiOrder)
	at := time.Now().UTC()
	fixAt := func(lat float64) string {
		at = at.Add(time.Second)
		return fmt.Sprintf(`[{"device": "864717003283581", "time": %q, "lat": %v, "lon": 10.758, "accuracy_m": 4}]`, at.Format(time.RFC3339Nano), lat)
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		post("/v1/observations", fixAt(59.9105)) // 55 m inside: a breach on this fix
		var id string
		n.Machine().View(func(ev *breach.Evaluator) {
			for _, a := range ev.Alarms(true, "ord-0001") {
				if a.Kind == alarm.Breach && a.Active {
					id = a.ID
				}
			}
		})
		if id == "" {
			b.Fatal("no breach")
		}
		key := alarm.IdempotencyKey(id, 1)
		for {
			mu.Lock()
			t, ok := arrived[key]
			mu.Unlock()
			if ok {
				lat = append(lat, t.Sub(start))
				break
			}
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				b.Fatalf("alert %s never arrived", key)
			}
		}
		// Close this breach so that the next fix raises a new one; leave to clear the other alarms.
		b.StopTimer()
		for _, a := range n.openAlarms() {
			entry, _ := state.ResolveAlarm(breach.ResolveAlarm{At: time.Now().UTC(), By: "bench", ID: a})
			if _, err := n.Propose(b.Context(), entry); err != nil {
				b.Fatal(err)
			}
		}
		post("/v1/observations", fixAt(59.90))
		post("/v1/observations", fixAt(59.90))
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}

func (n *Node) pluginPID(name string) int {
	for _, s := range n.plugins.Status() {
		if s.Name == name && s.Up {
			return s.PID
		}
	}
	return 0
}

func (n *Node) openAlarms() []string {
	var ids []string
	n.machine.View(func(ev *breach.Evaluator) {
		for _, a := range ev.Alarms(true, "") {
			ids = append(ids, a.ID)
		}
	})
	return ids
}
