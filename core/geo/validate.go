package geo

import (
	"cmp"
	"math"
	"slices"
	"strconv"
)

// CoordError describes the first problem found in GeoJSON coordinates. Path
// is relative to the geometry's "coordinates" member, e.g.
// "coordinates[0][3]" (ring 0, position 3 of a Polygon) or
// "coordinates[1][0]" (polygon 1, ring 0 of a MultiPolygon).
type CoordError struct{ Path, Message string }

// Error returns "Path: Message".
func (e *CoordError) Error() string { return e.Path + ": " + e.Message }

// ValidatePoint checks a single GeoJSON position ([lon, lat] or
// [lon, lat, alt]), e.g. a circle centre.
func ValidatePoint(coords []float64) *CoordError {
	if msg := checkPosition(coords); msg != "" {
		return &CoordError{Path: "coordinates", Message: msg}
	}
	return nil
}

// ValidatePolygon checks GeoJSON Polygon coordinates. It returns nil, or the
// first problem found in this order:
//
//   - the polygon has no rings;
//   - per ring, in order: a position that does not have 2 or 3 numbers, has
//     a NaN or infinite number, or is out of range (longitude [-180, 180],
//     latitude [-90, 90]); fewer than 4 positions; first and last positions
//     differing (longitude and latitude are compared, altitude is ignored);
//     a position equal to the one before it (consecutive duplicates are
//     rejected rather than silently removed);
//   - edges that meet other than at the shared end of neighbouring edges:
//     within a ring (the ring intersects itself, including doubling back
//     along a line) or between rings (rings may neither cross nor touch);
//   - a hole that is not inside the outer ring, or a hole inside another.
//
// Ring orientation is not checked (RFC 7946 says not to reject on it).
// Geometry is checked in the plane of longitude and latitude, with exact
// arithmetic. The cost is O(n log n) for ordinary outlines of n positions
// and O(n²) in the worst case (many long edges passing near one point).
func ValidatePolygon(coords [][][]float64) *CoordError {
	return validatePolygon(func() string { return "coordinates" }, coords)
}

// ValidateMultiPolygon checks GeoJSON MultiPolygon coordinates: at least one
// polygon, each valid as in ValidatePolygon, with paths such as
// "coordinates[1][0][3]". Polygons may overlap one another; the shape is
// their union.
func ValidateMultiPolygon(coords [][][][]float64) *CoordError {
	if len(coords) == 0 {
		return &CoordError{Path: "coordinates", Message: "multipolygon has no polygons"}
	}
	for k, pc := range coords {
		if err := validatePolygon(func() string { return index("coordinates", k) }, pc); err != nil {
			return err
		}
	}
	return nil
}

