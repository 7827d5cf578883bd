package geo

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

// The fuzz input encodes Polygon coordinates compactly so that the fuzzer
// reaches valid polygons and exact degeneracies (collinear points, touching
// edges) often:
//
//	byte             number of rings (mod 4)
//	per ring:
//	  byte           number of positions (mod 64)
//	  byte           flags; bit 0: append a copy of the first position
//	  per position:
//	    byte h       numbers in the position: 2 for h%8 < 6, 3 for 6,
//	                 otherwise (h>>3)%5 (0 to 4)
//	    per number:
//	      byte t     t&0x80 == 0: an int16 (2 bytes, big endian) divided by
//	                 180 (longitude), 360 (latitude) or 100 (altitude), so
//	                 values sit on a grid and a few fall out of range;
//	                 otherwise: 8 raw bytes of a float64 (NaN, Inf, huge...)
//
// Missing bytes read as zero.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) bytes(n int) []byte {
	out := make([]byte, n)
	copy(out, r.b)
	r.b = r.b[min(n, len(r.b)):]
	return out
}

var fuzzScale = [...]float64{180, 360, 100, 100}

func decodePolygon(data []byte) [][][]float64 {
	r := &fuzzReader{data}
	coords := make([][][]float64, int(r.byte()%4))
	for i := range coords {
		n := int(r.byte() % 64)
		flags := r.byte()
		ring := make([][]float64, 0, n+1)
		for j := 0; j < n; j++ {
			h := r.byte()
			dims := 2
			switch {
			case h%8 == 6:
				dims = 3
			case h%8 == 7:
				dims = int(h>>3) % 5
			}
			pos := make([]float64, dims)
			for k := range pos {
				if t := r.byte(); t&0x80 == 0 {
					pos[k] = float64(int16(binary.BigEndian.Uint16(r.bytes(2)))) / fuzzScale[k]
				} else {
					pos[k] = math.Float64frombits(binary.BigEndian.Uint64(r.bytes(8)))
				}
			}
			ring = append(ring, pos)
		}
		if flags&1 != 0 && len(ring) > 0 {
			ring = append(ring, append([]float64(nil), ring[0]...))
		}
		coords[i] = ring
	}
	return coords
}

// encodePolygon is the inverse of decodePolygon for seeds: grid values are
// stored compactly, anything else as raw bits. Rings are written without
// their closing position and with the close flag set when they are closed.
func encodePolygon(coords [][][]float64) []byte {
	out := []byte{byte(len(coords))}
	for _, ring := range coords {
		closed := len(ring) > 1 && equalPos(ring[0], ring[len(ring)-1])
		n := len(ring)
		if closed {
			n--
		}
		flags := byte(0)
		if closed {
			flags = 1
		}
		out = append(out, byte(n), flags)
		for _, pos := range ring[:n] {
			switch len(pos) {
			case 2:
				out = append(out, 0)
			case 3:
				out = append(out, 6)
			default:
				out = append(out, byte(7|len(pos)<<3))
			}
			for k, v := range pos {
				q := v * fuzzScale[k]
				if q == math.Trunc(q) && q >= math.MinInt16 && q <= math.MaxInt16 && float64(int16(q))/fuzzScale[k] == v {
					out = append(out, 0)
					out = binary.BigEndian.AppendUint16(out, uint16(int16(q)))
				} else {
					out = append(out, 0x80)
					out = binary.BigEndian.AppendUint64(out, math.Float64bits(v))
				}
			}
		}
	}
	return out
}

