package geo

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

func ring(pts ...float64) Ring {
	r := make(Ring, 0, len(pts)/2)
	for i := 0; i+1 < len(pts); i += 2 {
		r = append(r, XY{pts[i], pts[i+1]})
	}
	return r
}

// square returns the closed axis-aligned square [x0,x1]×[y0,y1].
func square(x0, y0, x1, y1 float64) Ring {
	return ring(x0, y0, x1, y0, x1, y1, x0, y1, x0, y0)
}

// polygonForm is a polygon built one way.
type polygonForm struct {
	name string
	pg   Polygon
}

// polygonForms returns the polygon with its index (as NewPolygon builds it
// and with the edge index forced even for a few edges) and without; all
// must give the same answers.
func polygonForms(rings ...Ring) []polygonForm {
	return []polygonForm{
		{"indexed", NewPolygon(rings)},
		{"edge-indexed", newPolygon(rings, 0)},
		{"literal", Polygon{Rings: rings}},
	}
}

func TestPolygonSignedDistance(t *testing.T) {
	sq10 := square(0, 0, 10, 10)
	holed := []Ring{sq10, square(4, 4, 6, 6)}
	// A U shape: a 10×10 square with a 4×7 notch cut from the top middle.
	u := ring(0, 0, 10, 0, 10, 10, 7, 10, 7, 3, 3, 3, 3, 10, 0, 10, 0, 0)
	tests := []struct {
		name  string
		rings []Ring
		p     XY
		want  float64
	}{
		{"square centre", []Ring{sq10}, XY{5, 5}, -5},
		{"square near edge", []Ring{sq10}, XY{1, 5}, -1},
		{"square near corner inside", []Ring{sq10}, XY{9, 9.5}, -0.5},
		{"square outside beside", []Ring{sq10}, XY{15, 5}, 5},
		{"square outside diagonal 3-4-5", []Ring{sq10}, XY{13, 14}, 5},
		{"square outside far", []Ring{sq10}, XY{-3000, -4000}, 5000},
		{"square on edge", []Ring{sq10}, XY{0, 5}, 0},
		{"square on top edge", []Ring{sq10}, XY{7.25, 10}, 0},
		{"square on vertex", []Ring{sq10}, XY{10, 10}, 0},
		{"square reversed orientation", []Ring{ring(0, 0, 0, 10, 10, 10, 10, 0, 0, 0)}, XY{2, 5}, -2},
		{"hole centre is outside", holed, XY{5, 5}, 1},
		{"hole near hole edge", holed, XY{5, 4.25}, 0.25},
		{"between hole and outer, nearer hole", holed, XY{3, 5}, -1},
		{"between hole and outer, equidistant", holed, XY{2, 5}, -2},
		{"between hole and outer, nearer outer", holed, XY{0.5, 5}, -0.5},
		{"on hole edge", holed, XY{4, 5}, 0},
		{"outside polygon with hole", holed, XY{-1, 5}, 1},
		{"U inside bottom", []Ring{u}, XY{5, 1}, -1},
		{"U inside left arm", []Ring{u}, XY{1.5, 6}, -1.5},
		{"U in the notch is outside", []Ring{u}, XY{5, 8}, 2},
		{"U notch bottom", []Ring{u}, XY{5, 3.5}, 0.5},
		{"U notch inner corner", []Ring{u}, XY{4, 4}, 1},
		{"U above notch", []Ring{u}, XY{5, 12}, 2.8284271247461903},
		{"U on notch edge", []Ring{u}, XY{3, 7}, 0},
	}
	for _, tc := range tests {
		for _, f := range polygonForms(tc.rings...) {
			t.Run(tc.name+"/"+f.name, func(t *testing.T) {
				got := f.pg.SignedDistance(tc.p)
				if math.Abs(got-tc.want) > 1e-12 || math.Signbit(got) != math.Signbit(tc.want) {
					t.Errorf("SignedDistance(%v) = %v, want %v", tc.p, got, tc.want)
				}
			})
		}
	}
}

func TestPolygonBounds(t *testing.T) {
	rings := []Ring{ring(-1, 2, 5, -3, 7, 9, -1, 2), square(0, 0, 1, 1)}
	want := Rect{Min: XY{-1, -3}, Max: XY{7, 9}}
	for _, f := range polygonForms(rings...) {
		if got := f.pg.Bounds(); got != want {
			t.Errorf("%s: Bounds() = %v, want %v", f.name, got, want)
		}
	}
	empty := NewPolygon(nil)
	if !empty.Bounds().IsEmpty() {
		t.Errorf("empty polygon bounds %v not empty", empty.Bounds())
	}
	if d := empty.SignedDistance(XY{}); !math.IsInf(d, 1) {
		t.Errorf("empty polygon SignedDistance = %v, want +Inf", d)
	}
	if d := (Polygon{}).SignedDistance(XY{}); !math.IsInf(d, 1) {
		t.Errorf("zero Polygon SignedDistance = %v, want +Inf", d)
	}
}

