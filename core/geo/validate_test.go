package geo

import (
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// sqRing returns a closed square ring [lon0,lon1]×[lat0,lat1] in GeoJSON order.
func sqRing(lon0, lat0, lon1, lat1 float64) [][]float64 {
	return [][]float64{{lon0, lat0}, {lon1, lat0}, {lon1, lat1}, {lon0, lat1}, {lon0, lat0}}
}

func TestValidatePolygon(t *testing.T) {
	outer := sqRing(10, 59, 11, 60)
	tests := []struct {
		name     string
		coords   [][][]float64
		wantPath string
		wantMsg  string // exact message; "" means valid
	}{
		{"valid square", [][][]float64{outer}, "", ""},
		{"valid with altitude", [][][]float64{{{10, 59, 5}, {11, 59, 5}, {11, 60}, {10, 59, 7}}}, "", ""},
		{"valid with hole", [][][]float64{outer, sqRing(10.2, 59.2, 10.4, 59.4)}, "", ""},
		{"valid with two holes", [][][]float64{outer, sqRing(10.2, 59.2, 10.4, 59.4), sqRing(10.5, 59.2, 10.7, 59.4)}, "", ""},
		{"valid concave", [][][]float64{{{0, 0}, {10, 0}, {10, 10}, {7, 10}, {7, 3}, {3, 3}, {3, 10}, {0, 10}, {0, 0}}}, "", ""},
		{"valid triangle at the limits", [][][]float64{{{-180, -90}, {180, -90}, {0, 90}, {-180, -90}}}, "", ""},
		{"no rings", [][][]float64{}, "coordinates", "polygon has no rings"},
		{"nil", nil, "coordinates", "polygon has no rings"},
		{"empty ring", [][][]float64{{}}, "coordinates[0]", "ring has 0 positions, at least 4 are needed"},
		{"three positions", [][][]float64{{{10, 59}, {11, 59}, {10, 59}}}, "coordinates[0]", "ring has 3 positions, at least 4 are needed"},
		{"short hole", [][][]float64{outer, {{10.2, 59.2}, {10.3, 59.2}, {10.2, 59.3}}}, "coordinates[1]", "ring has 3 positions, at least 4 are needed"},
		{"not closed", [][][]float64{{{10.75, 59.91}, {10.8, 59.91}, {10.8, 59.95}, {10.76, 59.95}}}, "coordinates[0]",
			"ring is not closed: first position [10.75,59.91] differs from last [10.76,59.95]"},
		{"position with one number", [][][]float64{{{10, 59}, {11}, {11, 60}, {10, 59}}}, "coordinates[0][1]", "position needs 2 or 3 numbers, got 1"},
		{"position with four numbers", [][][]float64{outer, {{10.2, 59.2}, {10.3, 59.2}, {10.3, 59.3, 1, 2}, {10.2, 59.2}}}, "coordinates[1][2]", "position needs 2 or 3 numbers, got 4"},
		{"latitude out of range", [][][]float64{{{10, 59}, {11, 59}, {11, 95}, {10, 59}}}, "coordinates[0][2]", "latitude 95 is out of range [-90, 90]"},
		{"latitude just out of range", [][][]float64{{{10, -90.000001}, {11, 59}, {11, 60}, {10, 59}}}, "coordinates[0][0]", "latitude -90.000001 is out of range [-90, 90]"},
		{"longitude out of range", [][][]float64{{{10, 59}, {181, 59}, {11, 60}, {10, 59}}}, "coordinates[0][1]", "longitude 181 is out of range [-180, 180]"},
		{"longitude NaN", [][][]float64{{{10, 59}, {math.NaN(), 59}, {11, 60}, {10, 59}}}, "coordinates[0][1]", "longitude NaN is not a finite number"},
		{"latitude infinite", [][][]float64{{{10, 59}, {11, 59}, {11, math.Inf(-1)}, {10, 59}}}, "coordinates[0][2]", "latitude -Inf is not a finite number"},
		{"altitude infinite", [][][]float64{{{10, 59}, {11, 59, math.Inf(1)}, {11, 60}, {10, 59}}}, "coordinates[0][1]", "altitude +Inf is not a finite number"},
		{"consecutive duplicate", [][][]float64{{{10, 59}, {11, 59}, {11, 59}, {11, 60}, {10, 59}}}, "coordinates[0][2]",
			"position [11,59] repeats the previous position (consecutive duplicates are not allowed)"},
		{"bow tie", [][][]float64{{{0, 0}, {10, 0}, {0, 10}, {10, 10}, {0, 0}}}, "coordinates[0]", "ring intersects itself: edge 1 crosses edge 3"},
		{"two teeth cross the bottom edge", [][][]float64{{{0, 0}, {10, 0}, {10, 10}, {4, 10}, {4, -2}, {2, -2}, {2, 10}, {0, 10}, {0, 0}}}, "coordinates[0]",
			"ring intersects itself: edge 0 crosses edge 5"},
		{"vertex touches an edge", [][][]float64{{{0, 0}, {10, 0}, {10, 10}, {5, 0}, {0, 10}, {0, 0}}}, "coordinates[0]", "ring intersects itself: edge 0 touches edge 3"},
		{"figure eight through a shared vertex", [][][]float64{{{0, 0}, {5, 5}, {10, 0}, {10, 10}, {5, 5}, {0, 10}, {0, 0}}}, "coordinates[0]",
			"ring intersects itself: edge 0 touches edge 4"},
		{"spike doubling back", [][][]float64{{{0, 0}, {10, 0}, {10, 10}, {10, 5}, {0, 10}, {0, 0}}}, "coordinates[0]", "ring intersects itself: edge 1 touches edge 3"},
		{"collinear ring has no area", [][][]float64{{{0, 0}, {1, 0}, {2, 0}, {0, 0}}}, "coordinates[0]", "ring intersects itself: edge 0 overlaps edge 2"},
		{"back and forth", [][][]float64{{{0, 0}, {1, 1}, {0, 0}, {1, 1}, {0, 0}}}, "coordinates[0]", "ring intersects itself: edge 0 overlaps edge 1"},
		{"closing edge overlaps the first", [][][]float64{{{0, 0}, {10, 0}, {10, 10}, {5, 0}, {0, 0}}}, "coordinates[0]", "ring intersects itself: edge 0 overlaps edge 3"},
		{"hole crosses the outer ring", [][][]float64{outer, sqRing(10.5, 59.5, 11.5, 59.7)}, "coordinates[1]",
			"hole 1 intersects the outer ring: edge 0 of hole 1 crosses edge 1 of the outer ring"},
		{"hole touches the outer ring", [][][]float64{outer, sqRing(10, 59.2, 10.4, 59.4)}, "coordinates[1]",
			"hole 1 intersects the outer ring: edge 0 of hole 1 touches edge 3 of the outer ring"},
		{"hole outside", [][][]float64{outer, sqRing(12, 59.2, 12.4, 59.4)}, "coordinates[1]", "hole 1 is not inside the outer ring"},
		{"hole around the outer ring", [][][]float64{outer, sqRing(9, 58, 12, 61)}, "coordinates[1]", "hole 1 is not inside the outer ring"},
		{"holes overlap", [][][]float64{outer, sqRing(10.2, 59.2, 10.4, 59.4), sqRing(10.3, 59.3, 10.5, 59.5)}, "coordinates[2]",
			"hole 2 intersects hole 1: edge 0 of hole 2 crosses edge 1 of hole 1"},
		{"hole inside a hole", [][][]float64{outer, sqRing(10.2, 59.2, 10.6, 59.6), sqRing(10.3, 59.3, 10.4, 59.4)}, "coordinates[2]", "hole 2 is inside hole 1"},
		{"hole containing a hole", [][][]float64{outer, sqRing(10.3, 59.3, 10.4, 59.4), sqRing(10.2, 59.2, 10.6, 59.6)}, "coordinates[2]", "hole 2 contains hole 1"},
		{"position error reported before ring error", [][][]float64{{{10, 59}, {11, 99}}}, "coordinates[0][1]", "latitude 99 is out of range [-90, 90]"},
		{"first ring's error first", [][][]float64{{{0, 0}, {1, 0}}, {{200, 0}}}, "coordinates[0]", "ring has 2 positions, at least 4 are needed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePolygon(tc.coords)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("ValidatePolygon: unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidatePolygon: no error, want %s: %s", tc.wantPath, tc.wantMsg)
			}
			if err.Path != tc.wantPath || err.Message != tc.wantMsg {
				t.Errorf("ValidatePolygon:\n got  %s: %s\n want %s: %s", err.Path, err.Message, tc.wantPath, tc.wantMsg)
			}
			if got := err.Error(); got != tc.wantPath+": "+tc.wantMsg {
				t.Errorf("Error() = %q", got)
			}
		})
	}
}

