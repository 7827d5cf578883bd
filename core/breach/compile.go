package breach

import (
	"encoding/json"
	"fmt"

	"github.com/skjold-alarm/skjold/core/geo"
	"github.com/skjold-alarm/skjold/core/order"
)

// compiledOrder is an order with its zones projected into metres once, when it is written, so that a fix
// costs one projection and one distance per zone.
type compiledOrder struct {
	order     *order.Order
	proj      *geo.Projection
	zones     []compiledZone
	scheduled bool              // some zone has a schedule: re-evaluate on ticks as windows open and close
	dynamic   map[string]string // protected device → the dynamic zone's subject, "dynamic:<device>"
}

func (c *compiledOrder) dynSubject(dev string) string {
	if s, ok := c.dynamic[dev]; ok {
		return s
	}
	return "dynamic:" + dev
}

type compiledZone struct {
	zone  *order.Zone
	shape geo.Shape
}

// compile projects an order's zones. The order must have passed Validate.
func compile(o *order.Order) (*compiledOrder, error) {
	var pts []geo.LatLon
	for i := range o.Zones {
		ps, err := zonePoints(&o.Zones[i])
		if err != nil {
			return nil, fmt.Errorf("zones[%d]: %w", i, err)
		}
		pts = append(pts, ps...)
	}
	origin := geo.LatLon{Lat: 60, Lon: 10}
	if len(pts) > 0 {
		origin = geo.BoundsCenter(pts)
	}
	c := &compiledOrder{order: o, proj: geo.NewProjection(origin), dynamic: map[string]string{}}
	for _, p := range o.Protected {
		c.dynamic[p.Device] = "dynamic:" + p.Device
	}
	for i := range o.Zones {
		z := &o.Zones[i]
		var shape geo.Shape
		switch z.Geometry.Type {
		case "Point":
			var p []float64
			if err := json.Unmarshal(z.Geometry.Coordinates, &p); err != nil {
				return nil, err
			}
			shape = geo.Circle{Center: c.proj.Forward(geo.LatLon{Lat: p[1], Lon: p[0]}), Radius: z.RadiusM}
		case "Polygon":
			var p [][][]float64
			if err := json.Unmarshal(z.Geometry.Coordinates, &p); err != nil {
				return nil, err
			}
			shape = geo.ProjectPolygon(c.proj, p)
		case "MultiPolygon":
			var p [][][][]float64
			if err := json.Unmarshal(z.Geometry.Coordinates, &p); err != nil {
				return nil, err
			}
			shape = geo.ProjectMultiPolygon(c.proj, p)
		default:
			return nil, fmt.Errorf("zones[%d]: unknown geometry type %q", i, z.Geometry.Type)
		}
		c.zones = append(c.zones, compiledZone{zone: z, shape: shape})
		if z.Schedule != nil {
			c.scheduled = true
		}
	}
	return c, nil
}

func zonePoints(z *order.Zone) ([]geo.LatLon, error) {
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
			return nil, err
		}
		add(p)
	case "Polygon":
		var p [][][]float64
		if err := json.Unmarshal(z.Geometry.Coordinates, &p); err != nil {
			return nil, err
		}
		for _, r := range p {
			for _, q := range r {
				add(q)
			}
		}
	case "MultiPolygon":
		var p [][][][]float64
		if err := json.Unmarshal(z.Geometry.Coordinates, &p); err != nil {
			return nil, err
		}
		for _, poly := range p {
			for _, r := range poly {
				for _, q := range r {
					add(q)
				}
			}
		}
	}
	return out, nil
}
