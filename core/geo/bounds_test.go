package geo

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

// drawNear returns a position up to spread degrees of latitude (and twice
// that of longitude) from c, sometimes exactly on c's parallel or meridian.
func drawNear(t *rapid.T, c LatLon, spread float64, label string) LatLon {
	lat := c.Lat + rapid.Float64Range(-spread, spread).Draw(t, label+"lat")
	lon := c.Lon + rapid.Float64Range(-2*spread, 2*spread).Draw(t, label+"lon")
	switch rapid.IntRange(0, 5).Draw(t, label+"axis") {
	case 0:
		lat = c.Lat
	case 1:
		lon = c.Lon
	}
	return LatLon{math.Max(-90, math.Min(90, lat)), angRemainder(lon, 360)}
}

// The bounds hold for the geodesic, anywhere on Earth, from metres to
// thousands of kilometres.
func TestDistanceBoundsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var c LatLon
		if rapid.Bool().Draw(t, "norway") {
			c = LatLon{rapid.Float64Range(testLatMin, testLatMax).Draw(t, "clat"), rapid.Float64Range(testLonMin, testLonMax).Draw(t, "clon")}
		} else {
			c = LatLon{rapid.Float64Range(-89, 89).Draw(t, "clat"), rapid.Float64Range(-180, 180).Draw(t, "clon")}
		}
		spread := []float64{1e-5, 1e-3, 0.05, 1, 10}[rapid.IntRange(0, 4).Draw(t, "spread")]
		p, q := drawNear(t, c, spread, "p"), drawNear(t, c, spread, "q")
		d := Distance(p, q)
		lo, hi := DistanceBounds(p, q)
		// Distance itself is accurate to nanometres, not to the last bit.
		const tol = 1e-7
		if !(lo <= d+tol && d <= hi+tol) {
			t.Fatalf("DistanceBounds(%v, %v) = [%v, %v], Distance = %v", p, q, lo, hi, d)
		}
		b := NewBand(c.Lat, 2)
		if l, u := b.Lower(p, q), b.Upper(p, q); !(l <= d+tol && d <= u+tol) {
			t.Fatalf("band at %v: [%v, %v], Distance = %v", c.Lat, l, u, d)
		}
	})
}

// In a projection the distance between projected positions is bounded by
// the same Lower and by ScaleBound × Upper; the scale itself stays below
// ScaleBound over the region.
func TestProjectedDistanceBoundsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := LatLon{rapid.Float64Range(testLatMin, testLatMax).Draw(t, "olat"), rapid.Float64Range(testLonMin, testLonMax).Draw(t, "olon")}
		pr := NewProjection(o)
		const half, dLon = 2.0, 5.0
		b := NewBand(o.Lat, half)
		k := pr.ScaleBound(b, dLon)
		draw := func(label string) LatLon {
			return LatLon{
				o.Lat + rapid.Float64Range(-half, half).Draw(t, label+"lat"),
				o.Lon + rapid.Float64Range(-dLon, dLon).Draw(t, label+"lon"),
			}
		}
		p := draw("p")
		var q LatLon
		if rapid.Bool().Draw(t, "close") {
			s := []float64{1e-4, 1e-2, 0.1}[rapid.IntRange(0, 2).Draw(t, "spread")]
			q = drawNear(t, p, s, "q")
			q.Lat = math.Max(o.Lat-half, math.Min(o.Lat+half, q.Lat))
			q.Lon = math.Max(o.Lon-dLon, math.Min(o.Lon+dLon, q.Lon))
		} else {
			q = draw("q")
		}
		xp, xq := pr.Forward(p), pr.Forward(q)
		pd := math.Hypot(xp.X-xq.X, xp.Y-xq.Y)
		if l := b.Lower(p, q); !(l <= pd+1e-6) { // Forward rounds to nanometres
			t.Fatalf("Lower(%v, %v) = %v > projected %v", p, q, l, pd)
		}
		if u := k * b.Upper(p, q); !(pd <= u+1e-6) { // Forward rounds to nanometres
			t.Fatalf("ScaleBound %v × Upper(%v, %v) = %v < projected %v", k, p, q, u, pd)
		}
		if s := pr.ScaleAt(xp); !(s <= k) {
			t.Fatalf("ScaleAt(%v) = %v > ScaleBound %v", p, s, k)
		}
	})
}

func TestBoundsOutsideBand(t *testing.T) {
	b := NewBand(60, 1)
	in, out := LatLon{60.5, 10}, LatLon{61.5, 10}
	if b.Lower(in, out) != 0 || !math.IsInf(b.Upper(in, out), 1) {
		t.Fatalf("outside the band: [%v, %v], want [0, +Inf]", b.Lower(in, out), b.Upper(in, out))
	}
	if lo, hi := DistanceBounds(in, LatLon{math.NaN(), 0}); lo != 0 || !math.IsInf(hi, 1) {
		t.Fatalf("NaN: [%v, %v]", lo, hi)
	}
	var zero Band
	if zero.Lower(in, in) != 0 || !math.IsInf(zero.Upper(in, in), 1) {
		t.Fatal("the zero Band must give the trivial bounds")
	}
}