func TestValidateMultiPolygon(t *testing.T) {
	a := [][][]float64{sqRing(10, 59, 11, 60)}
	b := [][][]float64{sqRing(12, 59, 13, 60), sqRing(12.2, 59.2, 12.4, 59.4)}
	overlapping := [][][]float64{sqRing(10.5, 59.5, 11.5, 60.5)}
	tests := []struct {
		name     string
		coords   [][][][]float64
		wantPath string
		wantMsg  string
	}{
		{"valid", [][][][]float64{a, b}, "", ""},
		{"overlapping polygons are allowed", [][][][]float64{a, overlapping}, "", ""},
		{"no polygons", nil, "coordinates", "multipolygon has no polygons"},
		{"polygon without rings", [][][][]float64{a, {}}, "coordinates[1]", "polygon has no rings"},
		{"unclosed ring in second polygon", [][][][]float64{a, {{{12, 59}, {13, 59}, {13, 60}, {12, 60}}}}, "coordinates[1][0]",
			"ring is not closed: first position [12,59] differs from last [12,60]"},
		{"bad position in a hole", [][][][]float64{a, {b[0], {{12.2, 59.2}, {12.4, -91}, {12.4, 59.4}, {12.2, 59.2}}}}, "coordinates[1][1][1]",
			"latitude -91 is out of range [-90, 90]"},
		{"self-intersection", [][][][]float64{{{{0, 0}, {10, 0}, {0, 10}, {10, 10}, {0, 0}}}}, "coordinates[0][0]", "ring intersects itself: edge 1 crosses edge 3"},
		{"hole outside in second polygon", [][][][]float64{a, {b[0], sqRing(20, 59, 21, 60)}}, "coordinates[1][1]", "hole 1 is not inside the outer ring"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateMultiPolygon(tc.coords)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || err.Path != tc.wantPath || err.Message != tc.wantMsg {
				t.Errorf("ValidateMultiPolygon = %v, want %s: %s", err, tc.wantPath, tc.wantMsg)
			}
		})
	}
}