func equalPos(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

// fuzzSeeds are representative polygons, valid and invalid. The committed
// corpus in testdata/fuzz/FuzzValidatePolygon holds their encodings too.
var fuzzSeeds = [][][][]float64{
	{sqRing(10, 59, 11, 60)},
	{sqRing(10, 59, 11, 60), sqRing(10.2, 59.2, 10.4, 59.4)},
	{{{0, 0}, {10, 0}, {0, 10}, {10, 10}, {0, 0}}},
	{{{0, 0}, {10, 0}, {10, 10}, {5, 0}, {0, 10}, {0, 0}}},
	{{{0, 0}, {1, 0}, {2, 0}, {0, 0}}},
	{{{10.75, 59.91}, {10.8, 59.91}, {10.8, 59.95}, {10.76, 59.95}}},
	{{{10, 59}, {11, 95}, {11, 60}, {10, 59}}},
	{{{10, 59, 5}, {math.NaN(), 59}, {11, 60, math.Inf(1)}, {10, 59}}},
	{{{-180, -90}, {180, -90}, {0, 90}, {-180, -90}}},
	{{{-180, 0}, {180, 0}, {180, 1}, {-180, 0}}},
	{{{0, 0}, {90, 0}, {90, 10}, {0, 0}}},
	{sqRing(10, 59, 11, 60), sqRing(10, 59.2, 10.4, 59.4)},
	{sqRing(10, 59, 11, 60), sqRing(10.2, 59.2, 10.6, 59.6), sqRing(10.3, 59.3, 10.4, 59.4)},
	{{{10, 59}, {11}, {11, 60, 1, 2}, {10, 59}}},
	{},
}

// FuzzValidatePolygon: validation never panics, reports paths under
// "coordinates", agrees with ValidateMultiPolygon, and anything it accepts
// projects to finite coordinates with finite signed distances (0 at every
// vertex).
func FuzzValidatePolygon(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(encodePolygon(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		coords := decodePolygon(data)
		err := ValidatePolygon(coords)
		merr := ValidateMultiPolygon([][][][]float64{coords})
		if (err == nil) != (merr == nil) {
			t.Fatalf("ValidatePolygon = %v but ValidateMultiPolygon = %v", err, merr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Path, "coordinates") || err.Message == "" {
				t.Fatalf("malformed error %q", err.Error())
			}
			if want := "coordinates[0]" + strings.TrimPrefix(err.Path, "coordinates"); merr.Path != want || merr.Message != err.Message {
				t.Fatalf("multipolygon error %q, want %s: %s", merr.Error(), want, err.Message)
			}
			return
		}
		var pts []LatLon
		for _, ring := range coords {
			for _, pos := range ring {
				pts = append(pts, LatLon{Lat: pos[1], Lon: pos[0]})
			}
		}
		proj := NewProjection(BoundsCenter(pts))
		pg := ProjectPolygon(proj, coords)
		finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
		probes := []XY{{}, {1e7, -1e7}}
		for _, ring := range pg.Rings {
			for _, v := range ring {
				if !finite(v.X) || !finite(v.Y) {
					t.Fatalf("projected vertex %v", v)
				}
			}
			if d := pg.SignedDistance(ring[0]); d != 0 {
				t.Fatalf("SignedDistance(vertex %v) = %v, want 0", ring[0], d)
			}
			probes = append(probes, XY{(ring[0].X + ring[1].X + ring[2].X) / 3, (ring[0].Y + ring[1].Y + ring[2].Y) / 3})
		}
		for _, p := range probes {
			if d := pg.SignedDistance(p); !finite(d) {
				t.Fatalf("SignedDistance(%v) = %v", p, d)
			}
			if d := (MultiPolygon{pg}).SignedDistance(p); !finite(d) {
				t.Fatalf("MultiPolygon SignedDistance(%v) = %v", p, d)
			}
		}
	})
}

func TestFuzzEncoding(t *testing.T) {
	for _, s := range fuzzSeeds {
		got := decodePolygon(encodePolygon(s))
		if len(got) != len(s) {
			t.Fatalf("round trip of %v: %v", s, got)
		}
		for i := range s {
			if len(got[i]) != len(s[i]) {
				t.Fatalf("round trip of %v: %v", s, got)
			}
			for j := range s[i] {
				if !equalPos(got[i][j], s[i][j]) {
					t.Fatalf("round trip of %v: %v", s, got)
				}
			}
		}
	}
}