// How tight the bounds are where the evaluator uses them: kilometres apart
// in Norway.
func TestDistanceBoundsTightness(t *testing.T) {
	worstLo, worstHi := 1.0, 1.0
	for lat := 58.0; lat <= 71; lat += 0.5 {
		b := NewBand(lat, 2)
		for a := 0.0; a < 2*math.Pi; a += 0.1 {
			p := LatLon{lat, 10}
			q := LatLon{lat + 0.03*math.Sin(a), 10 + 0.06*math.Cos(a)}
			d := Distance(p, q)
			worstLo = math.Min(worstLo, b.Lower(p, q)/d)
			worstHi = math.Max(worstHi, b.Upper(p, q)/d)
		}
	}
	t.Logf("Band(±2°): lower ≥ %.3f × distance, upper ≤ %.4f × distance", worstLo, worstHi)
	if worstLo < 0.8 || worstHi > 1.15 {
		t.Fatalf("bounds too loose to be useful: %.3f, %.3f", worstLo, worstHi)
	}
}

// Every point of a shape is inside its enclosing disc, so outside the disc
// the signed distance is at least the distance to the disc.
func TestEnclosingDiscProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s Shape
		switch rapid.IntRange(0, 2).Draw(t, "type") {
		case 0:
			s = Circle{Center: XY{rapid.Float64Range(-1e4, 1e4).Draw(t, "cx"), rapid.Float64Range(-1e4, 1e4).Draw(t, "cy")}, Radius: rapid.Float64Range(0, 5000).Draw(t, "r")}
		case 1:
			s = NewPolygon(drawRings(t))
		default:
			s = MultiPolygon{NewPolygon(drawRings(t)), NewPolygon(drawRings(t))}
		}
		c, r, ok := EnclosingDisc(s)
		if !ok {
			t.Fatalf("no disc for %T", s)
		}
		a := rapid.Float64Range(0, 2*math.Pi).Draw(t, "a")
		dist := rapid.Float64Range(0, 3).Draw(t, "k") * (r + 1)
		p := XY{c.X + dist*math.Cos(a), c.Y + dist*math.Sin(a)}
		if d := s.SignedDistance(p); dist > r && d < dist-r-1e-9*(1+r+dist) {
			t.Fatalf("%v is %v from the disc (%v, r %v) but %v from the shape", p, dist-r, c, r, d)
		}
	})
	if _, _, ok := EnclosingDisc(Polygon{}); ok {
		t.Fatal("an empty polygon has no disc")
	}
	if _, _, ok := EnclosingDisc(Circle{Radius: math.NaN()}); ok {
		t.Fatal("a NaN circle has no disc")
	}
}

// drawRings draws a star-shaped ring around a random centre, sometimes with
// a hole.
func drawRings(t *rapid.T) []Ring {
	cx, cy := rapid.Float64Range(-1e4, 1e4).Draw(t, "px"), rapid.Float64Range(-1e4, 1e4).Draw(t, "py")
	n := rapid.IntRange(3, 80).Draw(t, "n")
	r := rapid.Float64Range(1, 3000).Draw(t, "pr")
	outer := make(Ring, 0, n+1)
	for i := 0; i < n; i++ {
		a := 2 * math.Pi * float64(i) / float64(n)
		k := rapid.Float64Range(0.5, 1).Draw(t, "k")
		outer = append(outer, XY{cx + r*k*math.Cos(a), cy + r*k*math.Sin(a)})
	}
	outer = append(outer, outer[0])
	rings := []Ring{outer}
	if rapid.Bool().Draw(t, "hole") {
		h := r * 0.2
		rings = append(rings, Ring{{cx - h, cy - h}, {cx + h, cy - h}, {cx + h, cy + h}, {cx - h, cy + h}, {cx - h, cy - h}})
	}
	return rings
}

// Positions farther apart than Degrees(m) in latitude or longitude are more
// than m apart by Lower, so boxes of those widths can stand in for discs.
func TestBandDegreesProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := NewBand(rapid.Float64Range(-80, 80).Draw(t, "lat0"), 2)
		m := rapid.Float64Range(0, 90000).Draw(t, "m")
		dLat, dLon := b.Degrees(m)
		p := LatLon{b.lat0 + rapid.Float64Range(-2, 2).Draw(t, "plat"), rapid.Float64Range(-180, 180).Draw(t, "plon")}
		q := LatLon{b.lat0 + rapid.Float64Range(-2, 2).Draw(t, "qlat"), p.Lon + rapid.Float64Range(-3, 3).Draw(t, "dlon")}
		if q.Lon > 180 {
			q.Lon -= 360
		}
		if q.Lon < -180 {
			q.Lon += 360
		}
		far := math.Abs(p.Lat-q.Lat) > dLat || math.Abs(angRemainder(p.Lon-q.Lon, 360)) > dLon
		if far && b.Contains(p) && b.Contains(q) && !(b.Lower(p, q) > m) {
			t.Fatalf("%v and %v differ by more than (%v, %v) degrees but Lower = %v <= %v", p, q, dLat, dLon, b.Lower(p, q), m)
		}
	})
	if b := NewBand(60, 2); !math.IsInf(firstOf(b.Degrees(200000)), 1) {
		t.Fatal("no width holds beyond a degree of latitude")
	}
}

func firstOf(a, _ float64) float64 { return a }
