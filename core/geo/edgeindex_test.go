package geo

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

// sameFloat reports whether a and b are the same float64, bit for bit.
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b)
}

// agrees reports whether the signed distance got is want bit for bit or,
// for a point within rounding of the boundary, within 1e-9 m of it. (The
// definition counts crossings with every edge; SignedDistance, linear or
// indexed, treats a point outside the bounding box of the polygon as
// outside. They can disagree on the sign for a point a few units in the
// last place outside the box, where the crossing abscissa of an edge
// through that corner of the box rounds past the point.)
func agrees(got, want float64) bool {
	return sameFloat(got, want) || math.Abs(got-want) <= 1e-9
}

// queryPoint draws a point to test against rings: anywhere near them, far
// away, exactly on a vertex, on (or within rounding of) an edge, level with
// a vertex (where the crossing rule is most delicate), or on a vertical or
// horizontal line through a vertex.
func queryPoint(t *rapid.T, rings []Ring) XY {
	var all []XY
	for _, r := range rings {
		all = append(all, r...)
	}
	b := Rect{Min: XY{-10, -10}, Max: XY{10, 10}}
	for _, v := range all {
		if finite(v.X) && finite(v.Y) {
			b.extend(v)
		}
	}
	w := math.Max(b.Max.X-b.Min.X, 1)
	h := math.Max(b.Max.Y-b.Min.Y, 1)
	vertex := func() XY { return all[rapid.IntRange(0, len(all)-1).Draw(t, "v")] }
	switch rapid.IntRange(0, 6).Draw(t, "kind") {
	case 0:
		return vertex()
	case 1:
		r := rings[rapid.IntRange(0, len(rings)-1).Draw(t, "ring")]
		if len(r) < 2 {
			return r[0]
		}
		i := rapid.IntRange(1, len(r)-1).Draw(t, "edge")
		f := rapid.Float64Range(0, 1).Draw(t, "f")
		a, c := r[i-1], r[i]
		return XY{a.X + f*(c.X-a.X), a.Y + f*(c.Y-a.Y)}
	case 2:
		return XY{rapid.Float64Range(b.Min.X-w, b.Max.X+w).Draw(t, "x"), vertex().Y}
	case 3:
		return XY{vertex().X, rapid.Float64Range(b.Min.Y-h, b.Max.Y+h).Draw(t, "y")}
	case 4:
		a := rapid.Float64Range(0, 2*math.Pi).Draw(t, "a")
		d := rapid.Float64Range(1e4, 1e7).Draw(t, "d")
		return XY{b.Min.X + d*math.Cos(a), b.Min.Y + d*math.Sin(a)}
	case 5:
		v := vertex()
		return XY{math.Nextafter(v.X, rapid.Float64().Draw(t, "dx")), math.Nextafter(v.Y, rapid.Float64().Draw(t, "dy"))}
	}
	return XY{rapid.Float64Range(b.Min.X-w/4, b.Max.X+w/4).Draw(t, "x"),
		rapid.Float64Range(b.Min.Y-h/4, b.Max.Y+h/4).Draw(t, "y")}
}

// validRings draws a star-shaped outer ring of up to 400 positions with up
// to three star-shaped holes inside it, around a centre that may be far
// from the origin.
func validRings(t *rapid.T) []Ring {
	c := XY{rapid.Float64Range(-2e5, 2e5).Draw(t, "cx"), rapid.Float64Range(-2e5, 2e5).Draw(t, "cy")}
	scale := rapid.Float64Range(10, 50000).Draw(t, "scale")
	rings := []Ring{starRing(t, "r", c, 0.6*scale, scale, rapid.IntRange(3, 400).Draw(t, "n"))}
	nh := rapid.IntRange(0, 3).Draw(t, "holes")
	for k := 0; k < nh; k++ {
		// Holes in disjoint sectors of the annulus 0.1-0.5 scale.
		a := (2*math.Pi*float64(k) + 1) / 3
		hc := XY{c.X + 0.3*scale*math.Cos(a), c.Y + 0.3*scale*math.Sin(a)}
		rings = append(rings, starRing(t, "h", hc, 0.02*scale, 0.15*scale, rapid.IntRange(3, 60).Draw(t, "nh")))
	}
	return rings
}

