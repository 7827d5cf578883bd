package breach

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"pgregory.net/rapid"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/geo"
	"github.com/skjold-alarm/skjold/core/order"
)

// Random scripts of log entries (orders, reports, ticks, operator actions) for comparing two evaluators
// entry by entry. Exported so that tests in package breach_test can run them too.

// ScriptStep is one entry of a script. Ack, Resolve and Annotate act on the Pick-th open alarm (modulo
// their number), as an operator would on what the evaluator shows.
type ScriptStep struct {
	Put      *PutOrder
	End      *EndOrder
	Obs      *Observations
	Tick     *Tick
	Plugin   *PluginState
	Ack      bool
	Resolve  bool
	Annotate bool
	Pick     int
	At       time.Time
}

// Script is a configuration and the entries to apply, each in its own batch unless Batch says how many
// to apply between Begin and Finish.
type Script struct {
	Config Config
	Steps  []ScriptStep
	Batch  int
}

type scriptOrder struct {
	id        string
	centre    geo.LatLon
	proj      *geo.Projection
	offender  string
	protected []string
	zoneXY    []geo.XY // zone centres, projected, for tracks that head for them
}

// DrawScript draws a script: a few orders somewhere in Norway with polygons (some large, some with
// holes), circles and multipolygons, exclusion and inclusion zones, schedules, dynamic zones; tags that
// wander, head for zones, stand still, jump, report late, in bulk and out of order; ticks, operator
// actions, plugin faults, orders replaced and ended.
func DrawScript(t *rapid.T) Script {
	cfg := DefaultConfig()
	switch rapid.IntRange(0, 5).Draw(t, "config") {
	case 1:
		cfg.EnterFixes, cfg.ExitFixes = 1, 1
	case 2:
		cfg.ApproachMinSpeed = 0
	case 3:
		cfg.ApproachMinSpeed = -0.5
		cfg.ApproachLead = 30 * time.Minute
	case 4:
		cfg.ApproachLead, cfg.ApproachMinSpan = 2*time.Minute, 5*time.Second
	}
	start := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	at := start
	var orders []*scriptOrder
	n := rapid.IntRange(1, 3).Draw(t, "orders")
	steps := []ScriptStep{}
	for i := 0; i < n; i++ {
		so := &scriptOrder{
			id:       fmt.Sprintf("ord-%d", i),
			centre:   geo.LatLon{Lat: rf(t, 58, 71), Lon: rf(t, 5, 30)},
			offender: fmt.Sprintf("tag-%d", i),
		}
		so.proj = geo.NewProjection(so.centre)
		for j := rapid.IntRange(0, 2).Draw(t, "protected"); j > 0; j-- {
			so.protected = append(so.protected, fmt.Sprintf("unit-%d-%d", i, j))
		}
		o := drawOrder(t, so, start)
		steps = append(steps, ScriptStep{Put: &PutOrder{At: at, By: "script", Create: true, Order: o}})
		orders = append(orders, so)
	}
	// Where each device is, in the projected plane of its order. A quiet script is mostly what a real
	// one is: tags at any distance from their zones, standing or walking, rarely near; most fixes change
	// nothing, and whether one can is decided at every distance, near the thresholds too.
	quiet := rapid.Bool().Draw(t, "quiet")
	pos := map[string]geo.XY{}
	around := func(c geo.XY, far float64) geo.XY {
		a, d := rf(t, 0, 2*math.Pi), rf(t, 0, far)
		return geo.XY{X: c.X + d*math.Cos(a), Y: c.Y + d*math.Sin(a)}
	}
	for _, so := range orders {
		far, near := 3000.0, 1500.0 // a busy script: tags by their zones and protected persons
		if quiet {
			far, near = 30000, 8000
		}
		if len(so.zoneXY) > 0 {
			pos[so.offender] = around(so.zoneXY[rapid.IntRange(0, len(so.zoneXY)-1).Draw(t, "zone")], far)
		} else {
			pos[so.offender] = around(geo.XY{}, far)
		}
		for _, p := range so.protected {
			pos[p] = around(pos[so.offender], near)
		}
	}
	heading := map[string]geo.XY{} // velocity, m/s
	obsAt := func(so *scriptOrder, dev string, ft time.Time) device.Observation {
		ll := so.proj.Inverse(pos[dev])
		lat, lon := ll.Lat, ll.Lon
		acc := []float64{3, 8, 15, 30, 60, 150}[rapid.IntRange(0, 5).Draw(t, "acc")]
		o := device.Observation{Device: dev, Time: ft, Lat: &lat, Lon: &lon, AccuracyM: &acc}
		extra := 12
		if quiet {
			extra = 60
		}
		switch rapid.IntRange(0, extra).Draw(t, "extra") {
		case 0:
			b := rapid.IntRange(0, 100).Draw(t, "battery")
			o.BatteryPct = &b
		case 1:
			o.Strap = device.StrapOpen
		case 2:
			o.Strap = device.StrapClosed
		case 3:
			c := rapid.Bool().Draw(t, "charging")
			o.Charging = &c
		case 4:
			o.Lat, o.Lon, o.AccuracyM = nil, nil, nil
		case 5:
			o.Driver, o.Node = "sim", "node-1"
		}
		return o
	}
	for k := rapid.IntRange(5, 120).Draw(t, "steps"); k > 0; k-- {
		at = at.Add(time.Duration(rapid.IntRange(1, 40).Draw(t, "dt")) * time.Second)
		switch r := rapid.IntRange(0, 99).Draw(t, "what"); {
		case r < 70:
			var batch []device.Observation
			for m := rapid.IntRange(1, 4).Draw(t, "batch"); m > 0; m-- {
				so := orders[rapid.IntRange(0, len(orders)-1).Draw(t, "order")]
				devs := append([]string{so.offender, so.offender, so.offender}, so.protected...)
				dev := devs[rapid.IntRange(0, len(devs)-1).Draw(t, "dev")]
				move(t, so, dev, pos, heading, quiet)
				ft := at
				switch rapid.IntRange(0, 9).Draw(t, "time") {
				case 0:
					ft = at.Add(-time.Duration(rapid.IntRange(1, 900).Draw(t, "late")) * time.Second)
				case 1:
					ft = at.Add(-time.Duration(rapid.IntRange(0, 30).Draw(t, "lag")) * time.Second)
				}
				batch = append(batch, obsAt(so, dev, ft))
			}
			if rapid.IntRange(0, 20).Draw(t, "stranger") == 0 {
				lat, lon := 60.0, 10.0
				batch = append(batch, device.Observation{Device: "stranger", Time: at, Lat: &lat, Lon: &lon})
			}
			steps = append(steps, ScriptStep{Obs: &Observations{At: at, By: "script", Obs: batch}})
		case r < 82:
			steps = append(steps, ScriptStep{Tick: &Tick{At: at}})
		case r < 86:
			steps = append(steps, ScriptStep{Ack: true, Pick: rapid.IntRange(0, 20).Draw(t, "pick"), At: at})
		case r < 89:
			steps = append(steps, ScriptStep{Resolve: true, Pick: rapid.IntRange(0, 20).Draw(t, "pick"), At: at})
		case r < 90:
			steps = append(steps, ScriptStep{Annotate: true, Pick: rapid.IntRange(0, 20).Draw(t, "pick"), At: at})
		case r < 93:
			steps = append(steps, ScriptStep{Plugin: &PluginState{At: at, Node: "node-1", Name: "sim", Kind: "driver", Up: rapid.Bool().Draw(t, "up"), Reason: "gone"}})
		case r < 97:
			so := orders[rapid.IntRange(0, len(orders)-1).Draw(t, "order")]
			if rapid.Bool().Draw(t, "dropProtected") && len(so.protected) > 0 {
				so.protected = so.protected[1:]
			}
			steps = append(steps, ScriptStep{Put: &PutOrder{At: at, By: "script", Order: drawOrder(t, so, start)}})
		case r < 98:
			// A device already bound to another order: refused.
			if len(orders) > 1 {
				o := drawOrder(t, orders[0], start)
				o.ID = "ord-clash"
				o.Offender.Device = orders[1].offender
				steps = append(steps, ScriptStep{Put: &PutOrder{At: at, By: "script", Create: true, Order: o}})
			}
		default:
			so := orders[rapid.IntRange(0, len(orders)-1).Draw(t, "order")]
			steps = append(steps, ScriptStep{End: &EndOrder{At: at, By: "script", ID: so.id, Reason: "ended"}})
		}
	}
	return Script{Config: cfg, Steps: steps, Batch: rapid.IntRange(1, 3).Draw(t, "entries per batch")}
}

