package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/plugins/host"
)

// BenchmarkIngest measures POST /v1/observations until committed (Raft on Pebble, synced, applied by
// the evaluator) on one node: 1,000 orders, batches of 100 observations, 8 concurrent clients.
func BenchmarkIngest(b *testing.B) {
	const orders, batch = 1000, 100
	cfg := DefaultConfig()
	cfg.NodeID = "bench-1"
	cfg.DataDir = b.TempDir()
	cfg.APIListen = "127.0.0.1:0"
	cfg.RaftBind = "127.0.0.1:0"
	n, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer n.Stop()
	for !n.raft.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	base := "http://" + n.APIAddr()
	for i := 0; i < orders; i++ {
		lat, lon := 59.0+float64(i%100)*0.02, 10.0+float64(i/100)*0.05
		o := fmt.Sprintf(`{"id": "ord-%04d", "reference": "R", "basis": "straffeloven-57", "valid_from": "2020-01-01T00:00:00Z",
		  "offender": {"device": "tag-%04d"}, "zones": [{"id": "home", "kind": "exclusion", "warning_m": 200, "radius_m": 100,
		  "geometry": {"type": "Point", "coordinates": [%v, %v]}}]}`, i, i, lon, lat)
		resp, err := http.Post(base+"/v1/orders", "application/json", bytes.NewReader([]byte(o)))
		if err != nil || resp.StatusCode != 201 {
			b.Fatalf("order %d: %v %v", i, err, resp.Status)
		}
		resp.Body.Close()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var seq atomic.Int64
	start := time.Now()
	b.SetParallelism(4) // 4 × GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		type obs struct {
			Device    string    `json:"device"`
			Time      time.Time `json:"time"`
			Lat       float64   `json:"lat"`
			Lon       float64   `json:"lon"`
			AccuracyM float64   `json:"accuracy_m"`
		}
		for pb.Next() {
			k := seq.Add(1)
			list := make([]obs, batch)
			for j := range list {
				i := int(k*batch+int64(j)) % orders
				list[j] = obs{fmt.Sprintf("tag-%04d", i), start.Add(time.Duration(k*batch+int64(j)) * time.Millisecond),
					59.0 + float64(i%100)*0.02 - 0.01, 10.0 + float64(i/100)*0.05, 8}
			}
			body, _ := json.Marshal(list)
			resp, err := client.Post(base+"/v1/observations", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "obs/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/batch")
}

// BenchmarkSimFleetIngest drives the node through a real driver plugin: a simulated fleet of 1,000 walking
// tags, each with an order, reporting every 10 ms (100,000 observations a second offered) over the
// plugin's gRPC stream, acknowledged after commit. It reports the observations the node applied per
// second; the offered rate is the ceiling.
func BenchmarkSimFleetIngest(b *testing.B) {
	const tags = 1000
	sum, err := host.FileSHA256(simBinary)
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeID = "bench-1"
	cfg.DataDir = b.TempDir()
	cfg.APIListen = "127.0.0.1:0"
	cfg.RaftBind = "127.0.0.1:0"
	n, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer n.Stop()
	for !n.raft.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	base := "http://" + n.APIAddr()
	for i := 1; i <= tags; i++ {
		o := fmt.Sprintf(`{"id": "ord-%04d", "reference": "R", "basis": "straffeloven-57", "valid_from": "2020-01-01T00:00:00Z",
		  "offender": {"device": "fleet-%04d"}, "zones": [{"id": "home", "kind": "exclusion", "warning_m": 200, "radius_m": 100,
		  "geometry": {"type": "Point", "coordinates": [10.75, 59.91]}}]}`, i, i)
		resp, err := http.Post(base+"/v1/orders", "application/json", bytes.NewReader([]byte(o)))
		if err != nil || resp.StatusCode != 201 {
			b.Fatalf("order %d: %v", i, err)
		}
		resp.Body.Close()
	}
	// Restart the node on the same data with the fleet's driver, so that every order exists before the
	// first report.
	n.Stop()
	cfg.Drivers = []PluginConfig{{Name: "sim", Path: simBinary, SHA256: sum, Config: []byte(fmt.Sprintf(
		`{"seed": 1, "fleet": {"count": %d, "profile": "walking", "centre": [10.75, 59.91], "radius_m": 3000, "interval_s": 0.01, "accuracy_m": 10, "id_prefix": "fleet-"}}`, tags))}}
	n, err = Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer n.Stop()
	start := n.Machine().Stats().Accepted
	for n.Machine().Stats().Accepted == start {
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	from := n.Machine().Stats().Accepted
	t0 := time.Now()
	for n.Machine().Stats().Accepted-from < uint64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	st := n.Machine().Stats()
	if st.Dropped != 0 {
		b.Fatalf("%d observations from the fleet were dropped: its devices should all be bound", st.Dropped)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "obs/s")
}
