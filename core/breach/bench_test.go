package breach

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/geo"
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
// fixes 0.5–5 km from their zones, in batches of 256 as the state machine applies them, after every tag
// has reported three times.
func BenchmarkEvaluate(b *testing.B) {
	const orders, batch = 10000, 256
	e, devs, centres := benchOrders(b, orders)
	// Each tag has its place 0.5–5 km from its zones and reports there again and again (a tag that
	// jumps kilometres between reports would raise approach alarms on every fix).
	rng := rand.New(rand.NewPCG(3, 4))
	obs := make([]device.Observation, orders)
	lats, lons, accs := make([]float64, len(obs)), make([]float64, len(obs)), make([]float64, len(obs))
	for i, k := range rng.Perm(orders) {
		lats[i] = centres[k][0] - 0.005 - rng.Float64()*0.04
		lons[i] = centres[k][1] + (rng.Float64()-0.5)*0.04
		accs[i] = 5 + rng.Float64()*25
		obs[i] = device.Observation{Device: devs[k], Lat: &lats[i], Lon: &lons[i], AccuracyM: &accs[i]}
	}
	asDecoded(obs)
	at := t0
	next := 0
	run := func(total int) {
		for done := 0; done < total; {
			n := min(batch, total-done)
			start := next % (len(obs) - batch)
			chunk := obs[start : start+n]
			for i := range chunk {
				at = at.Add(time.Millisecond)
				chunk[i].Time = at
			}
			e.Begin()
			e.Observe(Observations{At: at, Obs: chunk})
			e.Finish()
			done += n
			next += n
		}
	}
	run(3 * len(obs)) // steady state, as in BenchmarkEvaluateNational
	measure(b, run)
}

// nationalOrders builds n orders across Norway, each with a 256-vertex home polygon (~300 m across), a
// 300 m circle and a 256-vertex area of a few kilometres, as a national deployment would.
func nationalOrders(b *testing.B, n int) (*Evaluator, []string, [][2]float64) {
	e := New(DefaultConfig())
	rng := rand.New(rand.NewPCG(5, 6))
	devs := make([]string, n)
	centres := make([][2]float64, n)
	ring := func(lat, lon, rM float64) []byte {
		// What json.Marshal of [][][]float64 gives, written directly: the setup is 100,000 of these.
		c := append(make([]byte, 0, 256*40), "[["...)
		var first []byte
		for k := 0; k < 256; k++ {
			a := 2 * math.Pi * float64(k) / 256
			r := rM * (0.8 + 0.2*math.Sin(5*a))
			n := len(c)
			c = append(c, '[')
			c = strconv.AppendFloat(c, lon+r*math.Cos(a)/(111320*math.Cos(lat*math.Pi/180)), 'f', -1, 64)
			c = append(c, ',')
			c = strconv.AppendFloat(c, lat+r*math.Sin(a)/111320, 'f', -1, 64)
			c = append(c, "],"...)
			if k == 0 {
				first = c[n : len(c)-1]
			}
		}
		c = append(c, first...)
		return append(c, "]]"...)
	}
	for i := 0; i < n; i++ {
		lat, lon := 58.2+rng.Float64()*12.5, 5.5+rng.Float64()*24
		work, _ := json.Marshal([]float64{lon + nationalWork.dLon, lat + nationalWork.dLat})
		o := order.Order{
			ID: fmt.Sprintf("ord-%06d", i), Reference: "R", Basis: order.Court, ValidFrom: t0.Add(-time.Hour),
			Offender: order.Party{Device: fmt.Sprintf("tag-%06d", i)},
			Zones: []order.Zone{
				{ID: "home", Kind: order.Exclusion, WarningM: 200, Geometry: order.Geometry{Type: "Polygon", Coordinates: ring(lat, lon, 150)}},
				{ID: "work", Kind: order.Exclusion, WarningM: 200, RadiusM: nationalWork.r, Geometry: order.Geometry{Type: "Point", Coordinates: work}},
				{ID: "town", Kind: order.Exclusion, Geometry: order.Geometry{Type: "Polygon", Coordinates: ring(lat+nationalTown.dLat, lon+nationalTown.dLon, nationalTown.r)}},
			},
		}
		e.Begin()
		if _, err := e.PutOrder(PutOrder{At: t0, Order: o}); err != nil {
			b.Fatal(err)
		}
		e.Finish()
		devs[i], centres[i] = o.Offender.Device, [2]float64{lat, lon}
	}
	return e, devs, centres
}

