package breach

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/order"
)

// benchOrders builds n orders spread over southern Norway, each with a polygon home, a circle and a
// dynamic zone, and returns their offenders' devices and zone centres.
func benchOrders(b *testing.B, n int) (*Evaluator, []string, [][2]float64) {
	e := New(DefaultConfig())
	rng := rand.New(rand.NewPCG(1, 2))
	devs := make([]string, n)
	centres := make([][2]float64, n)
	e.Begin()
	for i := 0; i < n; i++ {
		lat, lon := 58.5+rng.Float64()*4, 5.5+rng.Float64()*6
		d := 0.002
		home, _ := json.Marshal([][][]float64{{{lon - d, lat - d}, {lon + d, lat - d}, {lon + d, lat + d}, {lon, lat + 1.5*d}, {lon - d, lat + d}, {lon - d, lat - d}}})
		work, _ := json.Marshal([]float64{lon + 0.05, lat + 0.02})
		o := order.Order{
			ID: fmt.Sprintf("ord-%05d", i), Reference: "R", Basis: order.Court, ValidFrom: t0.Add(-time.Hour),
			Offender:    order.Party{Device: fmt.Sprintf("tag-%05d", i)},
			Protected:   []order.Party{{Device: fmt.Sprintf("unit-%05d", i)}},
			DynamicZone: &order.DynamicZone{RadiusM: 500, WarningM: 1000},
			Zones: []order.Zone{
				{ID: "home", Kind: order.Exclusion, WarningM: 200, Geometry: order.Geometry{Type: "Polygon", Coordinates: home}},
				{ID: "work", Kind: order.Exclusion, WarningM: 200, RadiusM: 300, Geometry: order.Geometry{Type: "Point", Coordinates: work}},
			},
		}
		if _, err := e.PutOrder(PutOrder{At: t0, Order: o}); err != nil {
			b.Fatal(err)
		}
		devs[i], centres[i] = o.Offender.Device, [2]float64{lat, lon}
		plat, plon := lat+0.1, lon+0.1
		e.Observe(Observations{At: t0, Obs: []device.Observation{{Device: o.Protected[0].Device, Time: t0, Lat: &plat, Lon: &plon}}})
	}
	e.Finish()
	return e, devs, centres
}

// BenchmarkEvaluate measures observations per second through the evaluator with 10,000 orders: offender
// fixes 0.5–5 km from their zones, in batches of 256 as the state machine applies them.
func BenchmarkEvaluate(b *testing.B) {
	const orders, batch = 10000, 256
	e, devs, centres := benchOrders(b, orders)
	rng := rand.New(rand.NewPCG(3, 4))
	obs := make([]device.Observation, 4096)
	lats, lons, accs := make([]float64, len(obs)), make([]float64, len(obs)), make([]float64, len(obs))
	for i := range obs {
		k := rng.IntN(orders)
		lats[i] = centres[k][0] - 0.005 - rng.Float64()*0.04
		lons[i] = centres[k][1] + (rng.Float64()-0.5)*0.04
		accs[i] = 5 + rng.Float64()*25
		obs[i] = device.Observation{Device: devs[k], Lat: &lats[i], Lon: &lons[i], AccuracyM: &accs[i]}
	}
	at := t0
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		start := done % (len(obs) - batch)
		chunk := obs[start : start+n]
		for i := range chunk {
			at = at.Add(time.Millisecond)
			chunk[i].Time = at
		}
		e.Begin()
		e.Observe(Observations{At: at, Obs: chunk})
		e.Finish()
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
}