func TestValidatePoint(t *testing.T) {
	tests := []struct {
		coords  []float64
		wantMsg string
	}{
		{[]float64{10.75, 59.91}, ""},
		{[]float64{10.75, 59.91, 120}, ""},
		{[]float64{-180, -90}, ""},
		{nil, "position needs 2 or 3 numbers, got 0"},
		{[]float64{1, 2, 3, 4}, "position needs 2 or 3 numbers, got 4"},
		{[]float64{10.75, 95}, "latitude 95 is out of range [-90, 90]"},
		{[]float64{-180.5, 59}, "longitude -180.5 is out of range [-180, 180]"},
		{[]float64{math.Inf(1), 59}, "longitude +Inf is not a finite number"},
		{[]float64{10, math.NaN()}, "latitude NaN is not a finite number"},
	}
	for _, tc := range tests {
		err := ValidatePoint(tc.coords)
		switch {
		case tc.wantMsg == "" && err != nil:
			t.Errorf("ValidatePoint(%v) = %v, want nil", tc.coords, err)
		case tc.wantMsg != "" && (err == nil || err.Path != "coordinates" || err.Message != tc.wantMsg):
			t.Errorf("ValidatePoint(%v) = %v, want coordinates: %s", tc.coords, err, tc.wantMsg)
		}
	}
}

func TestValidLatLon(t *testing.T) {
	for _, tc := range []struct {
		lat, lon float64
		want     bool
	}{
		{59.91, 10.75, true}, {90, 180, true}, {-90, -180, true},
		{90.0001, 0, false}, {0, -180.0001, false}, {math.NaN(), 0, false}, {0, math.Inf(1), false},
	} {
		if got := ValidLatLon(tc.lat, tc.lon); got != tc.want {
			t.Errorf("ValidLatLon(%v, %v) = %v", tc.lat, tc.lon, got)
		}
	}
}