// TestEdgeIndexMatchesLinearProperty: for random valid polygons with holes
// and points near, far, on vertices and on edges, SignedDistance through the
// edge index equals the linear scan and the definition (bit for bit, except
// within 1e-9 m of the boundary, see agrees).
func TestEdgeIndexMatchesLinearProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rings := validRings(t)
		indexed := newPolygon(rings, 0)
		if indexed.index.edges == nil {
			t.Fatal("no edge index")
		}
		for i := 0; i < 20; i++ {
			p := queryPoint(t, rings)
			want := bruteSignedDistance(rings, p)
			linear := Polygon{Rings: rings}.SignedDistance(p)
			got := indexed.SignedDistance(p)
			if !agrees(got, linear) || !agrees(got, want) {
				t.Fatalf("indexed SignedDistance(%v) = %v, linear %v, definition %v", p, got, linear, want)
			}
			if got := NewPolygon(rings).SignedDistance(p); !agrees(got, linear) {
				t.Fatalf("NewPolygon SignedDistance(%v) = %v, linear %v", p, got, linear)
			}
		}
	})
}

// TestEdgeIndexMultiPolygonProperty: a MultiPolygon of edge-indexed
// polygons answers as the same MultiPolygon of literals and as the
// definition (deepest inside, else nearest).
func TestEdgeIndexMultiPolygonProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var indexed, literal MultiPolygon
		var all [][]Ring
		var flat []Ring
		for k := rapid.IntRange(1, 5).Draw(t, "parts"); k > 0; k-- {
			rings := validRings(t)
			all = append(all, rings)
			flat = append(flat, rings...)
			indexed = append(indexed, newPolygon(rings, 0))
			literal = append(literal, Polygon{Rings: rings})
		}
		for i := 0; i < 10; i++ {
			p := queryPoint(t, flat)
			deepest, nearest := 0.0, math.Inf(1)
			for _, rings := range all {
				if d := bruteSignedDistance(rings, p); d < 0 {
					deepest = math.Min(deepest, d)
				} else {
					nearest = math.Min(nearest, d)
				}
			}
			want := nearest
			if deepest < 0 {
				want = deepest
			}
			linear := literal.SignedDistance(p)
			got := indexed.SignedDistance(p)
			if !agrees(got, linear) || !agrees(got, want) {
				t.Fatalf("indexed SignedDistance(%v) = %v, linear %v, definition %v", p, got, linear, want)
			}
		}
	})
}

