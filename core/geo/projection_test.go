package geo

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

// Norway's box, as used throughout the tests.
const (
	testLatMin, testLatMax = 58.0, 71.0
	testLonMin, testLonMax = 4.0, 31.0
)

// TestForwardReferenceTM compares Forward with PROJ's tmerc (an independent
// implementation) for points up to 700 km from the central meridian.
func TestForwardReferenceTM(t *testing.T) {
	r := mustReference(t)
	if len(r.TM) == 0 {
		t.Skip("reference has no TM values (generated without python3-pyproj)")
	}
	const tol = 1e-6 // metres
	worst := 0.0
	for _, c := range r.TM {
		p := NewProjection(LatLon{c.OLat, c.OLon})
		got := p.Forward(LatLon{c.Lat, c.Lon})
		d := math.Hypot(got.X-c.X, got.Y-c.Y)
		worst = math.Max(worst, d)
		if d > tol {
			t.Errorf("origin (%v,%v): Forward(%v,%v) = %v, want (%v,%v), off by %.3g m",
				c.OLat, c.OLon, c.Lat, c.Lon, got, c.X, c.Y, d)
		}
		back := p.Inverse(XY{c.X, c.Y})
		if math.Abs(back.Lat-c.Lat) > 1e-9 || math.Abs(back.Lon-c.Lon) > 1e-9 {
			t.Errorf("origin (%v,%v): Inverse(%v,%v) = %v, want (%v,%v)",
				c.OLat, c.OLon, c.X, c.Y, back, c.Lat, c.Lon)
		}
	}
	t.Logf("%d TM reference points: max position error %.3g m", len(r.TM), worst)
}

// TestForwardMeridian: on the central meridian the northing is the meridian
// arc length from the origin, which GeographicLib computes independently.
func TestForwardMeridian(t *testing.T) {
	r := mustReference(t)
	worst := 0.0
	for _, c := range r.Meridian {
		p := NewProjection(LatLon{c.OLat, c.OLon})
		got := p.Forward(LatLon{c.Lat, c.OLon})
		worst = math.Max(worst, math.Abs(got.Y-c.Y))
		if got.X != 0 || math.Abs(got.Y-c.Y) > 1e-6 {
			t.Errorf("origin (%v,%v): Forward(%v,%v) = %v, want (0,%v)", c.OLat, c.OLon, c.Lat, c.OLon, got, c.Y)
		}
	}
	t.Logf("%d meridian arcs: max error %.3g m", len(r.Meridian), worst)
}

func TestProjectionOrigin(t *testing.T) {
	o := LatLon{59.91, 10.75}
	p := NewProjection(o)
	if p.Origin() != o {
		t.Fatalf("Origin() = %v, want %v", p.Origin(), o)
	}
	if xy := p.Forward(o); xy != (XY{}) {
		t.Fatalf("Forward(origin) = %v, want (0,0)", xy)
	}
	if ll := p.Inverse(XY{}); math.Abs(ll.Lat-o.Lat) > 1e-12 || math.Abs(ll.Lon-o.Lon) > 1e-12 {
		t.Fatalf("Inverse(0,0) = %v, want %v", ll, o)
	}
	// East is +X, north is +Y.
	if xy := p.Forward(LatLon{59.91, 10.76}); !(xy.X > 0 && math.Abs(xy.Y) < 1) {
		t.Errorf("a point east of the origin projects to %v", xy)
	}
	if xy := p.Forward(LatLon{59.92, 10.75}); !(xy.Y > 0 && xy.X == 0) {
		t.Errorf("a point north of the origin projects to %v", xy)
	}
}