// rf draws a float spread evenly over [lo, hi): rapid favours simple values, which would put every tag
// on a zone's centre, so its draw is mixed (splitmix64) first.
func rf(t *rapid.T, lo, hi float64) float64 {
	z := rapid.Uint64().Draw(t, "u") + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return lo + (hi-lo)*float64(z>>11)/(1<<53)
}

// move advances a device: standing, walking, heading for a zone at up to 30 m/s, or jumping kilometres.
func move(t *rapid.T, so *scriptOrder, dev string, pos, heading map[string]geo.XY, quiet bool) {
	p := pos[dev]
	how := rapid.IntRange(0, 9).Draw(t, "move")
	if quiet && how >= 3 {
		how = []int{0, 4, 4, 5, 6, 6, 7}[how-3] // no jumps, seldom towards a zone
	}
	switch how {
	case 0, 1, 2:
		// stand still
	case 3:
		p = geo.XY{X: p.X + rf(t, -5000, 5000), Y: p.Y + rf(t, -5000, 5000)}
	case 4, 5:
		a, v := rf(t, 0, 2*math.Pi), rf(t, 0, 2)
		heading[dev] = geo.XY{X: v * math.Cos(a), Y: v * math.Sin(a)}
		fallthrough
	case 6:
		h := heading[dev]
		dt := rf(t, 5, 60)
		p = geo.XY{X: p.X + h.X*dt + rf(t, -5, 5), Y: p.Y + h.Y*dt + rf(t, -5, 5)}
	case 7, 8:
		if len(so.zoneXY) > 0 {
			z := so.zoneXY[rapid.IntRange(0, len(so.zoneXY)-1).Draw(t, "target")]
			v := rf(t, 1, 30)
			if quiet {
				v = rf(t, 0.3, 4)
			}
			d := math.Hypot(z.X-p.X, z.Y-p.Y)
			if d > 0 {
				heading[dev] = geo.XY{X: (z.X - p.X) / d * v, Y: (z.Y - p.Y) / d * v}
			}
		}
		fallthrough
	default:
		h := heading[dev]
		dt := rf(t, 5, 60)
		p = geo.XY{X: p.X + h.X*dt + rf(t, -20, 20), Y: p.Y + h.Y*dt + rf(t, -20, 20)}
	}
	pos[dev] = p
}