// TestEdgeIndexArbitraryRingsProperty: the index answers the parity and the
// nearest-edge distance exactly like the linear scan even for rings that are
// not valid: self-intersecting walks on a coarse grid (collinear, horizontal
// and repeated edges), unclosed rings, one-position rings and NaN or
// infinite positions.
func TestEdgeIndexArbitraryRingsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var rings []Ring
		for k := rapid.IntRange(1, 4).Draw(t, "rings"); k > 0; k-- {
			n := rapid.IntRange(1, 120).Draw(t, "n")
			step := rapid.SampledFrom([]float64{1, 0.1, 1000}).Draw(t, "step")
			x, y := 0.0, 0.0
			r := make(Ring, 0, n+1)
			for i := 0; i < n; i++ {
				x += float64(rapid.IntRange(-3, 3).Draw(t, "dx")) * step
				y += float64(rapid.IntRange(-3, 3).Draw(t, "dy")) * step
				v := XY{x, y}
				switch rapid.IntRange(0, 40).Draw(t, "odd") {
				case 0:
					v.X = math.NaN()
				case 1:
					v.Y = math.Inf(1)
				case 2:
					v.X = math.Inf(-1)
				}
				r = append(r, v)
			}
			if rapid.Bool().Draw(t, "closed") {
				r = append(r, r[0])
			}
			rings = append(rings, r)
		}
		ix := newEdgeIndex(rings, 0)
		for i := 0; i < 20; i++ {
			p := queryPoint(t, rings)
			if math.IsNaN(p.X) || math.IsNaN(p.Y) || math.IsInf(p.X, 0) || math.IsInf(p.Y, 0) {
				continue
			}
			best, odd := math.Inf(1), false
			for _, r := range rings {
				d2, o := ringDistParity(r, p)
				if d2 < best {
					best = d2
				}
				odd = odd != o
			}
			if got := ix.odd(p); got != odd {
				t.Fatalf("odd(%v) = %v, linear %v", p, got, odd)
			}
			if got := ix.nearest2(p, math.Inf(1)); !sameFloat(got, best) {
				t.Fatalf("nearest2(%v) = %v, linear %v", p, got, best)
			}
			limit := rapid.Float64Range(0, 10).Draw(t, "limit")
			if got := ix.nearest2(p, limit*limit); !sameFloat(got, math.Min(best, limit*limit)) {
				t.Fatalf("nearest2(%v, %v²) = %v, linear %v", p, limit, got, best)
			}
		}
	})
}

// TestEdgeIndexBenchShapes checks the benchmark shapes against the linear
// scan on a grid of points, and that the benchmark points are where their
// names say.
func TestEdgeIndexBenchShapes(t *testing.T) {
	check := func(name string, indexed, literal Shape, b Rect) {
		for i := 0; i <= 60; i++ {
			for j := 0; j <= 60; j++ {
				p := XY{b.Min.X + (b.Max.X-b.Min.X)*(float64(i)/50-0.1), b.Min.Y + (b.Max.Y-b.Min.Y)*(float64(j)/50-0.1)}
				if got, want := indexed.SignedDistance(p), literal.SignedDistance(p); !sameFloat(got, want) {
					t.Fatalf("%s: SignedDistance(%v) = %v, linear %v", name, p, got, want)
				}
			}
		}
	}
	rings := benchPolygon5000()
	pg := NewPolygon(rings)
	check("polygon5000", pg, Polygon{Rings: rings}, pg.Bounds())
	var indexed, literal MultiPolygon
	for _, rings := range benchCounty() {
		indexed = append(indexed, NewPolygon(rings))
		literal = append(literal, Polygon{Rings: rings})
	}
	check("county", indexed, literal, indexed.Bounds())
	pg256 := benchPolygon()
	check("polygon256", pg256, Polygon{Rings: pg256.Rings}, pg256.Bounds())

	for _, c := range []struct {
		name     string
		s        Shape
		p        XY
		min, max float64
	}{
		{"polygon5000 inside", pg, XY{-12000, 9000}, math.Inf(-1), -100},
		{"polygon5000 near", pg, XY{31600, 0}, 0, 2000},
		{"polygon5000 far", pg, XY{400000, 300000}, 1e5, math.Inf(1)},
		{"county inside", indexed, XY{51000, 26000}, math.Inf(-1), -100},
		{"county near", indexed, XY{55350, 50000}, 0, 2000},
		{"county far", indexed, XY{-150000, 200000}, 1e5, math.Inf(1)},
	} {
		if d := c.s.SignedDistance(c.p); !(d > c.min && d < c.max) {
			t.Errorf("%s: SignedDistance = %v, want in (%v, %v)", c.name, d, c.min, c.max)
		}
	}
}

// TestEdgeIndexNoAllocation: queries allocate nothing.
func TestEdgeIndexNoAllocation(t *testing.T) {
	pg := NewPolygon(benchPolygon5000())
	var mp MultiPolygon
	for _, rings := range benchCounty() {
		mp = append(mp, NewPolygon(rings))
	}
	points := []XY{{-12000, 9000}, {0, 38500}, {400000, 300000}, {51000, 26000}, {62500, 37500}}
	var sink float64
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range points {
			sink += pg.SignedDistance(p) + mp.SignedDistance(p)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run", allocs)
	}
	_ = sink
}