func TestMultiPolygonSignedDistance(t *testing.T) {
	a := NewPolygon([]Ring{square(0, 0, 10, 10)})
	b := NewPolygon([]Ring{square(20, 0, 30, 10), square(24, 4, 26, 6)})
	c := NewPolygon([]Ring{square(5, 0, 15, 10)}) // overlaps a
	tests := []struct {
		name string
		mp   MultiPolygon
		p    XY
		want float64
	}{
		{"between", MultiPolygon{a, b}, XY{15, 5}, 5},
		{"nearer the first", MultiPolygon{a, b}, XY{12, 5}, 2},
		{"nearer the second", MultiPolygon{a, b}, XY{19, 5}, 1},
		{"inside the first", MultiPolygon{a, b}, XY{5, 5}, -5},
		{"inside the second", MultiPolygon{a, b}, XY{21, 5}, -1},
		{"in the hole of the second", MultiPolygon{a, b}, XY{25, 5}, 1},
		{"on the boundary of the second", MultiPolygon{a, b}, XY{30, 5}, 0},
		{"far away", MultiPolygon{a, b}, XY{5, 1010}, 1000},
		{"overlap takes the deepest", MultiPolygon{a, c}, XY{9, 5}, -4},
		{"overlap, on one boundary inside the other", MultiPolygon{a, c}, XY{10, 5}, -5},
		{"literal polygons", MultiPolygon{{Rings: a.Rings}, {Rings: b.Rings}}, XY{12, 5}, 2},
		{"empty", MultiPolygon{}, XY{0, 0}, math.Inf(1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.mp.SignedDistance(tc.p); got != tc.want {
				t.Errorf("SignedDistance(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
	if got, want := (MultiPolygon{a, b}).Bounds(), (Rect{Min: XY{0, 0}, Max: XY{30, 10}}); got != want {
		t.Errorf("Bounds() = %v, want %v", got, want)
	}
}

func TestCircle(t *testing.T) {
	c := Circle{Center: XY{100, 100}, Radius: 50}
	for _, tc := range []struct {
		p    XY
		want float64
	}{
		{XY{100, 100}, -50},
		{XY{160, 100}, 10},
		{XY{150, 100}, 0},
		{XY{130, 140}, 0},
		{XY{100, 80}, -30},
		{XY{-200, -300}, 450},
	} {
		if got := c.SignedDistance(tc.p); got != tc.want {
			t.Errorf("SignedDistance(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got, want := c.Bounds(), (Rect{Min: XY{50, 50}, Max: XY{150, 150}}); got != want {
		t.Errorf("Bounds() = %v, want %v", got, want)
	}
}

func TestRect(t *testing.T) {
	r := Rect{Min: XY{0, 0}, Max: XY{10, 5}}
	if !r.Contains(XY{10, 5}) || r.Contains(XY{10.1, 5}) {
		t.Error("Contains is wrong on the boundary")
	}
	for _, tc := range []struct {
		p    XY
		want float64
	}{{XY{5, 2}, 0}, {XY{-3, 2}, 3}, {XY{13, 9}, 5}, {XY{5, -1}, 1}} {
		if got := r.Distance(tc.p); got != tc.want {
			t.Errorf("Distance(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	e := EmptyRect()
	if !e.IsEmpty() || r.IsEmpty() || e.Contains(XY{}) || !math.IsInf(e.Distance(XY{}), 1) {
		t.Error("EmptyRect is not empty")
	}
	if got := e.Union(r); got != r {
		t.Errorf("EmptyRect().Union(r) = %v", got)
	}
}

// TestProjectPolygon: a 0.01° × 0.01° square in Oslo, projected about its
// centre; distances from the centre to the edges match geodesic distances.
func TestProjectPolygon(t *testing.T) {
	coords := [][][]float64{{{10.74, 59.91}, {10.76, 59.91}, {10.76, 59.92}, {10.74, 59.92}, {10.74, 59.91}}}
	centre := LatLon{59.915, 10.75}
	p := NewProjection(centre)
	pg := ProjectPolygon(p, coords)
	if len(pg.Rings) != 1 || len(pg.Rings[0]) != 5 || pg.Rings[0][0] != pg.Rings[0][4] {
		t.Fatalf("unexpected rings %v", pg.Rings)
	}
	d := pg.SignedDistance(XY{})
	// The nearest edges are north and south, half of 0.01° of latitude away.
	// A straight projected edge is a chord of the curved parallel, 4.3 cm
	// nearer the centre at its middle (sagitta L²/8R, L = 1.1 km,
	// R = ν cot φ = 3,700 km).
	want := Distance(centre, LatLon{59.92, 10.75})
	if math.Abs(-d-(want-0.043)) > 0.002 {
		t.Errorf("SignedDistance(centre) = %v, want about -%v", d, want)
	}
	outside := p.Forward(LatLon{59.915, 10.78})
	wantOut := Distance(LatLon{59.915, 10.76}, LatLon{59.915, 10.78})
	if got := pg.SignedDistance(outside); math.Abs(got-wantOut) > 0.01 {
		t.Errorf("SignedDistance(east) = %v, want about %v", got, wantOut)
	}
	mp := ProjectMultiPolygon(p, [][][][]float64{coords, {{{10.8, 59.9}, {10.81, 59.9}, {10.81, 59.91}, {10.8, 59.9}}}})
	if len(mp) != 2 || mp.SignedDistance(XY{}) != d {
		t.Errorf("ProjectMultiPolygon: %d polygons, SignedDistance %v", len(mp), mp.SignedDistance(XY{}))
	}
	// Positions with too few numbers do not panic.
	bad := ProjectPolygon(p, [][][]float64{{{10.74}, {}, {10.74, 59.91}}})
	if !math.IsNaN(bad.Rings[0][0].X) || math.IsNaN(bad.Rings[0][2].X) {
		t.Errorf("short positions projected to %v", bad.Rings[0])
	}
}

// starRing draws a star-shaped closed ring around c with radii in [rmin, rmax].
func starRing(t *rapid.T, label string, c XY, rmin, rmax float64, n int) Ring {
	r := make(Ring, 0, n+1)
	for i := 0; i < n; i++ {
		rad := rapid.Float64Range(rmin, rmax).Draw(t, label)
		a := 2 * math.Pi * float64(i) / float64(n)
		r = append(r, XY{c.X + rad*math.Cos(a), c.Y + rad*math.Sin(a)})
	}
	return append(r, r[0])
}

// bruteSignedDistance is the definition: even-odd parity over all rings and
// the minimum distance to every edge, with no pruning.
func bruteSignedDistance(rings []Ring, p XY) float64 {
	best := math.Inf(1)
	odd := false
	for _, r := range rings {
		d2, o := ringDistParity(r, p)
		best = math.Min(best, d2)
		odd = odd != o
	}
	d := math.Sqrt(best)
	switch {
	case d == 0:
		return 0
	case odd:
		return -d
	}
	return d
}

// TestSignedDistancePruningProperty: the bounding-box pruning never changes
// a result, for polygons with holes and multipolygons, near and far.
func TestSignedDistancePruningProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		npoly := rapid.IntRange(1, 4).Draw(t, "npoly")
		var mp MultiPolygon
		var polys [][]Ring
		for k := 0; k < npoly; k++ {
			c := XY{rapid.Float64Range(-5000, 5000).Draw(t, "cx"), rapid.Float64Range(-5000, 5000).Draw(t, "cy")}
			rings := []Ring{starRing(t, "r", c, 600, 1000, rapid.IntRange(3, 40).Draw(t, "n"))}
			if rapid.Bool().Draw(t, "hole") {
				rings = append(rings, starRing(t, "h", c, 100, 500, rapid.IntRange(3, 20).Draw(t, "nh")))
			}
			polys = append(polys, rings)
			mp = append(mp, NewPolygon(rings))
		}
		p := XY{rapid.Float64Range(-8000, 8000).Draw(t, "px"), rapid.Float64Range(-8000, 8000).Draw(t, "py")}
		deepest, nearest := 0.0, math.Inf(1)
		for k, rings := range polys {
			want := bruteSignedDistance(rings, p)
			if got := mp[k].SignedDistance(p); got != want {
				t.Fatalf("polygon %d: SignedDistance(%v) = %v, brute force %v", k, p, got, want)
			}
			if got := (Polygon{Rings: rings}).SignedDistance(p); got != want {
				t.Fatalf("literal polygon %d: SignedDistance(%v) = %v, brute force %v", k, p, got, want)
			}
			if want < 0 {
				deepest = math.Min(deepest, want)
			} else {
				nearest = math.Min(nearest, want)
			}
		}
		want := nearest
		if deepest < 0 {
			want = deepest
		}
		if got := mp.SignedDistance(p); got != want {
			t.Fatalf("multipolygon: SignedDistance(%v) = %v, want %v", p, got, want)
		}
	})
}