// drawOrder draws the order's zones around its centre (and remembers their centres for the tracks).
func drawOrder(t *rapid.T, so *scriptOrder, start time.Time) order.Order {
	so.zoneXY = so.zoneXY[:0]
	o := order.Order{
		ID: so.id, Reference: "S", Basis: order.Court, ValidFrom: start.Add(-time.Hour),
		Offender: order.Party{Device: so.offender},
	}
	if rapid.IntRange(0, 4).Draw(t, "lead") == 0 {
		o.ApproachLeadS = rapid.IntRange(1, 3600).Draw(t, "leadS")
	}
	for _, p := range so.protected {
		o.Protected = append(o.Protected, order.Party{Device: p})
	}
	if len(so.protected) > 0 && rapid.Bool().Draw(t, "dynamic") {
		r := rf(t, 50, 1000)
		dz := &order.DynamicZone{RadiusM: r}
		if rapid.Bool().Draw(t, "dynW") {
			dz.WarningM = r + rf(t, 10, 2000)
		}
		o.DynamicZone = dz
	}
	ll := func(xy geo.XY) []float64 {
		l := so.proj.Inverse(xy)
		return []float64{l.Lon, l.Lat}
	}
	ring := func(c geo.XY, r float64, n int, label string) [][]float64 {
		var pts [][]float64
		for k := 0; k < n; k++ {
			a := 2 * math.Pi * float64(k) / float64(n)
			rr := r * rf(t, 0.7, 1)
			pts = append(pts, ll(geo.XY{X: c.X + rr*math.Cos(a), Y: c.Y + rr*math.Sin(a)}))
		}
		return append(pts, pts[0])
	}
	nz := rapid.IntRange(0, 12).Draw(t, "zones")
	if nz == 0 && o.DynamicZone == nil {
		nz = 1
	}
	for i := 0; i < nz; i++ {
		c := geo.XY{X: rf(t, -6000, 6000), Y: rf(t, -6000, 6000)}
		if rapid.IntRange(0, 9).Draw(t, "far") == 0 {
			c.X *= 20 // a zone far from the others: stretches the order's region
		}
		so.zoneXY = append(so.zoneXY, c)
		z := order.Zone{ID: fmt.Sprintf("z%d", i), Kind: order.Exclusion}
		if rapid.IntRange(0, 5).Draw(t, "inclusion") == 0 {
			z.Kind = order.Inclusion
		} else if rapid.Bool().Draw(t, "warn") {
			z.WarningM = rf(t, 10, 500)
		}
		r := []float64{30, 150, 600, 3000, 20000}[rapid.IntRange(0, 4).Draw(t, "size")%(4+rapid.IntRange(0, 1).Draw(t, "large"))]
		var coords any
		switch rapid.IntRange(0, 3).Draw(t, "geometry") {
		case 0:
			z.Geometry.Type = "Point"
			z.RadiusM = r
			coords = ll(c)
		case 1:
			z.Geometry.Type = "MultiPolygon"
			d := geo.XY{X: c.X + rf(t, -3*r, 3*r), Y: c.Y + 3*r}
			coords = [][][][]float64{{ring(c, r, rapid.IntRange(3, 40).Draw(t, "n"), "k")}, {ring(d, r/2, rapid.IntRange(3, 40).Draw(t, "n"), "k")}}
		default:
			z.Geometry.Type = "Polygon"
			rings := [][][]float64{ring(c, r, []int{3, 6, 40, 300}[rapid.IntRange(0, 3).Draw(t, "n")], "k")}
			if rapid.IntRange(0, 3).Draw(t, "hole") == 0 {
				h := r * 0.3
				rings = append(rings, [][]float64{ll(geo.XY{X: c.X - h, Y: c.Y - h}), ll(geo.XY{X: c.X + h, Y: c.Y - h}), ll(geo.XY{X: c.X + h, Y: c.Y + h}), ll(geo.XY{X: c.X - h, Y: c.Y + h}), ll(geo.XY{X: c.X - h, Y: c.Y - h})})
			}
			coords = rings
		}
		z.Geometry.Coordinates, _ = json.Marshal(coords)
		switch rapid.IntRange(0, 5).Draw(t, "schedule") {
		case 0:
			z.Schedule = &order.Schedule{Timezone: "Europe/Oslo", Windows: []order.Window{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, From: "22:00", To: "23:00"}}}
		case 1:
			z.Schedule = &order.Schedule{Timezone: "Europe/Oslo", Windows: []order.Window{{Days: []string{"thu", "fri"}, From: "22:30", To: "06:00"}},
				Exemptions: []order.Exemption{{From: start.Add(20 * time.Minute), Until: start.Add(40 * time.Minute)}}}
		}
		o.Zones = append(o.Zones, z)
	}
	return o
}

