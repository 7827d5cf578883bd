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
