package breach

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/skjold-alarm/skjold/core/geo"
	"github.com/skjold-alarm/skjold/core/order"
)

// compiledOrder is an order with its zones projected into metres once, when it is written, and an index
// of their enclosing discs, so that a fix far from every zone costs a few comparisons and a fix near one
// costs one projection and one distance per zone it is near (see DESIGN.md).
type compiledOrder struct {
	// What every fix reads comes first, and the order itself is part of the same allocation: a fix far
	// from every zone then reads a few adjacent cache lines of its order and nothing else.

	// next is the order that replaced this one (an id loaded again): devices that hold this one follow it.
	next *compiledOrder
	// When the order is in force (order.InForce, from copies kept in step by endOrder).
	active   bool
	hasUntil bool
	from     time.Time
	until    time.Time
	dz       *order.DynamicZone
	leadS    int // the order's approach_lead_s
	region   region
	maxWarn  float64 // the largest warning_m of an exclusion zone
	// discs of the zones not always evaluated, in zone order (scanned when there is no index).
	discs   []zoneDisc
	discBuf [4]zoneDisc
	always  []int32 // zones every fix is evaluated against (see compiledZone.always)
	order   *order.Order
	ord     order.Order // what order points to

	proj      *geo.Projection
	zones     []compiledZone
	scheduled bool              // some zone has a schedule: re-evaluate on ticks as windows open and close
	dynamic   map[string]string // protected device → the dynamic zone's subject, "dynamic:<device>"
	index     *zoneIndex        // over the discs, for orders with many zones; nil: scan them
	zoneIdx   map[string]int32  // zone id → index in zones
}

// zoneDisc is a disc of zone number zone.
type zoneDisc struct {
	disc
	zone int32
}

// inForce is order.InForce on the copies in c.
func (c *compiledOrder) inForce(t time.Time) bool {
	if !c.active || t.Before(c.from) {
		return false
	}
	return !c.hasUntil || t.Before(c.until)
}

func (c *compiledOrder) dynSubject(dev string) string {
	if s, ok := c.dynamic[dev]; ok {
		return s
	}
	return "dynamic:" + dev
}

type compiledZone struct {
	// Copies of what a fix reads of the zone, so that it reads one line of the compiled order and not the
	// order's zone as well.
	id       string
	kind     order.ZoneKind
	warningM float64
	sched    *order.Schedule
	shape    geo.Shape
	// discs contain the zone (one per member of a MultiPolygon): a fix that is farther than m from every
	// disc is farther than m from the zone, and outside it.
	discs []disc
	// always: every fix is evaluated against the zone. Inclusion zones (a fix far from the zone is what
	// raises their alarm), and zones without a usable disc (outside the order's region, or too large).
	always bool
}

// compile projects an order's zones. The order must have passed Validate; the compiled order holds a copy.
func compile(in *order.Order) (*compiledOrder, error) {
	c := &compiledOrder{ord: *in, dynamic: map[string]string{}, zoneIdx: map[string]int32{}}
	c.order = &c.ord
	o := c.order
	c.active, c.from, c.dz, c.leadS = o.State == order.Active, o.ValidFrom, o.DynamicZone, o.ApproachLeadS
	if o.ValidUntil != nil {
		c.hasUntil, c.until = true, *o.ValidUntil
	}
	var pts []geo.LatLon
	coords := make([]any, len(o.Zones)) // decoded once: []float64, [][][]float64 or [][][][]float64
	for i := range o.Zones {
		c, ps, err := zonePoints(&o.Zones[i])
		if err != nil {
			return nil, fmt.Errorf("zones[%d]: %w", i, err)
		}
		coords[i] = c
		pts = append(pts, ps...)
	}
	origin := geo.LatLon{Lat: 60, Lon: 10}
	if len(pts) > 0 {
		origin = geo.BoundsCenter(pts)
	}
	c.proj = geo.NewProjection(origin)
	c.region = newRegion(c.proj, origin)
	for _, p := range o.Protected {
		c.dynamic[p.Device] = "dynamic:" + p.Device
	}
	for i := range o.Zones {
		z := &o.Zones[i]
		var shape geo.Shape
		switch p := coords[i].(type) {
		case []float64:
			shape = geo.Circle{Center: c.proj.Forward(geo.LatLon{Lat: p[1], Lon: p[0]}), Radius: z.RadiusM}
		case [][][]float64:
			shape = geo.ProjectPolygon(c.proj, p)
		case [][][][]float64:
			shape = geo.ProjectMultiPolygon(c.proj, p)
		default:
			return nil, fmt.Errorf("zones[%d]: unknown geometry type %q", i, z.Geometry.Type)
		}
		c.zones = append(c.zones, c.compileZone(z, shape))
		if z.Schedule != nil {
			c.scheduled = true
		}
	}
	c.buildIndex()
	return c, nil
}

// zonePoints decodes a zone's coordinates and returns them with their positions.
func zonePoints(z *order.Zone) (any, []geo.LatLon, error) {
	var out []geo.LatLon
	add := func(p []float64) {
		if len(p) >= 2 {
			out = append(out, geo.LatLon{Lat: p[1], Lon: p[0]})
		}
	}
	switch z.Geometry.Type {
	case "Point":
		var p []float64
		if err := json.Unmarshal(z.Geometry.Coordinates, &p); err != nil {
			return nil, nil, err
		}
		add(p)
		return p, out, nil
	case "Polygon":
		var p [][][]float64
		if err := json.Unmarshal(z.Geometry.Coordinates, &p); err != nil {
			return nil, nil, err
		}
		for _, r := range p {
			for _, q := range r {
				add(q)
			}
		}
		return p, out, nil
	case "MultiPolygon":
		var p [][][][]float64
		if err := json.Unmarshal(z.Geometry.Coordinates, &p); err != nil {
			return nil, nil, err
		}
		for _, poly := range p {
			for _, r := range poly {
				for _, q := range r {
					add(q)
				}
			}
		}
		return p, out, nil
	}
	return nil, out, nil
}