// TestEdgeIndexBandSize: a comb whose 2,500 teeth all span most of its
// height would put every tooth edge in every band; the band structure stays
// within bandCap entries per edge and still answers exactly.
func TestEdgeIndexBandSize(t *testing.T) {
	comb := Ring{{0, 0}}
	for i := 0; i < 1250; i++ {
		x := float64(i) * 10
		comb = append(comb, XY{x + 2, 0}, XY{x + 4, 10000}, XY{x + 6, 10000}, XY{x + 8, 0})
	}
	comb = append(comb, XY{12500, 0}, XY{12500, -10}, XY{0, -10}, XY{0, 0})
	ix := newEdgeIndex([]Ring{comb}, 0)
	edges := len(comb) - 1
	if n := len(ix.part) + len(ix.full); n > bandCap*edges {
		t.Errorf("%d band entries for %d edges", n, edges)
	}
	for i := 0; i < 2000; i++ {
		p := XY{float64(i%200)*62.5 + 0.3, float64(i/200)*1000 + 0.7}
		want := bruteSignedDistance([]Ring{comb}, p)
		if got := (Polygon{Rings: []Ring{comb}, index: &polygonIndex{bounds: comb.Bounds(), edges: ix}}).SignedDistance(p); !sameFloat(got, want) {
			t.Fatalf("SignedDistance(%v) = %v, linear %v", p, got, want)
		}
	}
}

// TestEdgeIndexDeterministic: building twice gives the same structure.
func TestEdgeIndexDeterministic(t *testing.T) {
	rings := benchPolygon5000()
	a, b := newEdgeIndex(rings, 0), newEdgeIndex(rings, 0)
	if len(a.segs) != len(b.segs) || len(a.full) != len(b.full) || len(a.part) != len(b.part) {
		t.Fatal("sizes differ")
	}
	for i := range a.segs {
		if a.segs[i] != b.segs[i] {
			t.Fatalf("segment %d differs", i)
		}
	}
	for i := range a.full {
		if a.full[i] != b.full[i] {
			t.Fatalf("band entry %d differs", i)
		}
	}
}

// TestSignedDistanceWithinProperty: below the limit SignedDistanceWithin is
// SignedDistance bit for bit; at or beyond it, it only says so, never less
// than the limit. For polygons with and without an edge index, MultiPolygons
// and circles.
func TestSignedDistanceWithinProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var mp, literal MultiPolygon
		var flat []Ring
		for k := rapid.IntRange(1, 3).Draw(t, "parts"); k > 0; k-- {
			rings := validRings(t)
			flat = append(flat, rings...)
			mp = append(mp, newPolygon(rings, 0))
			literal = append(literal, Polygon{Rings: rings})
		}
		c := Circle{Center: flat[0][0], Radius: rapid.Float64Range(0, 500).Draw(t, "radius")}
		shapes := []Shape{mp[0], literal[0], mp, literal, c}
		for i := 0; i < 10; i++ {
			p := queryPoint(t, flat)
			limit := rapid.Float64Range(1e-3, 2000).Draw(t, "limit")
			for _, s := range shapes {
				exact := s.SignedDistance(p)
				got := s.SignedDistanceWithin(p, limit)
				if exact < limit && !sameFloat(got, exact) {
					t.Fatalf("%T: SignedDistanceWithin(%v, %v) = %v, SignedDistance %v", s, p, limit, got, exact)
				}
				if exact >= limit && got < limit {
					t.Fatalf("%T: SignedDistanceWithin(%v, %v) = %v below the limit, SignedDistance %v", s, p, limit, got, exact)
				}
			}
		}
	})
}
