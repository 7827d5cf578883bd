package sim

import "math"

// EarthRadiusM is the mean Earth radius (IUGG) used for the simulator's spherical model. Over a
// simulated walk of a few kilometres the difference to the ellipsoid is well below a GPS fix's accuracy.
const EarthRadiusM = 6371008.8

// LonLat is a position in GeoJSON order: longitude, then latitude, in degrees.
type LonLat [2]float64

// Lon returns the longitude.
func (p LonLat) Lon() float64 { return p[0] }

// Lat returns the latitude.
func (p LonLat) Lat() float64 { return p[1] }

func rad(d float64) float64 { return d * math.Pi / 180 }
func deg(r float64) float64 { return r * 180 / math.Pi }

// Distance is the great-circle distance between a and b in metres (haversine).
func Distance(a, b LonLat) float64 {
	φ1, φ2 := rad(a.Lat()), rad(b.Lat())
	dφ, dλ := φ2-φ1, rad(b.Lon()-a.Lon())
	h := math.Sin(dφ/2)*math.Sin(dφ/2) + math.Cos(φ1)*math.Cos(φ2)*math.Sin(dλ/2)*math.Sin(dλ/2)
	return 2 * EarthRadiusM * math.Asin(math.Min(1, math.Sqrt(h)))
}

// Bearing is the initial great-circle course from a to b in degrees clockwise from north, in [0, 360).
func Bearing(a, b LonLat) float64 {
	φ1, φ2 := rad(a.Lat()), rad(b.Lat())
	dλ := rad(b.Lon() - a.Lon())
	y := math.Sin(dλ) * math.Cos(φ2)
	x := math.Cos(φ1)*math.Sin(φ2) - math.Sin(φ1)*math.Cos(φ2)*math.Cos(dλ)
	return normDeg(deg(math.Atan2(y, x)))
}

func normDeg(d float64) float64 {
	d = math.Mod(d, 360)
	if d < 0 {
		d += 360
	}
	if d >= 360 { // -tiny + 360 rounds to 360
		d = 0
	}
	return d
}

// Interpolate returns the point a fraction f (0..1) of the way from a to b along the great circle.
func Interpolate(a, b LonLat, f float64) LonLat {
	d := Distance(a, b) / EarthRadiusM
	if d < 1e-12 || f <= 0 {
		return a
	}
	if f >= 1 {
		return b
	}
	φ1, λ1 := rad(a.Lat()), rad(a.Lon())
	φ2, λ2 := rad(b.Lat()), rad(b.Lon())
	wa, wb := math.Sin((1-f)*d)/math.Sin(d), math.Sin(f*d)/math.Sin(d)
	x := wa*math.Cos(φ1)*math.Cos(λ1) + wb*math.Cos(φ2)*math.Cos(λ2)
	y := wa*math.Cos(φ1)*math.Sin(λ1) + wb*math.Cos(φ2)*math.Sin(λ2)
	z := wa*math.Sin(φ1) + wb*math.Sin(φ2)
	return LonLat{deg(math.Atan2(y, x)), deg(math.Atan2(z, math.Hypot(x, y)))}
}

// Offset moves p by north and east metres (a local flat approximation, for noise of a few metres).
func Offset(p LonLat, northM, eastM float64) LonLat {
	lat := p.Lat() + deg(northM/EarthRadiusM)
	lon := p.Lon() + deg(eastM/(EarthRadiusM*math.Cos(rad(p.Lat()))))
	if lat > 90 {
		lat = 90
	} else if lat < -90 {
		lat = -90
	}
	if lon > 180 {
		lon -= 360
	} else if lon < -180 {
		lon += 360
	}
	return LonLat{lon, lat}
}

// Route is a path walked at constant speed.
type Route struct {
	pts  []LonLat
	cum  []float64 // cum[i]: distance from pts[0] to pts[i]
	loop bool
}

// NewRoute builds a route over path. With loop, the route goes from the last point back to the first and
// starts over; without it, it ends at the last point.
func NewRoute(path []LonLat, loop bool) Route {
	pts := append([]LonLat(nil), path...)
	if loop && len(pts) > 1 && pts[0] != pts[len(pts)-1] {
		pts = append(pts, pts[0])
	}
	cum := make([]float64, len(pts))
	for i := 1; i < len(pts); i++ {
		cum[i] = cum[i-1] + Distance(pts[i-1], pts[i])
	}
	return Route{pts: pts, cum: cum, loop: loop}
}

// Length is the route's length in metres (one lap, for a loop).
func (r Route) Length() float64 {
	if len(r.cum) == 0 {
		return 0
	}
	return r.cum[len(r.cum)-1]
}

// At returns the position after walking dist metres along the route, the heading there, and whether
// the walker is still moving (false for a single point, and at the end of a route that does not loop).
func (r Route) At(dist float64) (pos LonLat, heading float64, moving bool) {
	if len(r.pts) == 0 {
		return LonLat{}, 0, false
	}
	total := r.Length()
	if len(r.pts) == 1 || total == 0 {
		return r.pts[0], 0, false
	}
	if dist < 0 {
		dist = 0
	}
	if r.loop {
		dist = math.Mod(dist, total)
	} else if dist >= total {
		n := len(r.pts)
		return r.pts[n-1], Bearing(r.pts[n-2], r.pts[n-1]), false
	}
	// The segment that contains dist (skipping zero-length segments).
	i := 1
	for i < len(r.cum)-1 && r.cum[i] <= dist {
		i++
	}
	a, b := r.pts[i-1], r.pts[i]
	seg := r.cum[i] - r.cum[i-1]
	if seg == 0 {
		return b, 0, true
	}
	p := Interpolate(a, b, (dist-r.cum[i-1])/seg)
	h := Bearing(p, b)
	if Distance(p, b) < 1e-6 {
		h = Bearing(a, b)
	}
	return p, h, true
}