// index returns path + "[i]".
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// num formats a coordinate for a message.
func num(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func position(v pt) string {
	return "[" + num(v.x) + "," + num(v.y) + "]"
}

// checkPosition returns "" for a valid position, otherwise the problem.
func checkPosition(pos []float64) string {
	if len(pos) != 2 && len(pos) != 3 {
		return "position needs 2 or 3 numbers, got " + strconv.Itoa(len(pos))
	}
	lon, lat := pos[0], pos[1]
	switch {
	case math.IsNaN(lon) || math.IsInf(lon, 0):
		return "longitude " + num(lon) + " is not a finite number"
	case lon < -180 || lon > 180:
		return "longitude " + num(lon) + " is out of range [-180, 180]"
	case math.IsNaN(lat) || math.IsInf(lat, 0):
		return "latitude " + num(lat) + " is not a finite number"
	case lat < -90 || lat > 90:
		return "latitude " + num(lat) + " is out of range [-90, 90]"
	case len(pos) == 3 && (math.IsNaN(pos[2]) || math.IsInf(pos[2], 0)):
		return "altitude " + num(pos[2]) + " is not a finite number"
	}
	return ""
}

func validatePolygon(path func() string, coords [][][]float64) *CoordError {
	if len(coords) == 0 {
		return &CoordError{Path: path(), Message: "polygon has no rings"}
	}
	rings := make([][]pt, len(coords))
	for i, rc := range coords {
		for j, pos := range rc {
			if msg := checkPosition(pos); msg != "" {
				return &CoordError{Path: index(index(path(), i), j), Message: msg}
			}
		}
		if len(rc) < 4 {
			return &CoordError{Path: index(path(), i), Message: "ring has " +
				strconv.Itoa(len(rc)) + " positions, at least 4 are needed"}
		}
		r := make([]pt, len(rc))
		for j, pos := range rc {
			r[j] = pt{pos[0], pos[1]}
		}
		if first, last := r[0], r[len(r)-1]; first != last {
			return &CoordError{Path: index(path(), i), Message: "ring is not closed: first position " +
				position(first) + " differs from last " + position(last)}
		}
		for j := 1; j < len(r); j++ {
			if r[j] == r[j-1] {
				return &CoordError{Path: index(index(path(), i), j), Message: "position " +
					position(r[j]) + " repeats the previous position (consecutive duplicates are not allowed)"}
			}
		}
		rings[i] = r
	}

	if c, ok := findContact(rings); ok {
		return c.err(path())
	}

	// No two rings meet, so each hole lies entirely inside or outside any
	// other ring and testing one of its positions decides.
	bounds := make([]box, len(rings))
	for i, r := range rings {
		bounds[i] = boxOf(r)
	}
	for h := 1; h < len(rings); h++ {
		if !insideRing(rings[0], rings[h][0]) {
			return &CoordError{Path: index(path(), h), Message: "hole " + strconv.Itoa(h) +
				" is not inside the outer ring"}
		}
		for g := 1; g < h; g++ {
			if bounds[g].contains(rings[h][0]) && insideRing(rings[g], rings[h][0]) {
				return &CoordError{Path: index(path(), h), Message: "hole " + strconv.Itoa(h) +
					" is inside hole " + strconv.Itoa(g)}
			}
			if bounds[h].contains(rings[g][0]) && insideRing(rings[h], rings[g][0]) {
				return &CoordError{Path: index(path(), h), Message: "hole " + strconv.Itoa(h) +
					" contains hole " + strconv.Itoa(g)}
			}
		}
	}
	return nil
}

type box struct{ minx, miny, maxx, maxy float64 }

func boxOf(r []pt) box {
	b := box{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for _, p := range r {
		b.minx, b.maxx = min(b.minx, p.x), max(b.maxx, p.x)
		b.miny, b.maxy = min(b.miny, p.y), max(b.maxy, p.y)
	}
	return b
}

func (b box) contains(p pt) bool {
	return p.x >= b.minx && p.x <= b.maxx && p.y >= b.miny && p.y <= b.maxy
}

// vedge is an edge of a ring under validation: positions idx and idx+1 of
// ring ring.
type vedge struct {
	a, b      pt
	ring, idx int
	n         int // number of edges in the ring
}

// sweepItem is an edge's extent along the sweep axis (lo, hi) and across it
// (clo, chi), kept compact for the inner loop of the sweep.
type sweepItem struct {
	lo, hi, clo, chi float64
	edge             int32
}

// ringContact is a forbidden meeting of two edges, e1 before e2 in
// (ring, index) order.
type ringContact struct {
	ring1, edge1, ring2, edge2 int
	kind                       contact
	overlap                    bool // neighbouring edges doubling back
}

func (c ringContact) err(path string) *CoordError {
	e1, e2 := strconv.Itoa(c.edge1), strconv.Itoa(c.edge2)
	verb := " crosses "
	switch {
	case c.overlap:
		verb = " overlaps "
	case c.kind == touching:
		verb = " touches "
	}
	if c.ring1 == c.ring2 {
		return &CoordError{Path: index(path, c.ring1),
			Message: "ring intersects itself: edge " + e1 + verb + "edge " + e2}
	}
	h := strconv.Itoa(c.ring2)
	other := "the outer ring"
	if c.ring1 > 0 {
		other = "hole " + strconv.Itoa(c.ring1)
	}
	return &CoordError{Path: index(path, c.ring2),
		Message: "hole " + h + " intersects " + other + ": edge " + e2 + " of hole " + h +
			verb + "edge " + e1 + " of " + other}
}

// findContact looks for two edges of the rings that meet where they should
// not. It sweeps a line across the edges sorted by their lower end along the
// sweep axis, keeping the edges whose extent spans the line and testing each
// new edge only against those whose extent across the axis overlaps its own:
// O(n log n + k) for n edges and k candidate pairs. The axis (x or y) is the
// one along which edges are shortest relative to the ring's extent, which
// keeps k small for real outlines and for combs of long parallel teeth; many
// long edges crossing near one point (a spiky star) remain the slow case,
// about 60 ms for 5,000 positions. The first contact in sweep order is
// returned, so the result is deterministic.
func findContact(rings [][]pt) (ringContact, bool) {
	total := 0
	for _, r := range rings {
		total += len(r) - 1
	}
	edges := make([]vedge, 0, total)
	all := box{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	var sumX, sumY float64
	for ri, r := range rings {
		for i := 0; i+1 < len(r); i++ {
			a, b := r[i], r[i+1]
			edges = append(edges, vedge{a: a, b: b, ring: ri, idx: i, n: len(r) - 1})
			sumX += math.Abs(b.x - a.x)
			sumY += math.Abs(b.y - a.y)
		}
		rb := boxOf(r)
		all = box{min(all.minx, rb.minx), min(all.miny, rb.miny), max(all.maxx, rb.maxx), max(all.maxy, rb.maxy)}
	}
	// Mean number of edges spanning a sweep line: total extent / span.
	alongY := sumY*(all.maxx-all.minx) < sumX*(all.maxy-all.miny)
	items := make([]sweepItem, len(edges))
	for i, e := range edges {
		ax, ay, bx, by := e.a.x, e.a.y, e.b.x, e.b.y
		if alongY {
			ax, ay, bx, by = ay, ax, by, bx
		}
		items[i] = sweepItem{lo: min(ax, bx), hi: max(ax, bx), clo: min(ay, by), chi: max(ay, by), edge: int32(i)}
	}
	// Edges are in (ring, index) order, so edge number breaks ties.
	slices.SortFunc(items, func(p, q sweepItem) int {
		return cmp.Or(cmp.Compare(p.lo, q.lo), cmp.Compare(p.edge, q.edge))
	})
	active := make([]sweepItem, 0, 64)
	for _, it := range items {
		kept := active[:0]
		for _, a := range active {
			if a.hi >= it.lo {
				kept = append(kept, a)
			}
		}
		active = kept
		for _, a := range active {
			if a.chi < it.clo || a.clo > it.chi {
				continue
			}
			if c, ok := edgeContact(&edges[a.edge], &edges[it.edge]); ok {
				return c, true
			}
		}
		active = append(active, it)
	}
	return ringContact{}, false
}

// edgeContact tests two edges whose boxes overlap.
func edgeContact(e, f *vedge) (ringContact, bool) {
	if e.ring > f.ring || (e.ring == f.ring && e.idx > f.idx) {
		e, f = f, e
	}
	c := ringContact{ring1: e.ring, edge1: e.idx, ring2: f.ring, edge2: f.idx}
	if e.ring == f.ring {
		switch {
		case f.idx == e.idx+1: // share e.b == f.a
			c.overlap = backtracks(e.b, e.a, f.b)
			c.kind = touching
			return c, c.overlap
		case e.idx == 0 && f.idx == e.n-1: // share e.a == f.b (ring closure)
			c.overlap = backtracks(e.a, e.b, f.a)
			c.kind = touching
			return c, c.overlap
		}
	}
	c.kind = segContact(e.a, e.b, f.a, f.b)
	return c, c.kind != noContact
}
