package geo

import "math"

// Cheap bounds of distances, for deciding that a position is certainly far
// from something before paying for a projection or a geodesic. Every bound
// here is rigorous (not an estimate): a lower bound never exceeds the true
// value, an upper bound is never below it. See DESIGN.md, "Distance bounds".

var (
	// boundMMin is the smallest meridional radius of curvature, a(1-e²),
	// at the equator: a curve that changes latitude by Δφ radians is at
	// least boundMMin·Δφ long.
	boundMMin = wgs84A * (1 - geodE2)
	// boundRMax is the largest radius of curvature, a/sqrt(1-e²), at the
	// poles: an upper bound of the meridional radius M and of the
	// prime-vertical radius N everywhere.
	boundRMax = wgs84A / math.Sqrt(1-geodE2)
	// boundCap is the length of one degree of latitude at the least: what a
	// curve from inside a Band to outside its guard degree must cover.
	boundCap = boundMMin * math.Pi / 180
)

const (
	// boundRel is the relative slack of every bound: far above the few
	// roundings (2^-53 each) in computing it.
	boundRel = 1e-12
	degRad   = math.Pi / 180
)

// Band is a band of latitudes, |lat - Lat0| <= Half degrees, over which
// distances between positions are bounded with precomputed cosines. It is
// a value and safe for concurrent use.
type Band struct {
	lat0, half float64
	cosLo      float64 // <= cos φ for every |φ| <= |lat0| + half + 1°
	cosHi      float64 // >= cos φ for every |φ| >= |lat0| - half
	ok         bool
}

// NewBand returns the band of latitudes within half degrees of lat0.
// Positions outside it get the trivial bounds (0 and +Inf).
func NewBand(lat0, half float64) Band {
	if !(lat0 >= -90 && lat0 <= 90 && half >= 0 && half <= 90) {
		return Band{}
	}
	b := Band{lat0: lat0, half: half, ok: true}
	if hi := math.Abs(lat0) + half + 1; hi < 90 {
		b.cosLo = math.Cos(hi*degRad) * (1 - boundRel)
	}
	b.cosHi = math.Min(1, math.Cos(math.Max(0, math.Abs(lat0)-half)*degRad)*(1+boundRel))
	return b
}

// Contains reports whether ll is in the band.
func (b *Band) Contains(ll LatLon) bool {
	return b.ok && math.Abs(ll.Lat-b.lat0) <= b.half && ll.Lon >= -180 && ll.Lon <= 180
}

// Lower returns a lower bound of Distance(p, q) for p and q in the band, 0
// otherwise. It also bounds the distance between p and q projected by a
// Projection whose central meridian is within 30° of both, up to the
// nanometres Forward rounds to: the scale of a transverse Mercator is at
// least 1 everywhere, so no projected length is shorter than the geodesic.
//
// A curve that stays within 1° of the band is at least sqrt((M Δφ)² +
// (a cos φ Δλ)²) long with M and a·cos φ at their least there (the integral
// of a norm is at least the norm of the integral); one that leaves it is at
// least boundCap long.
func (b *Band) Lower(p, q LatLon) float64 {
	if !b.Contains(p) || !b.Contains(q) {
		return 0
	}
	x := boundMMin * math.Abs(p.Lat-q.Lat) * degRad
	y := wgs84A * b.cosLo * lonDiff(p.Lon, q.Lon) * degRad
	return math.Min(math.Sqrt(x*x+y*y), boundCap) * (1 - boundRel)
}

// Upper returns an upper bound of Distance(p, q) for p and q in the band,
// +Inf otherwise: the length of the path that is straight in latitude and
// longitude (the shorter way round), with M and N at their largest and
// cos φ at its largest in the band.
func (b *Band) Upper(p, q LatLon) float64 {
	if !b.Contains(p) || !b.Contains(q) {
		return math.Inf(1)
	}
	x := boundRMax * math.Abs(p.Lat-q.Lat) * degRad
	y := boundRMax * b.cosHi * lonDiff(p.Lon, q.Lon) * degRad
	return math.Sqrt(x*x+y*y) * (1 + boundRel)
}

// Degrees returns half-widths in degrees of latitude and longitude beyond
// which positions are more than m metres apart by Lower: for p and q in
// the band, |p.Lat - q.Lat| > dLat or a longitude difference > dLon means
// Lower(p, q) > m. Both are +Inf when no such width is known (m below a
// micrometre, where Lower's squares could underflow; m of 99 km or more; a
// band reaching a pole). The widths are proportional to m.
func (b *Band) Degrees(m float64) (dLat, dLon float64) {
	inf := math.Inf(1)
	if !b.ok || !(m >= 1e-6 && m < boundCap*0.9) {
		return inf, inf
	}
	dLat = m / (boundMMin * degRad) * (1 + 1e-9)
	dLon = inf
	if b.cosLo > 0 {
		dLon = m / (wgs84A * b.cosLo * degRad) * (1 + 1e-9)
	}
	return dLat, dLon
}

