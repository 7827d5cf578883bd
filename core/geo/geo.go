// Package geo is the pure geometry of Skjold: geodesic distances on the
// WGS84 ellipsoid, a per-order transverse Mercator projection into local
// metres, exclusion-zone shapes with signed distances, and validation of
// GeoJSON coordinates before they are stored.
//
// Everything here is deterministic: no randomness, no clock, no map
// iteration, no global mutable state. All functions are safe for concurrent
// use; shapes are immutable values once built.
package geo

import "math"

// LatLon is a position in degrees on WGS84.
type LatLon struct{ Lat, Lon float64 }

// XY is a position in metres east (X) and north (Y) in a Projection.
type XY struct{ X, Y float64 }

// Rect is an axis-aligned rectangle in projected metres. A Rect with
// Min.X > Max.X or Min.Y > Max.Y is empty (see EmptyRect).
type Rect struct{ Min, Max XY }

// EmptyRect returns the empty rectangle: the identity of Union, containing
// nothing and infinitely far from every point.
func EmptyRect() Rect {
	inf := math.Inf(1)
	return Rect{Min: XY{inf, inf}, Max: XY{-inf, -inf}}
}

// IsEmpty reports whether r contains no point.
func (r Rect) IsEmpty() bool {
	return !(r.Min.X <= r.Max.X && r.Min.Y <= r.Max.Y)
}

// Contains reports whether p lies in r, boundary included.
func (r Rect) Contains(p XY) bool {
	return p.X >= r.Min.X && p.X <= r.Max.X && p.Y >= r.Min.Y && p.Y <= r.Max.Y
}

// Distance returns the distance from p to the nearest point of r: 0 when p is
// in r, +Inf when r is empty. It is a lower bound of the distance from p to
// anything inside r.
func (r Rect) Distance(p XY) float64 {
	if r.IsEmpty() {
		return math.Inf(1)
	}
	dx := math.Max(0, math.Max(r.Min.X-p.X, p.X-r.Max.X))
	dy := math.Max(0, math.Max(r.Min.Y-p.Y, p.Y-r.Max.Y))
	if dx == 0 {
		return dy
	}
	if dy == 0 {
		return dx
	}
	return math.Hypot(dx, dy)
}

// Union returns the smallest rectangle containing r and o.
func (r Rect) Union(o Rect) Rect {
	return Rect{
		Min: XY{math.Min(r.Min.X, o.Min.X), math.Min(r.Min.Y, o.Min.Y)},
		Max: XY{math.Max(r.Max.X, o.Max.X), math.Max(r.Max.Y, o.Max.Y)},
	}
}

// extend grows r to contain p. NaN coordinates are ignored.
func (r *Rect) extend(p XY) {
	if p.X < r.Min.X {
		r.Min.X = p.X
	}
	if p.X > r.Max.X {
		r.Max.X = p.X
	}
	if p.Y < r.Min.Y {
		r.Min.Y = p.Y
	}
	if p.Y > r.Max.Y {
		r.Max.Y = p.Y
	}
}

// ValidLatLon reports whether lat and lon are finite, lat is in [-90, 90]
// and lon is in [-180, 180].
func ValidLatLon(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// BoundsCenter returns the centre of the latitude/longitude bounding box of
// points. It is used to choose the projection origin for the zones of one
// order. Points that are not ValidLatLon are ignored; with no valid point the
// result is LatLon{0, 0}. Longitudes are not unwrapped across the
// antimeridian.
func BoundsCenter(points []LatLon) LatLon {
	minLat, maxLat := math.Inf(1), math.Inf(-1)
	minLon, maxLon := math.Inf(1), math.Inf(-1)
	for _, p := range points {
		if !ValidLatLon(p.Lat, p.Lon) {
			continue
		}
		minLat = math.Min(minLat, p.Lat)
		maxLat = math.Max(maxLat, p.Lat)
		minLon = math.Min(minLon, p.Lon)
		maxLon = math.Max(maxLon, p.Lon)
	}
	if minLat > maxLat {
		return LatLon{}
	}
	return LatLon{Lat: minLat + (maxLat-minLat)/2, Lon: minLon + (maxLon-minLon)/2}
}