// TestRoundTrip: Inverse(Forward(ll)) == ll to 1e-9 degrees for origins and
// points anywhere in Norway's box (up to ~1,600 km off the central meridian).
func TestRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := LatLon{rapid.Float64Range(testLatMin, testLatMax).Draw(t, "olat"), rapid.Float64Range(testLonMin, testLonMax).Draw(t, "olon")}
		ll := LatLon{rapid.Float64Range(testLatMin, testLatMax).Draw(t, "lat"), rapid.Float64Range(testLonMin, testLonMax).Draw(t, "lon")}
		p := NewProjection(o)
		xy := p.Forward(ll)
		back := p.Inverse(xy)
		if math.Abs(back.Lat-ll.Lat) > 1e-9 || math.Abs(back.Lon-ll.Lon) > 1e-9 {
			t.Fatalf("origin %v: %v -> %v -> %v", o, ll, xy, back)
		}
		xy2 := p.Forward(back)
		if math.Hypot(xy2.X-xy.X, xy2.Y-xy.Y) > 1e-6 {
			t.Fatalf("origin %v: %v -> %v -> %v -> %v", o, ll, xy, back, xy2)
		}
	})
}

// segmentNear draws a point A in the test box whose distance from the central
// meridian of a projection centred near it is at most maxX metres, and a point
// B at most maxLen metres from A (per axis), also within maxX.
func segmentNear(t *rapid.T, maxX, maxLen float64) (p *Projection, a, b LatLon) {
	lat := rapid.Float64Range(testLatMin+0.5, testLatMax-0.5).Draw(t, "lat")
	lon := rapid.Float64Range(testLonMin, testLonMax).Draw(t, "lon")
	oLat := rapid.Float64Range(testLatMin, testLatMax).Draw(t, "olat")
	p = NewProjection(LatLon{oLat, lon})
	c := p.Forward(LatLon{lat, lon})
	ax := rapid.Float64Range(-maxX, maxX).Draw(t, "ax")
	bx := rapid.Float64Range(math.Max(-maxX, ax-maxLen), math.Min(maxX, ax+maxLen)).Draw(t, "bx")
	dy := rapid.Float64Range(-maxLen, maxLen).Draw(t, "dy")
	a = p.Inverse(XY{ax, c.Y})
	b = p.Inverse(XY{bx, c.Y + dy})
	return p, a, b
}

// TestProjectedDistanceAccuracy is the accuracy contract: for points at
// 58°-71° N within 50 km of each other, the planar distance agrees with the
// geodesic distance to 0.01 % as long as both points are within 85 km of the
// central meridian. (The scale factor of a transverse Mercator with k0 = 1
// is 1 + x²/2R², so 0.01 % is reached at x ≈ 90 km; see
// TestDistortionByOffset and TestScaleCorrectedDistance for 200 km.)
func TestProjectedDistanceAccuracy(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p, a, b := segmentNear(t, 85e3, 35e3)
		geod := Distance(a, b)
		if geod > 50e3 { // at most 49.5 km by construction
			t.Skip("more than 50 km apart")
		}
		pa, pb := p.Forward(a), p.Forward(b)
		planar := math.Hypot(pb.X-pa.X, pb.Y-pa.Y)
		if math.Abs(planar-geod) > 1e-4*geod+1e-8 { // 10 nm floor: float64 round-off
			t.Fatalf("origin %v, %v-%v: planar %.6f m, geodesic %.6f m, rel %.3g",
				p.Origin(), a, b, planar, geod, (planar-geod)/geod)
		}
	})
}

// TestScaleCorrectedDistance: within 200 km of the central meridian, a
// planar distance divided by the scale factor (Simpson's rule over the
// segment) agrees with the geodesic distance to 1e-7, and divided by the
// scale at the midpoint alone to 5e-6.
func TestScaleCorrectedDistance(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p, a, b := segmentNear(t, 200e3, 35e3)
		geod := Distance(a, b)
		if geod > 50e3 || geod == 0 {
			t.Skip("more than 50 km apart, or coincident")
		}
		pa, pb := p.Forward(a), p.Forward(b)
		planar := math.Hypot(pb.X-pa.X, pb.Y-pa.Y)
		km := p.ScaleAt(XY{(pa.X + pb.X) / 2, (pa.Y + pb.Y) / 2})
		simpson := (p.ScaleAt(pa) + 4*km + p.ScaleAt(pb)) / 6
		// A 10 nm floor covers float64 round-off on millimetre segments.
		if rel := math.Abs(planar/simpson-geod) / geod; rel > 1e-7+1e-8/geod {
			t.Fatalf("%v-%v: planar/k %.6f m, geodesic %.6f m, rel %.3g", a, b, planar/simpson, geod, rel)
		}
		if rel := math.Abs(planar/km-geod) / geod; rel > 5e-6+1e-8/geod {
			t.Fatalf("%v-%v: planar/k(mid) %.6f m, geodesic %.6f m, rel %.3g", a, b, planar/km, geod, rel)
		}
	})
}