// scriptTarget is what a script is applied to.
type scriptTarget interface {
	Begin()
	PutOrder(PutOrder) (*order.Order, error)
	EndOrder(EndOrder) (*order.Order, error)
	Observe(Observations) (int, int)
	Tick(Tick)
	PluginState(PluginState)
	Ack(AckAlarm) (*alarm.Alarm, error)
	Resolve(ResolveAlarm) (*alarm.Alarm, error)
	Annotate(AnnotateAlarm) (*alarm.Alarm, error)
	Alarms(openOnly bool, orderID string) []alarm.Alarm
}

// ApplyScriptStep applies one step and returns what the call returned, as text to compare.
func ApplyScriptStep(e scriptTarget, s ScriptStep) string {
	res := func(v any, err error) string {
		b, _ := json.Marshal(v)
		return fmt.Sprintf("%s %v", b, err)
	}
	pick := func() string {
		open := e.Alarms(true, "")
		if len(open) == 0 {
			return ""
		}
		return open[s.Pick%len(open)].ID
	}
	switch {
	case s.Put != nil:
		return res(e.PutOrder(*s.Put))
	case s.End != nil:
		return res(e.EndOrder(*s.End))
	case s.Obs != nil:
		a, d := e.Observe(*s.Obs)
		return fmt.Sprint(a, d)
	case s.Tick != nil:
		e.Tick(*s.Tick)
	case s.Plugin != nil:
		e.PluginState(*s.Plugin)
	case s.Ack:
		if id := pick(); id != "" {
			return res(e.Ack(AckAlarm{At: s.At, By: "op", ID: id, Note: "taken"}))
		}
	case s.Resolve:
		if id := pick(); id != "" {
			return res(e.Resolve(ResolveAlarm{At: s.At, By: "op", ID: id, Reason: "done"}))
		}
	case s.Annotate:
		if id := pick(); id != "" {
			return res(e.Annotate(AnnotateAlarm{At: s.At, By: "op", ID: id, Note: "seen"}))
		}
	}
	return ""
}
