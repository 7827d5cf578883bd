package geo

import (
	"math"
	"testing"
)

// benchPolygon returns a 256-vertex polygon (255 distinct vertices) of about
// 2 km radius around the origin, with a wobbly outline, and an 8-vertex hole.
func benchPolygon() Polygon {
	const n = 255
	outer := make(Ring, 0, n+1)
	for i := 0; i < n; i++ {
		a := 2 * math.Pi * float64(i) / n
		r := 2000 * (1 + 0.1*math.Sin(5*a) + 0.03*math.Cos(17*a))
		outer = append(outer, XY{r * math.Cos(a), r * math.Sin(a)})
	}
	outer = append(outer, outer[0])
	return NewPolygon([]Ring{outer})
}

func BenchmarkSignedDistancePolygon256(b *testing.B) {
	pg := benchPolygon()
	cases := []struct {
		name string
		p    XY
	}{
		{"inside", XY{300, -200}},
		{"near-outside", XY{2500, 100}},
		{"far", XY{40000, 30000}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var sink float64
			for b.Loop() {
				sink += pg.SignedDistance(c.p)
			}
			_ = sink
		})
	}
}

func BenchmarkDistance(b *testing.B) {
	cases := []struct {
		name string
		a, c LatLon
	}{
		{"100m", LatLon{59.91, 10.75}, LatLon{59.9109, 10.7501}},
		{"50km", LatLon{59.91, 10.75}, LatLon{60.3, 11.2}},
		{"1500km", LatLon{58.1, 5.0}, LatLon{70.9, 25.0}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var sink float64
			for b.Loop() {
				sink += Distance(c.a, c.c)
			}
			_ = sink
		})
	}
}

func BenchmarkForward(b *testing.B) {
	p := NewProjection(LatLon{64, 14})
	ll := LatLon{64.5, 15.2}
	var sink XY
	for b.Loop() {
		sink = p.Forward(ll)
	}
	_ = sink
}

func BenchmarkInverse(b *testing.B) {
	p := NewProjection(LatLon{64, 14})
	xy := XY{58000, 55000}
	var sink LatLon
	for b.Loop() {
		sink = p.Inverse(xy)
	}
	_ = sink
}

func BenchmarkValidateRing5000(b *testing.B) {
	coords := [][][]float64{circleRing(10.75, 59.91, 0.05, 5000)}
	if err := ValidatePolygon(coords); err != nil {
		b.Fatal(err)
	}
	b.Run("wobbly-circle", func(b *testing.B) {
		for b.Loop() {
			if ValidatePolygon(coords) != nil {
				b.Fatal("invalid")
			}
		}
	})
	// A comb with 5,000 positions whose teeth all span the sweep line: the
	// sweep's bad case.
	comb := [][]float64{{0, 0}}
	for i := 0; i < 1249; i++ {
		y := float64(i) * 0.01
		comb = append(comb, []float64{10, y + 0.002}, []float64{10, y + 0.004})
		comb = append(comb, []float64{0.5, y + 0.006}, []float64{0.5, y + 0.008})
	}
	comb = append(comb, []float64{0, 12.5}, []float64{0, 0})
	combCoords := [][][]float64{comb}
	if len(comb) < 4990 || ValidatePolygon(combCoords) != nil {
		b.Fatalf("comb has %d positions, error %v", len(comb), ValidatePolygon(combCoords))
	}
	b.Run("comb", func(b *testing.B) {
		for b.Loop() {
			if ValidatePolygon(combCoords) != nil {
				b.Fatal("invalid")
			}
		}
	})
	// A star of 2,500 long spikes: every spike's box overlaps many others
	// near the centre, the slowest known case for the sweep.
	var star [][]float64
	for i := 0; i < 5000; i++ {
		a := 2 * math.Pi * float64(i) / 5000
		r := 1.0
		if i%2 == 1 {
			r = 0.01
		}
		star = append(star, []float64{10 + r*math.Cos(a), 60 + r*math.Sin(a)})
	}
	starCoords := [][][]float64{append(star, star[0])}
	if ValidatePolygon(starCoords) != nil {
		b.Fatal("star is invalid")
	}
	b.Run("star", func(b *testing.B) {
		for b.Loop() {
			if ValidatePolygon(starCoords) != nil {
				b.Fatal("invalid")
			}
		}
	})
}

