package geo

import (
	"math"
	"math/big"
)

// Exact geometric predicates on float64 coordinates, used by validation so
// that the verdict on a ring does not depend on rounding.

// pt is a position in the plane of validation (longitude, latitude degrees).
type pt struct{ x, y float64 }

// orient returns +1 if c lies to the left of the directed line a→b, -1 if to
// the right and 0 if the three points are collinear, computed exactly. A
// floating-point evaluation with a forward error bound settles almost every
// case; the rest are decided with exact rational arithmetic.
func orient(a, b, c pt) int {
	detl := float64((a.x - c.x) * (b.y - c.y))
	detr := float64((a.y - c.y) * (b.x - c.x))
	det := detl - detr
	detsum := math.Abs(detl) + math.Abs(detr)
	// Shewchuk's ccwerrboundA = (3 + 16ε)ε, ε = 2^-53. The lower limit on
	// detsum keeps underflow out of the error analysis.
	const errBound = (3 + 16*0x1p-53) * 0x1p-53
	if detsum >= 0x1p-600 && math.Abs(det) >= errBound*detsum {
		return sign(det)
	}
	return orientExact(a, b, c)
}

func sign(x float64) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

// orientExact evaluates the orientation determinant with exact rationals.
func orientExact(a, b, c pt) int {
	r := func(v float64) *big.Rat { return new(big.Rat).SetFloat64(v) }
	ax, ay, bx, by, cx, cy := r(a.x), r(a.y), r(b.x), r(b.y), r(c.x), r(c.y)
	l := new(big.Rat).Mul(new(big.Rat).Sub(ax, cx), new(big.Rat).Sub(by, cy))
	rr := new(big.Rat).Mul(new(big.Rat).Sub(ay, cy), new(big.Rat).Sub(bx, cx))
	return l.Cmp(rr)
}

// inBox reports whether c lies in the bounding box of segment ab; for c
// collinear with ab this means c lies on the segment.
func inBox(a, b, c pt) bool {
	return min(a.x, b.x) <= c.x && c.x <= max(a.x, b.x) &&
		min(a.y, b.y) <= c.y && c.y <= max(a.y, b.y)
}

// contact classifies how closed segments ab and cd meet.
type contact int

const (
	noContact contact = iota
	crossing          // proper crossing at a single interior point of both
	touching          // any other common point (endpoint contact, overlap)
)

// segContact returns how the closed segments ab and cd meet.
func segContact(a, b, c, d pt) contact {
	o1 := orient(a, b, c)
	o2 := orient(a, b, d)
	if o1*o2 > 0 {
		return noContact // c and d strictly on the same side of ab
	}
	o3 := orient(c, d, a)
	o4 := orient(c, d, b)
	if o3*o4 > 0 {
		return noContact
	}
	if o1*o2 < 0 && o3*o4 < 0 {
		return crossing
	}
	if (o1 == 0 && inBox(a, b, c)) || (o2 == 0 && inBox(a, b, d)) ||
		(o3 == 0 && inBox(c, d, a)) || (o4 == 0 && inBox(c, d, b)) {
		return touching
	}
	return noContact
}

// backtracks reports whether the adjacent segments s→o1 and s→o2 (sharing
// the endpoint s, with o1 != s and o2 != s) overlap beyond s, i.e. the ring
// doubles back on itself along a line.
func backtracks(s, o1, o2 pt) bool {
	if orient(s, o1, o2) != 0 {
		return false
	}
	// Collinear: they overlap iff o1 and o2 lie on the same side of s.
	sx := cmpf(o1.x, s.x) * cmpf(o2.x, s.x)
	if sx != 0 {
		return sx > 0
	}
	return cmpf(o1.y, s.y)*cmpf(o2.y, s.y) > 0
}

func cmpf(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// insideRing reports whether p is strictly inside the closed ring r (even-odd
// rule), computed exactly. p must not lie on r.
func insideRing(r []pt, p pt) bool {
	odd := false
	for i := 1; i < len(r); i++ {
		a, b := r[i-1], r[i]
		if (a.y > p.y) != (b.y > p.y) {
			o := orient(a, b, p)
			if (b.y > a.y && o > 0) || (b.y < a.y && o < 0) {
				odd = !odd
			}
		}
	}
	return odd
}