// TestDistortionByOffset measures the raw planar-vs-geodesic error of a
// 10 km east-west segment centred at several distances from the central
// meridian, at 58° and 71° N, and checks it against 1 + x²/2R².
func TestDistortionByOffset(t *testing.T) {
	for _, lat := range []float64{58, 64.5, 71} {
		p := NewProjection(LatLon{lat, 15})
		c := p.Forward(LatLon{lat, 15})
		for _, off := range []float64{0, 25e3, 50e3, 85e3, 90e3, 150e3, 200e3} {
			a := p.Inverse(XY{off - 5e3, c.Y})
			b := p.Inverse(XY{off + 5e3, c.Y})
			pa, pb := p.Forward(a), p.Forward(b)
			planar := math.Hypot(pb.X-pa.X, pb.Y-pa.Y)
			geod := Distance(a, b)
			rel := (planar - geod) / geod
			// Line scale 1 + (x1² + x1x2 + x2²)/6R², R ≈ 6,380 km; within 2 %.
			want := (sq(off-5e3) + (off-5e3)*(off+5e3) + sq(off+5e3)) / (6 * sq(6380e3))
			if math.Abs(rel-want) > 0.02*want+1e-9 {
				t.Errorf("lat %v, %v km off: relative error %.4g, want about %.4g", lat, off/1e3, rel, want)
			}
			if off <= 85e3 && rel > 1e-4 {
				t.Errorf("lat %v, %v km off: relative error %.4g exceeds 0.01 %%", lat, off/1e3, rel)
			}
			t.Logf("lat %4.1f°N, %3.0f km from the central meridian: planar/geodesic - 1 = %.3e", lat, off/1e3, rel)
		}
	}
}

func TestScaleAt(t *testing.T) {
	p := NewProjection(LatLon{64, 14})
	for _, y := range []float64{-600e3, 0, 700e3} {
		if k := p.ScaleAt(XY{0, y}); math.Abs(k-1) > 1e-15 {
			t.Errorf("ScaleAt(0, %v) = %.17g, want 1", y, k)
		}
	}
	// Against the ratio of planar to geodesic length of 1 km segments.
	for _, x := range []float64{10e3, 100e3, 200e3, 400e3} {
		a, b := p.Inverse(XY{x - 500, 1000}), p.Inverse(XY{x + 500, 1000})
		ratio := 1000 / Distance(a, b)
		if k := p.ScaleAt(XY{x, 1000}); math.Abs(k-ratio) > 1e-8 {
			t.Errorf("ScaleAt(%v, 1000) = %.12f, planar/geodesic = %.12f", x, k, ratio)
		}
	}
}

// TestForwardFinite: every valid position projects to finite coordinates,
// including the singular points of the transverse Mercator.
func TestForwardFinite(t *testing.T) {
	p := NewProjection(LatLon{0, 0})
	for _, ll := range []LatLon{{90, 0}, {-90, 0}, {0, 90}, {0, -90}, {0, 180}, {0, -180}, {45, 180}, {90, 180}, {-90, -90}, {1e-300, 90}} {
		xy := p.Forward(ll)
		if math.IsNaN(xy.X) || math.IsInf(xy.X, 0) || math.IsNaN(xy.Y) || math.IsInf(xy.Y, 0) {
			t.Errorf("Forward(%v) = %v", ll, xy)
		}
		back := p.Inverse(xy)
		if math.IsNaN(back.Lat) || math.IsNaN(back.Lon) {
			t.Errorf("Inverse(Forward(%v)) = %v", ll, back)
		}
	}
	if xy := NewProjection(LatLon{91, 0}).Forward(LatLon{60, 10}); !math.IsNaN(xy.X) {
		t.Errorf("projection with an invalid origin gave %v, want NaN", xy)
	}
}