// BenchmarkEvaluateNational: 50,000 orders with three zones each (two of 256 vertices), 5 % of fixes
// within 200 m of a zone, the rest 1–10 km from the home and at least 1 km from the other two zones, as
// the mix has it; one goroutine, batches of 250 as the state machine applies them. Each tag
// reports every 10 s; ticks move the track window on once a minute but are measured on their own
// (BenchmarkTickNational), as they cost per second, not per observation. Measured in steady state, after
// every tag has reported for longer than the track window.
func BenchmarkEvaluateNational(b *testing.B) { benchNational(b, false) }

// BenchmarkEvaluateNationalCrowded is BenchmarkEvaluateNational with the far fixes drawn 1–10 km from
// the home whatever the other zones: a tenth or so of all fixes then fall near or inside the town zone
// (a 2.5 km area 6 km away), and 3–4 % of the tags sit in an exclusion zone with an open breach that
// every report updates. A harder mix than a district's, kept to show what crowding costs.
// BenchmarkEvaluateNational's numbers before the mix was drawn were of this one.
func BenchmarkEvaluateNationalCrowded(b *testing.B) { benchNational(b, true) }

// nationalRuns holds each national benchmark's evaluator and tags, built once per process (writing 50,000
// orders takes a minute or more): with -count N the same steady state is measured N times, each run
// going on from where the last stopped.
var nationalRuns = map[bool]func(b *testing.B, n int){}

func benchNational(b *testing.B, crowded bool) {
	run := nationalRuns[crowded]
	if run == nil {
		run = nationalRun(b, crowded)
		nationalRuns[crowded] = run
	}
	measure(b, func(n int) { run(b, n) })
}

// nationalRun builds a national benchmark and brings it to its steady state; run(b, n) applies the next n
// reports.
func nationalRun(b *testing.B, crowded bool) func(b *testing.B, n int) {
	// Batches of 250 divide the tags evenly: every tag reports once a round, all at the round's time.
	const orders, batch = 50000, 250
	e, devs, centres := nationalOrders(b, orders)
	// Each tag has its place and reports from it again and again (see BenchmarkEvaluate).
	rng := rand.New(rand.NewPCG(8, 9))
	obs := make([]device.Observation, orders)
	vals := make([]float64, 3*len(obs))
	for i, k := range rng.Perm(orders) {
		near := rng.Float64() < 0.05
		var lat, lon float64
		for {
			dist := 1000 + rng.Float64()*9000
			if near {
				dist = 150 + rng.Float64()*200 // near the home polygon (radius 120–150 m)
			}
			a := rng.Float64() * 2 * math.Pi
			lat = centres[k][0] + dist*math.Sin(a)/111320
			lon = centres[k][1] + dist*math.Cos(a)/(111320*math.Cos(centres[k][0]*math.Pi/180))
			if near || crowded || farFromZones(centres[k], lat, lon) {
				break
			}
		}
		vals[3*i], vals[3*i+1], vals[3*i+2] = lat, lon, 5+rng.Float64()*25
		obs[i] = device.Observation{Device: devs[k], Lat: &vals[3*i], Lon: &vals[3*i+1], AccuracyM: &vals[3*i+2]}
	}
	asDecoded(obs)
	next := 0 // reports so far; tag obs[i] reports for the r-th time as report r*len(obs)+i
	lastTick := t0
	run := func(b *testing.B, total int) {
		for done := 0; done < total; {
			n := min(batch, total-done)
			start := next % len(obs)
			n = min(n, len(obs)-start)
			at := t0.Add(time.Duration(next/len(obs)+1) * 10 * time.Second)
			chunk := obs[start : start+n]
			for i := range chunk {
				chunk[i].Time = at
			}
			e.Begin()
			e.Observe(Observations{At: at, Obs: chunk})
			e.Finish()
			done += n
			next += n
			// Once a minute of fix time, a tick moves the track window on, as the state machine's
			// ticks do; ticks are measured on their own (BenchmarkTickNational).
			if at.Sub(lastTick) >= time.Minute {
				b.StopTimer()
				e.Begin()
				e.Tick(Tick{At: at})
				e.Finish()
				lastTick = at
				b.StartTimer()
			}
		}
	}
	// Steady state: every tag has reported for longer than the track window (ten minutes) and ticks have
	// trimmed it, so the tags near a zone have raised their alarms and every track and buffer has its
	// size.
	run(b, 80*len(obs))
	return run
}

