package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The cluster benchmarks run three real nodes with mutual TLS on loopback and measure from outside, over
// the HTTP API, as a dispatch integrator would. Each is one fixed-length run: use -benchtime 1x.
//
//	go test -run '^$' -bench Cluster -benchtime 1x ./cmd/skjold

// quietBatch is n observations of tags [first, first+n) far from every zone.
func quietBatch(first, n int, at time.Time) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"device":"tag-%03d","time":%q,"lat":%v,"lon":%v,"accuracy_m":8,"battery_pct":80,"strap":"closed"}`,
			first+i, at.Format(time.RFC3339Nano), 59.80+float64(i%100)*0.001, 10.60)
	}
	b.WriteByte(']')
	return b.String()
}

func probeObservation(dev string, at time.Time) string {
	return fmt.Sprintf(`[{"device":%q,"time":%q,"lat":%v,"lon":%v,"accuracy_m":5,"battery_pct":80,"strap":"closed"}]`,
		dev, at.Format(time.RFC3339Nano), stormInLat, stormInLon)
}

func probeOrder(i int) string {
	return strings.NewReplacer("ord-storm-", "ord-probe-", `"tag-`, `"probe-`, `"unit-`, `"probe-unit-`).Replace(stormOrder(i))
}

func createOrders(b testing.TB, c *testCluster, n int, body func(int) string) {
	var wg sync.WaitGroup
	var failed atomic.Int32
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				if !c.post(i, "/v1/orders", body(i)) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d orders not created", failed.Load())
	}
}

// BenchmarkClusterIngest is the highest sustained rate of observations committed through the three
// nodes' APIs: six writers (two per node) post batches of 500 as fast as the cluster takes them.
func BenchmarkClusterIngest(b *testing.B) {
	c := startCluster(b, 3, nil)
	const tags, batch, writers = 3000, 500, 6
	createOrders(b, c, tags, stormOrder)
	var committed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := http.Client{Timeout: 10 * time.Second}
			node := c.nodes[w%3]
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				first := (w*batch + k*writers*batch) % tags
				resp, err := cl.Post("http://"+node.api+"/v1/observations", "application/json", strings.NewReader(quietBatch(first, batch, time.Now().UTC())))
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					committed.Add(batch)
				}
			}
		}()
	}
	const run = 15 * time.Second
	time.Sleep(2 * time.Second) // warm up
	start, before := time.Now(), committed.Load()
	time.Sleep(run)
	rate := float64(committed.Load()-before) / time.Since(start).Seconds()
	close(stop)
	wg.Wait()
	b.ReportMetric(rate, "obs/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkClusterDeliveryLatency measures, at 5,000 observations/s of background load, the time from
// posting a breaching fix to any node until the CAP receiver has the alarm: ten probes a second, each a
// tag of its own entering its zone deep enough to raise at once.
func BenchmarkClusterDeliveryLatency(b *testing.B) {
	c := startCluster(b, 3, nil)
	const tags, probes = 1000, 300
	createOrders(b, c, tags, stormOrder)
	createOrders(b, c, probes, probeOrder)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // 5,000 obs/s: 50 batches of 100 a second, round the nodes
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			go c.post(k, "/v1/observations", quietBatch((k*100)%tags, 100, time.Now().UTC()))
		}
	}()
	var lat []time.Duration
	for i := range probes {
		dev := fmt.Sprintf("probe-%03d", i)
		sent := time.Now()
		if !c.post(i, "/v1/observations", probeObservation(dev, sent.UTC())) {
			b.Fatalf("probe %d not committed", i)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if at, ok := c.cap.deviceAlerted(dev); ok {
				lat = append(lat, at.Sub(sent))
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("probe %s never reached the CAP receiver", dev)
			}
			select {
			case <-c.cap.wake:
			case <-time.After(5 * time.Millisecond):
			}
		}
		time.Sleep(time.Until(sent.Add(100 * time.Millisecond)))
	}
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkClusterFailover SIGKILLs the leader while probes keep entering their zones through the other
// nodes, and measures the time from the kill to the first alarm the CAP receiver gets from the new
// leader; five times.
func BenchmarkClusterFailover(b *testing.B) {
	c := startCluster(b, 3, nil)
	const rounds, probes = 5, 2000
	createOrders(b, c, probes, probeOrder)
	var took []time.Duration
	next := 0
	for r := range rounds {
		l := c.waitLeader()
		c.kill(l)
		killed := time.Now()
		first := next
		done, stopProbes := make(chan struct{}), make(chan struct{})
		go func() { // a new probe every 20 ms, to the surviving nodes
			defer close(done)
			for ; next < probes; next++ {
				select {
				case <-stopProbes:
					return
				case <-time.After(20 * time.Millisecond):
				}
				go c.post(l+1, "/v1/observations", probeObservation(fmt.Sprintf("probe-%03d", next), time.Now().UTC()))
			}
		}()
		var firstAt, electedAt time.Time
		c.eventually("an alarm delivered after the kill", 60*time.Second, func() bool {
			if electedAt.IsZero() {
				if nl := c.leader(); nl >= 0 && nl != l {
					electedAt = time.Now()
				}
			}
			for i := first; i < probes; i++ {
				if at, ok := c.cap.deviceAlerted(fmt.Sprintf("probe-%03d", i)); ok && (firstAt.IsZero() || at.Before(firstAt)) {
					firstAt = at
				}
			}
			return !firstAt.IsZero()
		})
		close(stopProbes)
		<-done
		took = append(took, firstAt.Sub(killed))
		b.Logf("round %d: killed %s, a new leader seen after %s, the first alarm after %s", r+1, c.nodes[l].id,
			electedAt.Sub(killed).Round(time.Millisecond), firstAt.Sub(killed).Round(time.Millisecond))
		c.start(l)
		c.waitMembers(3)
	}
	slices.Sort(took)
	b.ReportMetric(took[len(took)/2].Seconds(), "median-s")
	b.ReportMetric(took[len(took)-1].Seconds(), "max-s")
	b.ReportMetric(0, "ns/op")
}