// lonDiff returns the difference of two longitudes in [-180, 180] the
// shorter way round, in [0, 180]: |angRemainder(a - b, 360)|, exactly
// (360 - d is exact for d in [180, 360]), without a division.
func lonDiff(a, b float64) float64 {
	d := math.Abs(a - b)
	if d > 180 {
		d = 360 - d
	}
	return d
}

// DistanceBounds returns lo <= Distance(p, q) <= hi without iterating:
// the bounds of a Band just wide enough for both positions. For positions
// a few kilometres apart at Norwegian latitudes lo is within about 15 % of
// the distance and hi within about 1 %; their cost is two cosines. Invalid
// positions give 0 and +Inf.
func DistanceBounds(p, q LatLon) (lo, hi float64) {
	if !ValidLatLon(p.Lat, p.Lon) || !ValidLatLon(q.Lat, q.Lon) {
		return 0, math.Inf(1)
	}
	mid := p.Lat/2 + q.Lat/2
	b := NewBand(mid, math.Abs(p.Lat-q.Lat)/2*(1+boundRel)+1e-12)
	return b.Lower(p, q), b.Upper(p, q)
}

// ScaleBound returns an upper bound of the point scale of p over the
// positions in band b whose longitude is within dLon degrees of the
// central meridian (dLon <= 30): the projected distance between two such
// positions is at most ScaleBound times b.Upper of them (up to the
// nanometres Forward rounds to). It is +Inf where no bound is known.
func (p *Projection) ScaleBound(b Band, dLon float64) float64 {
	if !b.ok || !(dLon >= 0 && dLon <= 30) || math.IsNaN(p.lon0) {
		return math.Inf(1)
	}
	// The scale grows with the distance from the central meridian: for a
	// given longitude offset it is largest at the lowest latitude.
	lat := math.Max(0, math.Abs(b.lat0)-b.half)
	_, _, k := forwardRaw(lat, dLon)
	// On the sphere k = 1/sqrt(1 - (cos φ sin λ)²); the ellipsoid differs
	// from that by a fraction of e² of k - 1. Take the larger, with room.
	bb := math.Cos(lat*degRad) * math.Sin(dLon*degRad)
	ks := 1 / math.Sqrt(1-bb*bb)
	return 1 + 1.1*(math.Max(k, ks)-1) + 1e-9
}

// EnclosingDisc returns a disc containing the shape (its interior and its
// boundary): for a Circle itself, for polygons the disc around the centre
// of their bounding box through the farthest vertex. ok is false for an
// empty shape or one with a non-finite coordinate.
func EnclosingDisc(s Shape) (c XY, r float64, ok bool) {
	switch s := s.(type) {
	case Circle:
		c, r = s.Center, s.Radius
		return c, r, finite(c.X) && finite(c.Y) && r >= 0 && finite(r)
	case Polygon:
		return discOf(s.Bounds(), func(f func(XY)) { eachVertex(s, f) })
	case MultiPolygon:
		return discOf(s.Bounds(), func(f func(XY)) {
			for _, pg := range s {
				eachVertex(pg, f)
			}
		})
	}
	b := s.Bounds()
	return discOf(b, func(f func(XY)) {
		f(b.Min)
		f(b.Max)
		f(XY{b.Min.X, b.Max.Y})
		f(XY{b.Max.X, b.Min.Y})
	})
}

func eachVertex(pg Polygon, f func(XY)) {
	for _, r := range pg.Rings {
		for _, p := range r {
			f(p)
		}
	}
}

// discOf returns the disc around the centre of b through the farthest of
// the points each yields. A polygon lies in the convex hull of its
// vertices, so in any disc that holds them all.
func discOf(b Rect, each func(func(XY))) (XY, float64, bool) {
	if b.IsEmpty() || !finite(b.Min.X) || !finite(b.Min.Y) || !finite(b.Max.X) || !finite(b.Max.Y) {
		return XY{}, 0, false
	}
	c := XY{b.Min.X/2 + b.Max.X/2, b.Min.Y/2 + b.Max.Y/2}
	r2, ok := 0.0, true
	each(func(p XY) {
		if !finite(p.X) || !finite(p.Y) {
			ok = false
			return
		}
		r2 = math.Max(r2, sq(p.X-c.X)+sq(p.Y-c.Y))
	})
	// Room for the rounding of the squares and the root.
	return c, math.Sqrt(r2)*(1+boundRel) + 1e-9, ok
}