// asDecoded copies the observations' device ids next to each other, in observation order, as decoding a
// log entry leaves them. (The ids made while the orders were written lie scattered among the orders'
// zones, and reading each would be a cache miss that a batch fresh from the log does not have.)
func asDecoded(obs []device.Observation) {
	var n int
	for i := range obs {
		n += len(obs[i].Device)
	}
	arena := make([]byte, 0, n)
	for i := range obs {
		arena = append(arena, obs[i].Device...)
	}
	all := string(arena)
	for i := range obs {
		n := len(obs[i].Device)
		obs[i].Device, all = all[:n], all[n:]
	}
}

// nationalWork and nationalTown place a national order's work circle and town area: offsets in degrees
// from the home at the order's centre, and the largest radius in metres.
var (
	nationalWork = struct{ dLat, dLon, r float64 }{0.01, 0.03, 300}
	nationalTown = struct{ dLat, dLon, r float64 }{-0.05, -0.05, 2500}
)

// farFromZones reports whether (lat, lon) is at least 1 km from the town and work zones of the national
// order centred at c (the home polygon is at the centre; fixes are drawn 1 km or more from it).
func farFromZones(c [2]float64, lat, lon float64) bool {
	metres := func(lat0, lon0 float64) float64 {
		return math.Hypot((lat-lat0)*111320, (lon-lon0)*111320*math.Cos(lat0*math.Pi/180))
	}
	return metres(c[0]+nationalTown.dLat, c[1]+nationalTown.dLon) >= nationalTown.r+1000 &&
		metres(c[0]+nationalWork.dLat, c[1]+nationalWork.dLon) >= nationalWork.r+1000
}

// measure runs the timed part and reports observations per second and the exact allocations per
// observation (allocs/op is rounded down to a whole number).
func measure(b *testing.B, run func(n int)) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	// Labelled, so that a CPU profile of the benchmark can be narrowed to the measured part
	// (go tool pprof -tagfocus phase=measured).
	pprof.Do(context.Background(), pprof.Labels("phase", "measured"), func(context.Context) { run(b.N) })
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/obs")
}

// BenchmarkTickNational measures one tick (timers for every device and order) with 50,000 orders.
func BenchmarkTickNational(b *testing.B) {
	e, _, _ := nationalOrders(b, 50000)
	at := t0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at = at.Add(time.Second)
		e.Begin()
		e.Tick(Tick{At: at})
		e.Finish()
	}
}

// BenchmarkEvaluateManyZones: one order with n zones (64-vertex polygons and circles on a jittered 2 km
// grid, so that every fix has a few zones near it whatever n is) and a tag walking through them at
// 1.5 m/s, reporting every 10 s, with a tick every minute. With the zone index the cost per fix grows with log n; "exact"
// evaluates every zone on every fix, as without the fast paths, and grows with n. Orders are limited to
// 64 zones by the API; the 1,000-zone order is loaded directly.
func BenchmarkEvaluateManyZones(b *testing.B) {
	for _, n := range []int{10, 64, 1000} {
		for _, exact := range []bool{false, true} {
			name := fmt.Sprintf("zones=%d", n)
			if exact {
				name += "/exact"
			}
			b.Run(name, func(b *testing.B) { benchManyZones(b, n, exact) })
		}
	}
}