func TestBoundsCenter(t *testing.T) {
	for _, tc := range []struct {
		pts  []LatLon
		want LatLon
	}{
		{nil, LatLon{}},
		{[]LatLon{{59.91, 10.75}}, LatLon{59.91, 10.75}},
		{[]LatLon{{58, 5}, {60, 9}, {59, 31}}, LatLon{59, 18}},
		{[]LatLon{{math.NaN(), 0}, {60, 10}, {95, 10}, {62, 12}}, LatLon{61, 11}},
	} {
		if got := BoundsCenter(tc.pts); got != tc.want {
			t.Errorf("BoundsCenter(%v) = %v, want %v", tc.pts, got, tc.want)
		}
	}
}

// circleRing returns a closed ring of n positions on a wobbly circle around
// (lon, lat), deterministic, with radius about r degrees.
func circleRing(lon, lat, r float64, n int) [][]float64 {
	ring := make([][]float64, 0, n+1)
	for i := 0; i < n; i++ {
		a := 2 * math.Pi * float64(i) / float64(n)
		rr := r * (1 + 0.05*math.Sin(7*a) + 0.02*math.Cos(31*a))
		ring = append(ring, []float64{lon + 2*rr*math.Cos(a), lat + rr*math.Sin(a)})
	}
	return append(ring, ring[0])
}

func TestValidateLargeRing(t *testing.T) {
	ring := circleRing(10.75, 59.91, 0.05, 5000)
	if err := ValidatePolygon([][][]float64{ring}); err != nil {
		t.Fatalf("5,000-position ring: %v", err)
	}
	// Make two far-apart edges cross: swap positions 1000 and 3500.
	bad := make([][]float64, len(ring))
	copy(bad, ring)
	bad[1000], bad[3500] = bad[3500], bad[1000]
	err := ValidatePolygon([][][]float64{bad})
	if err == nil || err.Path != "coordinates[0]" || !strings.HasPrefix(err.Message, "ring intersects itself: edge ") {
		t.Fatalf("swapped positions: %v", err)
	}
	// A comb whose teeth all span the sweep: the worst case for the sweep.
	comb := [][]float64{{0, 0}}
	for i := 0; i < 1250; i++ {
		y := float64(i) * 0.01
		comb = append(comb, []float64{10, y + 0.002}, []float64{10, y + 0.004})
		comb = append(comb, []float64{0.5, y + 0.006}, []float64{0.5, y + 0.008})
	}
	comb = append(comb, []float64{0, 12.5}, []float64{0, 0})
	if err := ValidatePolygon([][][]float64{comb}); err != nil {
		t.Fatalf("comb: %v", err)
	}
}

// TestFindContactMatchesBruteForce: the sweep finds a forbidden contact
// exactly when checking every pair of edges does, on small rings drawn on a
// coarse grid so that collinear and touching edges are common.
func TestFindContactMatchesBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nrings := rapid.IntRange(1, 3).Draw(t, "rings")
		rings := make([][]pt, nrings)
		for i := range rings {
			n := rapid.IntRange(3, 9).Draw(t, "n")
			r := make([]pt, 0, n+1)
			for len(r) < n {
				p := pt{float64(rapid.IntRange(0, 4).Draw(t, "x")), float64(rapid.IntRange(0, 6).Draw(t, "y")) / 2}
				if len(r) > 0 && r[len(r)-1] == p {
					continue
				}
				r = append(r, p)
			}
			if r[len(r)-1] == r[0] {
				r = r[:len(r)-1]
			}
			if len(r) < 3 {
				t.Skip("degenerate ring")
			}
			rings[i] = append(r, r[0])
		}
		var edges []vedge
		for ri, r := range rings {
			for i := 0; i+1 < len(r); i++ {
				edges = append(edges, vedge{a: r[i], b: r[i+1], ring: ri, idx: i, n: len(r) - 1})
			}
		}
		brute := false
		for i := range edges {
			for j := i + 1; j < len(edges); j++ {
				if _, ok := edgeContact(&edges[i], &edges[j]); ok {
					brute = true
				}
			}
		}
		c, found := findContact(rings)
		if found != brute {
			t.Fatalf("rings %v: sweep found %v (%+v), brute force %v", rings, found, c, brute)
		}
		if found {
			e1 := edges[0]
			for _, e := range edges {
				if e.ring == c.ring1 && e.idx == c.edge1 {
					e1 = e
				}
			}
			for _, e2 := range edges {
				if e2.ring == c.ring2 && e2.idx == c.edge2 {
					if _, ok := edgeContact(&e1, &e2); !ok {
						t.Fatalf("reported pair %+v does not meet", c)
					}
				}
			}
		}
	})
}