// fjordRing returns a closed ring of n positions (n-1 distinct) around c with
// mean radius r: a wobbly outline with deep "fjords", so that a horizontal
// line through it crosses the boundary many times.
func fjordRing(c XY, r float64, n int) Ring {
	out := make(Ring, 0, n)
	m := n - 1
	for i := 0; i < m; i++ {
		a := 2 * math.Pi * float64(i) / float64(m)
		rad := r * (1 + 0.25*math.Sin(23*a) + 0.05*math.Cos(97*a) + 0.01*math.Sin(331*a))
		out = append(out, XY{c.X + rad*math.Cos(a), c.Y + rad*math.Sin(a)})
	}
	return append(out, out[0])
}

// benchPolygon5000 is a 5,000-position outline of about 30 km radius with a
// 200-position hole.
func benchPolygon5000() []Ring {
	return []Ring{fjordRing(XY{}, 30000, 5000), fjordRing(XY{3000, -2000}, 4000, 200)}
}

// benchCounty is 20 polygons of 1,000 positions each, 8-12 km across, on a
// 5 × 4 grid 25 km apart.
func benchCounty() [][]Ring {
	var parts [][]Ring
	for i := 0; i < 20; i++ {
		c := XY{float64(i%5) * 25000, float64(i/5) * 25000}
		parts = append(parts, []Ring{fjordRing(c, 5000+float64(i%3)*500, 1000)})
	}
	return parts
}

type benchPoint struct {
	name string
	p    XY
}

func benchSignedDistance(b *testing.B, forms []struct {
	name string
	s    Shape
}, points []benchPoint) {
	for _, f := range forms {
		for _, c := range points {
			b.Run(f.name+"/"+c.name, func(b *testing.B) {
				var sink float64
				b.ReportAllocs()
				for b.Loop() {
					sink += f.s.SignedDistance(c.p)
				}
				_ = sink
			})
		}
	}
}

func BenchmarkSignedDistancePolygon5000(b *testing.B) {
	rings := benchPolygon5000()
	benchSignedDistance(b, []struct {
		name string
		s    Shape
	}{{"indexed", NewPolygon(rings)}, {"linear", Polygon{Rings: rings}}}, []benchPoint{
		{"inside", XY{-12000, 9000}},
		{"near-outside", XY{31600, 0}},
		{"far", XY{400000, 300000}},
	})
}

func BenchmarkSignedDistanceCounty(b *testing.B) {
	parts := benchCounty()
	var indexed, linear MultiPolygon
	for _, rings := range parts {
		indexed = append(indexed, NewPolygon(rings))
		linear = append(linear, Polygon{Rings: rings})
	}
	benchSignedDistance(b, []struct {
		name string
		s    Shape
	}{{"indexed", indexed}, {"linear", linear}}, []benchPoint{
		{"inside", XY{51000, 26000}},
		{"near-outside", XY{55350, 50000}},
		{"far", XY{-150000, 200000}},
	})
}

// BenchmarkDistanceBounds: the cheap bounds the evaluator decides "certainly
// far" with, for positions a few kilometres apart.
func BenchmarkDistanceBounds(b *testing.B) {
	p, q := LatLon{Lat: 63.43, Lon: 10.39}, LatLon{Lat: 63.46, Lon: 10.45}
	band := NewBand(63.4, 2)
	var sink float64
	b.Run("Band.Lower", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sink += band.Lower(p, q)
		}
	})
	b.Run("Band.Upper", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sink += band.Upper(p, q)
		}
	})
	b.Run("DistanceBounds", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			lo, hi := DistanceBounds(p, q)
			sink += lo + hi
		}
	})
	benchSink = sink
}

var benchSink float64