func benchManyZones(b *testing.B, n int, exact bool) {
	rng := rand.New(rand.NewPCG(11, uint64(n)))
	centre := geo.LatLon{Lat: 60.8, Lon: 10.7}
	p := geo.NewProjection(centre)
	side := int(math.Ceil(math.Sqrt(float64(n))))
	const spacing = 2000.0
	at := func(x, y float64) []float64 {
		ll := p.Inverse(geo.XY{X: x, Y: y})
		return []float64{ll.Lon, ll.Lat}
	}
	o := order.Order{
		ID: "ord-many", Reference: "R", Basis: order.Court, ValidFrom: t0.Add(-time.Hour), State: order.Active,
		Offender: order.Party{Device: "tag-many"},
	}
	for i := 0; i < n; i++ {
		cx := (float64(i%side) - float64(side)/2 + rng.Float64()*0.5) * spacing
		cy := (float64(i/side) - float64(side)/2 + rng.Float64()*0.5) * spacing
		z := order.Zone{ID: fmt.Sprintf("z%04d", i), Kind: order.Exclusion, WarningM: 100}
		if i%2 == 0 {
			r := 200 + rng.Float64()*200
			var ring [][]float64
			for k := 0; k < 64; k++ {
				a := 2 * math.Pi * float64(k) / 64
				ring = append(ring, at(cx+r*math.Cos(a), cy+r*math.Sin(a)))
			}
			ring = append(ring, ring[0])
			z.Geometry.Type = "Polygon"
			z.Geometry.Coordinates, _ = json.Marshal([][][]float64{ring})
		} else {
			z.Geometry.Type, z.RadiusM = "Point", 300
			z.Geometry.Coordinates, _ = json.Marshal(at(cx, cy))
		}
		o.Zones = append(o.Zones, z)
	}
	e := New(DefaultConfig())
	e.slow = exact
	if err := e.LoadOrder(o); err != nil {
		b.Fatal(err)
	}
	if err := e.LoadDevice(device.State{Device: "tag-many", OrderID: o.ID, Role: device.Offender, BoundAt: t0}); err != nil {
		b.Fatal(err)
	}
	// A walk at 1.5 m/s, turning now and then, kept inside the grid.
	const steps = 10000
	lats, lons, accs := make([]float64, steps), make([]float64, steps), make([]float64, steps)
	x, y, a := 0.0, 0.0, 0.0
	half := float64(side) / 2 * spacing
	for i := range lats {
		a += (rng.Float64() - 0.5) * 0.6
		x, y = x+15*math.Cos(a), y+15*math.Sin(a)
		if math.Abs(x) > half || math.Abs(y) > half {
			a += math.Pi
			x, y = math.Max(-half, math.Min(half, x)), math.Max(-half, math.Min(half, y))
		}
		ll := p.Inverse(geo.XY{X: x, Y: y})
		lats[i], lons[i], accs[i] = ll.Lat, ll.Lon, 10
	}
	obs := make([]device.Observation, 1)
	k := 0
	run := func(total int) {
		for i := 0; i < total; i++ {
			k++
			j := k % steps
			ft := t0.Add(time.Duration(k) * 10 * time.Second)
			obs[0] = device.Observation{Device: "tag-many", Time: ft, Lat: &lats[j], Lon: &lons[j], AccuracyM: &accs[j]}
			e.Begin()
			e.Observe(Observations{At: ft, Obs: obs})
			if k%6 == 0 {
				e.Tick(Tick{At: ft}) // once a minute of fix time: the track window moves on
			}
			e.Finish()
		}
	}
	run(steps / 10)
	measure(b, run)
}
