package geo

import "math"

// Projection is an ellipsoidal (WGS84) transverse Mercator projection centred
// on an origin: the central meridian is Origin.Lon, the false northing puts
// Origin at (0, 0), there is no false easting, and the scale factor on the
// central meridian is 1.
//
// It uses the Krüger series to sixth order in the third flattening n, as in
//
//	C. F. F. Karney, Transverse Mercator with an accuracy of a few
//	nanometers, J. Geodesy 85, 475-485 (2011),
//	https://doi.org/10.1007/s00190-011-0445-3
//
// which is also what GeographicLib's TransverseMercator and the modern UTM
// formulas use. Within 3,900 km of the central meridian the series error is
// below 5 nm, so Forward and Inverse are exact for any practical purpose
// anywhere in Norway.
//
// Distances in the projected plane are true distances multiplied by the
// point scale factor k >= 1 (see ScaleAt), which grows with the distance x
// from the central meridian as about 1 + x²/(2R²), R ≈ 6,380 km: +0.01 % at
// 90 km, +0.05 % at 200 km.
//
// A Projection is immutable and safe for concurrent use.
type Projection struct {
	origin LatLon
	lon0   float64 // central meridian, degrees
	y0     float64 // northing of the origin before the false northing, metres
}

// Ellipsoid and series constants, computed once.
var (
	tmE2  = wgs84F * (2 - wgs84F) // eccentricity squared
	tmE   = math.Sqrt(tmE2)
	tmE2m = 1 - tmE2
	tmN   = wgs84F / (2 - wgs84F)
	// tmA is the rectifying radius times the central scale factor (1).
	tmA = wgs84A / (1 + tmN) * (1 + tmN*tmN/4 + math.Pow(tmN, 4)/64 + math.Pow(tmN, 6)/256)

	tmAlpha = krugerAlpha(tmN) // forward series, index 1..6
	tmBeta  = krugerBeta(tmN)  // inverse series, index 1..6
)

// etaLimit bounds η' in Forward and η in Inverse (the "easting" in units of
// the rectifying radius). |η| = 3 is about 19,000 km east or west of the
// central meridian, only reached near the equator more than 84° of longitude
// away, far beyond where the projection means anything (at 58° N, 90° of
// longitude gives |η'| < 0.6). The bound only keeps results finite near the
// singular points (latitude 0, 90° from the central meridian) and for absurd
// input.
const etaLimit = 3.0

// krugerAlpha returns the coefficients α1..α6 of Karney (2011), eq. (35).
func krugerAlpha(n float64) [7]float64 {
	n2 := n * n
	n3 := n2 * n
	n4 := n3 * n
	n5 := n4 * n
	n6 := n5 * n
	return [7]float64{
		0,
		n/2 - 2*n2/3 + 5*n3/16 + 41*n4/180 - 127*n5/288 + 7891*n6/37800,
		13*n2/48 - 3*n3/5 + 557*n4/1440 + 281*n5/630 - 1983433*n6/1935360,
		61*n3/240 - 103*n4/140 + 15061*n5/26880 + 167603*n6/181440,
		49561*n4/161280 - 179*n5/168 + 6601661*n6/7257600,
		34729*n5/80640 - 3418889*n6/1995840,
		212378941 * n6 / 319334400,
	}
}

// krugerBeta returns the coefficients β1..β6 of Karney (2011), eq. (36).
func krugerBeta(n float64) [7]float64 {
	n2 := n * n
	n3 := n2 * n
	n4 := n3 * n
	n5 := n4 * n
	n6 := n5 * n
	return [7]float64{
		0,
		n/2 - 2*n2/3 + 37*n3/96 - n4/360 - 81*n5/512 + 96199*n6/604800,
		n2/48 + n3/15 - 437*n4/1440 + 46*n5/105 - 1118711*n6/3870720,
		17*n3/480 - 37*n4/840 - 209*n5/4480 + 5569*n6/90720,
		4397*n4/161280 - 11*n5/504 - 830251*n6/7257600,
		4583*n5/161280 - 108847*n6/3991680,
		20648693 * n6 / 638668800,
	}
}

