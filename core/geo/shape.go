package geo

import "math"

// Shape is a region of the projected plane.
type Shape interface {
	// SignedDistance returns, in projected metres, minus the distance from
	// p to the nearest boundary when p is inside, the distance to the
	// nearest boundary when p is outside, and 0 on the boundary.
	SignedDistance(p XY) float64
	// SignedDistanceWithin is SignedDistance where that is below limit;
	// otherwise it returns a value >= limit, having skipped the edges that
	// cannot come nearer (a caller that only acts on nearer points need not
	// pay for the exact distance of farther ones). limit must be > 0.
	SignedDistanceWithin(p XY, limit float64) float64
	// Bounds returns the smallest axis-aligned rectangle containing the
	// shape (EmptyRect for an empty shape).
	Bounds() Rect
}

// Ring is a closed chain of positions: the first equals the last, as in
// GeoJSON.
type Ring []XY

// Polygon is an outer ring (Rings[0]) with optional holes (Rings[1:]).
// Points inside a hole are outside the polygon.
//
// Build polygons with NewPolygon, ProjectPolygon or ProjectMultiPolygon,
// which also prepare a spatial index (bounding boxes of the rings and, for
// polygons of 32 edges or more, an index over the edges) so that a query
// costs about O(log n) instead of O(n) for n edges. A Polygon built as a
// bare literal (Polygon{Rings: r}) gives the same results, only by scanning
// every edge. Treat a Polygon and its
// rings as immutable once built: the index is not updated if a ring changes.
type Polygon struct {
	Rings []Ring

	// index holds precomputed acceleration data; nil means none.
	index *polygonIndex
}

// polygonIndex is the acceleration structure of a Polygon.
type polygonIndex struct {
	bounds Rect       // of all rings
	rings  []Rect     // bounds of each ring
	edges  *edgeIndex // nil for small polygons
}

// MultiPolygon is the union of its polygons.
type MultiPolygon []Polygon

// Circle is a disc of Radius metres around Center.
type Circle struct {
	Center XY
	Radius float64
}

var (
	_ Shape = Polygon{}
	_ Shape = MultiPolygon{}
	_ Shape = Circle{}
)

// NewPolygon returns the polygon with the given rings (rings[0] outer, the
// rest holes) and its spatial index. The rings are not copied. Building the
// index costs O(n log n) for n edges.
func NewPolygon(rings []Ring) Polygon {
	return newPolygon(rings, minIndexedEdges)
}

// newPolygon is NewPolygon with an edge index when there are at least
// minEdges edges.
func newPolygon(rings []Ring, minEdges int) Polygon {
	idx := &polygonIndex{bounds: EmptyRect(), rings: make([]Rect, len(rings))}
	for i, r := range rings {
		idx.rings[i] = r.Bounds()
		idx.bounds = idx.bounds.Union(idx.rings[i])
	}
	idx.edges = newEdgeIndex(rings, minEdges)
	return Polygon{Rings: rings, index: idx}
}

// ProjectPolygon projects GeoJSON Polygon coordinates ([lon, lat] order)
// through p. The coordinates should have passed ValidatePolygon; a position
// with fewer than two numbers becomes a NaN point rather than a panic.
func ProjectPolygon(p *Projection, coords [][][]float64) Polygon {
	rings := make([]Ring, len(coords))
	for i, rc := range coords {
		r := make(Ring, len(rc))
		for j, pos := range rc {
			if len(pos) < 2 {
				r[j] = XY{math.NaN(), math.NaN()}
				continue
			}
			r[j] = p.Forward(LatLon{Lat: pos[1], Lon: pos[0]})
		}
		rings[i] = r
	}
	return NewPolygon(rings)
}

// ProjectMultiPolygon projects GeoJSON MultiPolygon coordinates through p.
// The coordinates should have passed ValidateMultiPolygon.
func ProjectMultiPolygon(p *Projection, coords [][][][]float64) MultiPolygon {
	mp := make(MultiPolygon, len(coords))
	for i, pc := range coords {
		mp[i] = ProjectPolygon(p, pc)
	}
	return mp
}

// Bounds returns the bounding rectangle of the ring's positions.
func (r Ring) Bounds() Rect {
	b := EmptyRect()
	for _, p := range r {
		b.extend(p)
	}
	return b
}

// Bounds implements Shape.
func (pg Polygon) Bounds() Rect {
	if pg.index != nil {
		return pg.index.bounds
	}
	b := EmptyRect()
	for _, r := range pg.Rings {
		b = b.Union(r.Bounds())
	}
	return b
}

// SignedDistance implements Shape. Inside/outside is decided by the even-odd
// rule over all rings, so a point in a hole is outside; the distance is the
// minimum over the edges of all rings. An empty polygon is +Inf away.
func (pg Polygon) SignedDistance(p XY) float64 {
	return pg.SignedDistanceWithin(p, math.Inf(1))
}

// SignedDistanceWithin implements Shape.
func (pg Polygon) SignedDistanceWithin(p XY, limit float64) float64 {
	d, inside := pg.distance(p, limit)
	if d == 0 {
		return 0
	}
	if inside {
		return -d
	}
	return d
}