// NewProjection returns the transverse Mercator projection centred on origin.
// origin must satisfy ValidLatLon; otherwise every result is NaN.
func NewProjection(origin LatLon) *Projection {
	p := &Projection{origin: origin, lon0: origin.Lon}
	if !ValidLatLon(origin.Lat, origin.Lon) {
		p.lon0 = math.NaN()
		p.y0 = math.NaN()
		return p
	}
	xi, _, _ := forwardRaw(origin.Lat, 0)
	p.y0 = tmA * xi
	return p
}

// Origin returns the origin the projection was built with.
func (p *Projection) Origin() LatLon { return p.origin }

// Forward projects ll to metres east and north of the origin. Longitudes are
// taken relative to the central meridian modulo 360°. The result is finite for
// every ValidLatLon position, but it is only meaningful within a few thousand
// kilometres of the central meridian.
func (p *Projection) Forward(ll LatLon) XY {
	xi, eta, _ := forwardRaw(ll.Lat, angRemainder(ll.Lon-p.lon0, 360))
	return XY{X: tmA * eta, Y: tmA*xi - p.y0}
}

// ScaleAt returns the point scale factor k of the projection at xy: the
// ratio of a short projected length near xy to the true (ellipsoidal) length.
// k is 1 on the central meridian and about 1 + x²/(2R²) elsewhere. For a
// segment up to 50 km long within 200 km of the central meridian, its
// projected length divided by ScaleAt of its midpoint is the geodesic length
// to within 5e-6 (relative); divided by (k(a) + 4 k(mid) + k(b))/6, to
// within 1e-7.
func (p *Projection) ScaleAt(xy XY) float64 {
	ll := p.Inverse(xy)
	_, _, k := forwardRaw(ll.Lat, angRemainder(ll.Lon-p.lon0, 360))
	return k
}

// Inverse converts metres east and north of the origin back to latitude and
// longitude. Longitudes are returned in [-180, 180].
func (p *Projection) Inverse(xy XY) LatLon {
	xi := (xy.Y + p.y0) / tmA
	eta := math.Max(-etaLimit, math.Min(etaLimit, xy.X/tmA))

	// ζ' = ζ - Σ βj sin(2jζ), with ζ = ξ + iη.
	dxi, deta, _, _ := clenshaw(&tmBeta, xi, eta, false)
	xip := xi - dxi
	etap := eta - deta

	sxip, cxip := math.Sincos(xip)
	shetap := math.Sinh(etap)
	r := math.Hypot(shetap, cxip)
	lam := math.Atan2(shetap, cxip)
	var lat float64
	if r != 0 {
		taup := sxip / r
		lat = math.Atan(tauf(taup)) * (180 / math.Pi)
	} else {
		lat = math.Copysign(90, sxip)
		lam = 0
	}
	lon := angRemainder(p.lon0+lam*(180/math.Pi), 360)
	if lon == -180 {
		lon = 180
	}
	return LatLon{Lat: lat, Lon: lon}
}

// forwardRaw returns ξ and η (in units of the rectifying radius) and the
// point scale k for latitude lat and longitude lam relative to the central
// meridian, both in degrees.
func forwardRaw(lat, lam float64) (xi, eta, k float64) {
	sphi, cphi := sincosd(lat)
	slam, clam := sincosd(lam)
	var tau float64
	if cphi != 0 {
		tau = sphi / cphi
	} else {
		tau = math.Copysign(1/0x1p-52, sphi) // pole: a very large tangent
		cphi = sphi / tau
	}
	taup := taupf(tau)

	den := math.Hypot(taup, clam)
	xip := math.Atan2(taup, clam)
	var etap float64
	if den > 0 {
		etap = math.Asinh(slam / den)
	} else {
		etap = math.Copysign(etaLimit, slam)
	}
	etap = math.Max(-etaLimit, math.Min(etaLimit, etap))

	dxi, deta, dre, dim := clenshaw(&tmAlpha, xip, etap, true)
	xi = xip + dxi
	eta = etap + deta

	// k = (A/a) |dζ/dζ'| sqrt(1 - e² sin²φ) sqrt(1 + τ²) / sqrt(τ'² + cos²λ)
	if den > 0 {
		k = tmA / wgs84A * math.Hypot(1+dre, dim) *
			math.Sqrt(tmE2m+tmE2*cphi*cphi) * math.Hypot(1, tau) / den
	} else {
		k = math.Inf(1)
	}
	return xi, eta, k
}