// distance returns the unsigned distance from p to the boundary of pg and
// whether p is inside. When p is outside, a result >= limit only means "not
// nearer than limit": rings that cannot come nearer than limit are skipped.
// When p is inside, the result is exact.
func (pg Polygon) distance(p XY, limit float64) (float64, bool) {
	if idx := pg.index; idx != nil && idx.edges != nil {
		if !idx.bounds.Contains(p) {
			if bd := idx.bounds.Distance(p); bd >= limit {
				return bd, false
			}
			return math.Sqrt(idx.edges.nearest2(p, limit*limit)), false
		}
		if idx.edges.odd(p) {
			return math.Sqrt(idx.edges.nearest2(p, math.Inf(1))), true
		}
		return math.Sqrt(idx.edges.nearest2(p, limit*limit)), false
	}
	if idx := pg.index; idx != nil && !idx.bounds.Contains(p) {
		// Outside every ring: only the distance matters.
		if bd := idx.bounds.Distance(p); bd >= limit {
			return bd, false
		}
		best2 := limit * limit
		for i, r := range pg.Rings {
			if idx.rings[i].Distance(p) >= math.Sqrt(best2) {
				continue
			}
			best2 = math.Min(best2, ringDist2(r, p))
		}
		return math.Sqrt(best2), false
	}
	// Possibly inside: the parity needs every ring whose box contains p,
	// the distance needs every ring that could be nearer than the best.
	inside := false
	best2 := math.Inf(1)
	for i, r := range pg.Rings {
		var rb Rect
		if pg.index != nil {
			rb = pg.index.rings[i]
		} else {
			rb = r.Bounds()
		}
		if rb.Contains(p) {
			d2, odd := ringDistParity(r, p)
			best2 = math.Min(best2, d2)
			inside = inside != odd
		} else if rb.Distance(p) < math.Sqrt(best2) {
			best2 = math.Min(best2, ringDist2(r, p))
		}
	}
	// Rings skipped on the first pass because they were farther than the
	// best at that time stay farther: best2 only decreases.
	return math.Sqrt(best2), inside
}

// ringDist2 returns the squared distance from p to the nearest edge of r.
func ringDist2(r Ring, p XY) float64 {
	if len(r) == 1 {
		return sq(r[0].X-p.X) + sq(r[0].Y-p.Y)
	}
	best := math.Inf(1)
	for i := 1; i < len(r); i++ {
		if d := segDist2(r[i-1], r[i], p); d < best {
			best = d
		}
	}
	return best
}

// ringDistParity returns the squared distance from p to the nearest edge of
// r and whether a ray from p towards +X crosses r an odd number of times.
func ringDistParity(r Ring, p XY) (float64, bool) {
	if len(r) == 1 {
		return sq(r[0].X-p.X) + sq(r[0].Y-p.Y), false
	}
	best := math.Inf(1)
	odd := false
	for i := 1; i < len(r); i++ {
		s := seg{r[i-1], r[i]}
		if d := segDist2(s.a, s.b, p); d < best {
			best = d
		}
		if crosses(s, p) {
			odd = !odd
		}
	}
	return best, odd
}

// segDist2 returns the squared distance from p to the segment ab.
func segDist2(a, b, p XY) float64 {
	dx, dy := b.X-a.X, b.Y-a.Y
	wx, wy := p.X-a.X, p.Y-a.Y
	t := wx*dx + wy*dy
	if t <= 0 {
		return wx*wx + wy*wy
	}
	l2 := dx*dx + dy*dy
	if t >= l2 {
		ex, ey := p.X-b.X, p.Y-b.Y
		return ex*ex + ey*ey
	}
	c := wx*dy - wy*dx
	return c * c / l2
}

// Bounds implements Shape.
func (mp MultiPolygon) Bounds() Rect {
	b := EmptyRect()
	for _, pg := range mp {
		b = b.Union(pg.Bounds())
	}
	return b
}

// SignedDistance implements Shape for the union of the polygons. Inside any
// polygon the result is minus the distance to the boundary of the polygon
// that contains p most deeply; outside all of them it is the distance to the
// nearest one. (Where polygons overlap, the depth is that of a single
// polygon, which can underestimate the depth in the union.)
func (mp MultiPolygon) SignedDistance(p XY) float64 {
	return mp.SignedDistanceWithin(p, math.Inf(1))
}

// SignedDistanceWithin implements Shape.
func (mp MultiPolygon) SignedDistanceWithin(p XY, limit float64) float64 {
	best := limit // nearest boundary while outside, or the limit
	depth := 0.0  // deepest inside distance found
	inside := false
	// Polygons whose box contains p first: they can contain p and usually
	// give a tight bound for the rest.
	for _, pg := range mp {
		if !pg.Bounds().Contains(p) {
			continue
		}
		d, in := pg.distance(p, best)
		if d == 0 {
			if !inside {
				best = 0
			}
			continue
		}
		if in {
			inside = true
			depth = math.Max(depth, d)
		} else {
			best = math.Min(best, d)
		}
	}
	if inside {
		return -depth
	}
	if best == 0 {
		return 0
	}
	for _, pg := range mp {
		b := pg.Bounds()
		if b.Contains(p) || b.Distance(p) >= best {
			continue
		}
		d, _ := pg.distance(p, best) // outside its box, so outside it
		best = math.Min(best, d)
	}
	return best
}

// Bounds implements Shape.
func (c Circle) Bounds() Rect {
	if !(c.Radius >= 0) {
		return EmptyRect()
	}
	return Rect{
		Min: XY{c.Center.X - c.Radius, c.Center.Y - c.Radius},
		Max: XY{c.Center.X + c.Radius, c.Center.Y + c.Radius},
	}
}

// SignedDistance implements Shape: |p - Center| - Radius.
func (c Circle) SignedDistance(p XY) float64 {
	return math.Hypot(p.X-c.Center.X, p.Y-c.Center.Y) - c.Radius
}

// SignedDistanceWithin implements Shape: a circle's distance is as cheap
// as any bound of it.
func (c Circle) SignedDistanceWithin(p XY, _ float64) float64 { return c.SignedDistance(p) }