// clenshaw evaluates Σ_{j=1..6} c[j] sin(2jζ) for ζ = xi + i·eta by Clenshaw
// summation, returning its real and imaginary parts. With deriv it also
// returns Σ 2j c[j] cos(2jζ) (the derivative of the sum with respect to ζ).
func clenshaw(c *[7]float64, xi, eta float64, deriv bool) (sr, si, dr, di float64) {
	s2, c2 := math.Sincos(2 * xi)
	sh2 := math.Sinh(2 * eta)
	ch2 := math.Cosh(2 * eta)
	// sin(2ζ) and 2cos(2ζ)
	sinr, sini := s2*ch2, c2*sh2
	ar, ai := 2*c2*ch2, -2*s2*sh2

	// y_j = a y_{j+1} - y_{j+2} + c_j (complex); likewise z_j for the derivative.
	var y0r, y0i, y1r, y1i float64
	var z0r, z0i, z1r, z1i float64
	for j := 6; j >= 1; j-- {
		y2r, y2i := y1r, y1i
		y1r, y1i = y0r, y0i
		y0r = ar*y1r - ai*y1i - y2r + c[j]
		y0i = ar*y1i + ai*y1r - y2i
		if deriv {
			z2r, z2i := z1r, z1i
			z1r, z1i = z0r, z0i
			z0r = ar*z1r - ai*z1i - z2r + 2*float64(j)*c[j]
			z0i = ar*z1i + ai*z1r - z2i
		}
	}
	// Σ c_j sin(jθ) = y_1 sin θ, with θ = 2ζ.
	sr = y0r*sinr - y0i*sini
	si = y0r*sini + y0i*sinr
	if deriv {
		// Σ d_j cos(jθ) = z_1 cos θ - z_2, cos θ = a/2.
		dr = z0r*ar/2 - z0i*ai/2 - z1r
		di = z0r*ai/2 + z0i*ar/2 - z1i
	}
	return sr, si, dr, di
}

// taupf returns τ' = tan χ for τ = tan φ, χ the conformal latitude.
func taupf(tau float64) float64 {
	tau1 := math.Hypot(1, tau)
	sig := math.Sinh(tmE * math.Atanh(tmE*tau/tau1))
	return math.Hypot(1, sig)*tau - sig*tau1
}

// tauf inverts taupf by Newton's method (Karney 2011, eqs. 19-21).
func tauf(taup float64) float64 {
	const numit = 5
	tol := math.Sqrt(0x1p-52) / 10
	stol := tol * math.Max(1, math.Abs(taup))
	tau := taup / tmE2m
	if math.Abs(taup) > 70 {
		tau = taup * math.Exp(tmE*math.Atanh(tmE))
	}
	if !(math.Abs(tau) < 2/math.Sqrt(0x1p-52)) {
		return tau // ±Inf, NaN or a pole
	}
	for i := 0; i < numit; i++ {
		taupa := taupf(tau)
		dtau := (taup - taupa) * (1 + tmE2m*tau*tau) /
			(tmE2m * math.Hypot(1, tau) * math.Hypot(1, taupa))
		tau += dtau
		if !(math.Abs(dtau) >= stol) {
			break
		}
	}
	return tau
}
