package geo

// Geodesic distance on the WGS84 ellipsoid.
//
// The inverse geodesic problem is solved with the method of
//
//	C. F. F. Karney, Algorithms for geodesics, J. Geodesy 87, 43-55 (2013),
//	https://doi.org/10.1007/s00190-012-0578-z
//
// This is a transcription, restricted to the distance, of the inverse solution
// in GeographicLib (Copyright (c) Charles Karney (2011-2022), MIT/X11 licence,
// https://geographiclib.sourceforge.io/). It converges for every pair of
// points, including nearly antipodal ones, and is accurate to about 15 nm,
// so no separate fallback is needed.

import "math"

const (
	// wgs84A is the WGS84 equatorial radius in metres.
	wgs84A = 6378137.0
	// wgs84F is the WGS84 flattening, computed as GeographicLib does: the
	// inverse flattening rounded to float64, then divided.
	wgs84F = 1 / float64(298.257223563)

	geodOrder = 6
	nC3x      = geodOrder * (geodOrder - 1) / 2
	maxit1    = 20
	maxit2    = maxit1 + 53 + 10 // 53 = float64 mantissa digits
)

var (
	geodF1  = 1 - wgs84F
	geodE2  = wgs84F * (2 - wgs84F)
	geodEp2 = geodE2 / (geodF1 * geodF1)
	geodN   = wgs84F / (2 - wgs84F)
	geodB   = wgs84A * geodF1

	tiny  = math.Sqrt(0x1p-1022) // sqrt of the smallest normal float64
	tol0  = 0x1p-52              // machine epsilon
	tol1  = 200 * tol0
	tol2  = math.Sqrt(tol0)
	tolb  = tol0 * tol2
	xthr  = 1000 * tol2
	etol2 = 0.1 * tol2 / math.Sqrt(math.Max(0.001, math.Abs(wgs84F))*
		math.Min(1.0, 1-wgs84F/2)/2)

	a3x [geodOrder]float64
	c3x [nC3x]float64
)

func init() {
	// A3 coefficients.
	a3coeff := [...]float64{
		-3, 128,
		-2, -3, 64,
		-1, -3, -1, 16,
		3, -1, -2, 8,
		1, -1, 2,
		1, 1,
	}
	o, k := 0, 0
	for j := geodOrder - 1; j >= 0; j-- {
		m := min(geodOrder-j-1, j)
		a3x[k] = polyval(m, a3coeff[o:], geodN) / a3coeff[o+m+1]
		k++
		o += m + 2
	}
	// C3 coefficients.
	c3coeff := [...]float64{
		3, 128,
		2, 5, 128,
		-1, 3, 3, 64,
		-1, 0, 1, 8,
		-1, 1, 4,
		5, 256,
		1, 3, 128,
		-3, -2, 3, 64,
		1, -3, 2, 32,
		7, 512,
		-10, 9, 384,
		5, -9, 5, 192,
		7, 512,
		-14, 7, 512,
		21, 2560,
	}
	o, k = 0, 0
	for l := 1; l < geodOrder; l++ {
		for j := geodOrder - 1; j >= l; j-- {
			m := min(geodOrder-j-1, j)
			c3x[k] = polyval(m, c3coeff[o:], geodN) / c3coeff[o+m+1]
			k++
			o += m + 2
		}
	}
}

// Distance returns the geodesic (shortest path) distance in metres between a
// and b on the WGS84 ellipsoid. It is accurate to about 15 nanometres for any
// pair of points on Earth. Latitudes outside [-90, 90] or non-finite input
// give NaN.
func Distance(a, b LatLon) float64 {
	return geodInverse(a.Lat, a.Lon, b.Lat, b.Lon)
}

// polyval evaluates the polynomial p[0]*x^n + ... + p[n].
func polyval(n int, p []float64, x float64) float64 {
	if n < 0 {
		return 0
	}
	y := p[0]
	for i := 1; i <= n; i++ {
		y = y*x + p[i]
	}
	return y
}

func sq(x float64) float64 { return x * x }

// norm normalises the vector (x, y).
func norm(x, y float64) (float64, float64) {
	r := math.Hypot(x, y)
	return x / r, y / r
}

// sum is the error-free transformation of a sum: u + v = s + t exactly.
func sum(u, v float64) (s, t float64) {
	s = u + v
	up := s - v
	vpp := s - up
	up -= u
	vpp -= v
	if s == 0 {
		t = s
	} else {
		t = 0.0 - (up + vpp)
	}
	return s, t
}

// angRound rounds an angle so that small values underflow to zero.
func angRound(x float64) float64 {
	const z = 1.0 / 16
	y := math.Abs(x)
	if y < z {
		y = z - (z - y)
	}
	return math.Copysign(y, x)
}

func latFix(x float64) float64 {
	if math.Abs(x) > 90 {
		return math.NaN()
	}
	return x
}

func angRemainder(x, y float64) float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return math.NaN()
	}
	return math.Remainder(x, y)
}

// angDiff returns y - x reduced to [-180, 180] and its rounding error.
func angDiff(x, y float64) (d, t float64) {
	d, t = sum(angRemainder(-x, 360), angRemainder(y, 360))
	d, t = sum(angRemainder(d, 360), t)
	if d == 0 || math.Abs(d) == 180 {
		if t == 0 {
			d = math.Copysign(d, y-x)
		} else {
			d = math.Copysign(d, -t)
		}
	}
	return d, t
}

// sincosd returns the sine and cosine of x degrees, exact at multiples of 90.
func sincosd(x float64) (s, c float64) {
	r := math.NaN()
	if !math.IsInf(x, 0) && !math.IsNaN(x) {
		r = math.Mod(x, 360)
	}
	q := 0
	if !math.IsNaN(r) {
		q = int(math.Round(r / 90))
	}
	r -= 90 * float64(q)
	r *= math.Pi / 180
	s, c = math.Sincos(r)
	switch uint(q) & 3 {
	case 1:
		s, c = c, -s
	case 2:
		s, c = -s, -c
	case 3:
		s, c = -c, s
	}
	c += 0.0
	if s == 0 {
		s = math.Copysign(s, x)
	}
	return s, c
}

// sincosde returns the sine and cosine of (x + t) degrees, x in [-180, 180].
func sincosde(x, t float64) (s, c float64) {
	q := 0
	if !math.IsInf(x, 0) && !math.IsNaN(x) {
		q = int(math.Round(x / 90))
	}
	r := x - 90*float64(q)
	r = angRound(r+t) * (math.Pi / 180)
	s, c = math.Sincos(r)
	switch uint(q) & 3 {
	case 1:
		s, c = c, -s
	case 2:
		s, c = -s, -c
	case 3:
		s, c = -c, s
	}
	c += 0.0
	if s == 0 {
		s = math.Copysign(s, x)
	}
	return s, c
}

// sinCosSeries evaluates, by Clenshaw summation,
// sinp: sum(c[i] * sin(2*i*x), i, 1, n-1); otherwise sum(c[i] * cos((2*i+1)*x), i, 0, n-1).
func sinCosSeries(sinp bool, sinx, cosx float64, c []float64) float64 {
	k := len(c)
	n := k
	if sinp {
		n--
	}
	ar := 2 * (cosx - sinx) * (cosx + sinx)
	var y0, y1 float64
	if n&1 != 0 {
		k--
		y0 = c[k]
	}
	for n /= 2; n > 0; n-- {
		k--
		y1 = ar*y0 - y1 + c[k]
		k--
		y0 = ar*y1 - y0 + c[k]
	}
	if sinp {
		return 2 * sinx * cosx * y0
	}
	return cosx * (y0 - y1)
}

// astroid solves k^4+2*k^3-(x^2+y^2-1)*k^2-2*y^2*k-y^2 = 0 for the positive root k.
func astroid(x, y float64) float64 {
	p := sq(x)
	q := sq(y)
	r := (p + q - 1) / 6
	if q == 0 && r <= 0 {
		return 0
	}
	S := p * q / 4
	r2 := sq(r)
	r3 := r * r2
	disc := S * (S + 2*r3)
	u := r
	if disc >= 0 {
		T3 := S + r3
		if T3 < 0 {
			T3 += -math.Sqrt(disc)
		} else {
			T3 += math.Sqrt(disc)
		}
		T := math.Cbrt(T3)
		u += T
		if T != 0 {
			u += r2 / T
		}
	} else {
		ang := math.Atan2(math.Sqrt(-disc), -(S + r3))
		u += 2 * r * math.Cos(ang/3)
	}
	v := math.Sqrt(sq(u) + q)
	var uv float64
	if u < 0 {
		uv = q / (v - u)
	} else {
		uv = u + v
	}
	w := (uv - q) / (2 * v)
	return uv / (math.Sqrt(uv+sq(w)) + w)
}

func a1m1f(eps float64) float64 {
	coeff := [...]float64{1, 4, 64, 0, 256}
	const m = geodOrder / 2
	t := polyval(m, coeff[:], sq(eps)) / coeff[m+1]
	return (t + eps) / (1 - eps)
}

func c1f(eps float64, c *[geodOrder + 1]float64) {
	coeff := [...]float64{
		-1, 6, -16, 32,
		-9, 64, -128, 2048,
		9, -16, 768,
		3, -5, 512,
		-7, 1280,
		-7, 2048,
	}
	eps2 := sq(eps)
	d := eps
	o := 0
	for l := 1; l <= geodOrder; l++ {
		m := (geodOrder - l) / 2
		c[l] = d * polyval(m, coeff[o:], eps2) / coeff[o+m+1]
		o += m + 2
		d *= eps
	}
}

func a2m1f(eps float64) float64 {
	coeff := [...]float64{-11, -28, -192, 0, 256}
	const m = geodOrder / 2
	t := polyval(m, coeff[:], sq(eps)) / coeff[m+1]
	return (t - eps) / (1 + eps)
}

func c2f(eps float64, c *[geodOrder + 1]float64) {
	coeff := [...]float64{
		1, 2, 16, 32,
		35, 64, 384, 2048,
		15, 80, 768,
		7, 35, 512,
		63, 1280,
		77, 2048,
	}
	eps2 := sq(eps)
	d := eps
	o := 0
	for l := 1; l <= geodOrder; l++ {
		m := (geodOrder - l) / 2
		c[l] = d * polyval(m, coeff[o:], eps2) / coeff[o+m+1]
		o += m + 2
		d *= eps
	}
}

func a3f(eps float64) float64 {
	return polyval(geodOrder-1, a3x[:], eps)
}

func c3f(eps float64, c *[geodOrder]float64) {
	mult := 1.0
	o := 0
	for l := 1; l < geodOrder; l++ {
		m := geodOrder - l - 1
		mult *= eps
		c[l] = mult * polyval(m, c3x[o:], eps)
		o += m + 1
	}
}

// geodScratch holds the series coefficient arrays of one inverse solution.
type geodScratch struct {
	c1a [geodOrder + 1]float64
	c2a [geodOrder + 1]float64
	c3a [geodOrder]float64
}

// lengths returns s12b (distance / b) and, if reduced is set, m12b
// (reduced length / b) and m0.
func (w *geodScratch) lengths(eps, sig12, ssig1, csig1, dn1, ssig2, csig2, dn2 float64,
	distance, reduced bool) (s12b, m12b, m0 float64) {
	s12b, m12b, m0 = math.NaN(), math.NaN(), math.NaN()
	A1 := a1m1f(eps)
	c1f(eps, &w.c1a)
	var A2, m0x float64
	if reduced {
		A2 = a2m1f(eps)
		c2f(eps, &w.c2a)
		m0x = A1 - A2
		A2 = 1 + A2
	}
	A1 = 1 + A1
	var J12 float64
	if distance {
		B1 := sinCosSeries(true, ssig2, csig2, w.c1a[:]) -
			sinCosSeries(true, ssig1, csig1, w.c1a[:])
		s12b = A1 * (sig12 + B1)
		if reduced {
			B2 := sinCosSeries(true, ssig2, csig2, w.c2a[:]) -
				sinCosSeries(true, ssig1, csig1, w.c2a[:])
			J12 = m0x*sig12 + (A1*B1 - A2*B2)
		}
	} else if reduced {
		for l := 1; l <= geodOrder; l++ {
			w.c2a[l] = A1*w.c1a[l] - A2*w.c2a[l]
		}
		J12 = m0x*sig12 + (sinCosSeries(true, ssig2, csig2, w.c2a[:]) -
			sinCosSeries(true, ssig1, csig1, w.c2a[:]))
	}
	if reduced {
		m0 = m0x
		m12b = dn2*(csig1*ssig2) - dn1*(ssig1*csig2) - csig1*csig2*J12
	}
	return s12b, m12b, m0
}

// inverseStart finds a starting point for Newton's method. If sig12 >= 0 the
// short-line solution is already complete and dnm is set.
func (w *geodScratch) inverseStart(sbet1, cbet1, dn1, sbet2, cbet2, dn2,
	lam12, slam12, clam12 float64) (sig12, salp1, calp1, dnm float64) {
	sig12 = -1
	dnm = math.NaN()
	sbet12 := sbet2*cbet1 - cbet2*sbet1
	cbet12 := cbet2*cbet1 + sbet2*sbet1
	sbet12a := sbet2 * cbet1
	sbet12a += cbet2 * sbet1

	shortline := cbet12 >= 0 && sbet12 < 0.5 && cbet2*lam12 < 0.5
	var somg12, comg12 float64
	if shortline {
		sbetm2 := sq(sbet1 + sbet2)
		sbetm2 /= sbetm2 + sq(cbet1+cbet2)
		dnm = math.Sqrt(1 + geodEp2*sbetm2)
		omg12 := lam12 / (geodF1 * dnm)
		somg12, comg12 = math.Sincos(omg12)
	} else {
		somg12, comg12 = slam12, clam12
	}

	salp1 = cbet2 * somg12
	if comg12 >= 0 {
		calp1 = sbet12 + cbet2*sbet1*sq(somg12)/(1+comg12)
	} else {
		calp1 = sbet12a - cbet2*sbet1*sq(somg12)/(1-comg12)
	}

	ssig12 := math.Hypot(salp1, calp1)
	csig12 := sbet1*sbet2 + cbet1*cbet2*comg12

	if shortline && ssig12 < etol2 {
		// Really short lines.
		sig12 = math.Atan2(ssig12, csig12)
	} else if math.Abs(geodN) >= 0.1 || csig12 >= 0 ||
		ssig12 >= 6*math.Abs(geodN)*math.Pi*sq(cbet1) {
		// Zeroth order spherical approximation is OK.
	} else {
		// Scale lam12 and bet2 to x, y coordinate system where antipodal
		// point is at origin and singular point is at y = 0, x = -1.
		lam12x := math.Atan2(-slam12, -clam12)
		// f > 0 for WGS84: x = dlong, y = dlat.
		k2 := sq(sbet1) * geodEp2
		eps := k2 / (2*(1+math.Sqrt(1+k2)) + k2)
		lamscale := wgs84F * cbet1 * a3f(eps) * math.Pi
		betscale := lamscale * cbet1
		x := lam12x / lamscale
		y := sbet12a / betscale
		if y > -tol1 && x > -1-xthr {
			// Strip near cut.
			salp1 = math.Min(1.0, -x)
			calp1 = -math.Sqrt(1 - sq(salp1))
		} else {
			// Estimate alp1 by solving the astroid problem.
			k := astroid(x, y)
			omg12a := lamscale * (-x * k / (1 + k))
			somg12, comg12 = math.Sincos(omg12a)
			comg12 = -comg12
			salp1 = cbet2 * somg12
			calp1 = sbet12a - cbet2*sbet1*sq(somg12)/(1-comg12)
		}
	}
	// Sanity check on starting guess. Backwards check allows NaN through.
	if !(salp1 <= 0) {
		salp1, calp1 = norm(salp1, calp1)
	} else {
		salp1, calp1 = 1, 0
	}
	return sig12, salp1, calp1, dnm
}

// lambda12 solves the hybrid problem for a trial azimuth alp1.
func (w *geodScratch) lambda12(sbet1, cbet1, dn1, sbet2, cbet2, dn2, salp1, calp1,
	slam120, clam120 float64, diffp bool) (lam12, sig12, ssig1, csig1, ssig2, csig2, eps, dlam12 float64) {
	if sbet1 == 0 && calp1 == 0 {
		// Break degeneracy of equatorial line.
		calp1 = -tiny
	}
	salp0 := salp1 * cbet1
	calp0 := math.Hypot(calp1, salp1*sbet1)

	ssig1 = sbet1
	somg1 := salp0 * sbet1
	csig1 = calp1 * cbet1
	comg1 := csig1
	ssig1, csig1 = norm(ssig1, csig1)

	var calp2 float64
	if cbet2 != cbet1 || math.Abs(sbet2) != -sbet1 {
		var t float64
		if cbet1 < -sbet1 {
			t = (cbet2 - cbet1) * (cbet1 + cbet2)
		} else {
			t = (sbet1 - sbet2) * (sbet1 + sbet2)
		}
		calp2 = math.Sqrt(sq(calp1*cbet1)+t) / cbet2
	} else {
		calp2 = math.Abs(calp1)
	}
	ssig2 = sbet2
	somg2 := salp0 * sbet2
	csig2 = calp2 * cbet2
	comg2 := csig2
	ssig2, csig2 = norm(ssig2, csig2)

	sig12 = math.Atan2(math.Max(0.0, csig1*ssig2-ssig1*csig2)+0.0,
		csig1*csig2+ssig1*ssig2)
	somg12 := math.Max(0.0, comg1*somg2-somg1*comg2) + 0.0
	comg12 := comg1*comg2 + somg1*somg2
	eta := math.Atan2(somg12*clam120-comg12*slam120,
		comg12*clam120+somg12*slam120)

	k2 := sq(calp0) * geodEp2
	eps = k2 / (2*(1+math.Sqrt(1+k2)) + k2)
	c3f(eps, &w.c3a)
	B312 := sinCosSeries(true, ssig2, csig2, w.c3a[:]) -
		sinCosSeries(true, ssig1, csig1, w.c3a[:])
	domg12 := -wgs84F * a3f(eps) * salp0 * (sig12 + B312)
	lam12 = eta + domg12

	dlam12 = math.NaN()
	if diffp {
		if calp2 == 0 {
			dlam12 = -2 * geodF1 * dn1 / sbet1
		} else {
			_, dlam12, _ = w.lengths(eps, sig12, ssig1, csig1, dn1, ssig2, csig2, dn2, false, true)
			dlam12 *= geodF1 / (calp2 * cbet2)
		}
	}
	return lam12, sig12, ssig1, csig1, ssig2, csig2, eps, dlam12
}

// geodInverse returns the geodesic distance in metres between two points.
func geodInverse(lat1, lon1, lat2, lon2 float64) float64 {
	var w geodScratch

	lon12, lon12s := angDiff(lon1, lon2)
	lonsign := math.Copysign(1, lon12)
	lon12 *= lonsign
	lon12s *= lonsign
	lam12 := lon12 * (math.Pi / 180)
	slam12, clam12 := sincosde(lon12, lon12s)
	lon12s = (180 - lon12) - lon12s

	lat1 = angRound(latFix(lat1))
	lat2 = angRound(latFix(lat2))
	if math.Abs(lat1) < math.Abs(lat2) || math.IsNaN(lat2) {
		lat1, lat2 = lat2, lat1
	}
	latsign := math.Copysign(1, -lat1)
	lat1 *= latsign
	lat2 *= latsign

	sbet1, cbet1 := sincosd(lat1)
	sbet1 *= geodF1
	sbet1, cbet1 = norm(sbet1, cbet1)
	cbet1 = math.Max(tiny, cbet1)

	sbet2, cbet2 := sincosd(lat2)
	sbet2 *= geodF1
	sbet2, cbet2 = norm(sbet2, cbet2)
	cbet2 = math.Max(tiny, cbet2)

	if cbet1 < -sbet1 {
		if cbet2 == cbet1 {
			sbet2 = math.Copysign(sbet1, sbet2)
		}
	} else if math.Abs(sbet2) == -sbet1 {
		cbet2 = cbet1
	}

	dn1 := math.Sqrt(1 + geodEp2*sq(sbet1))
	dn2 := math.Sqrt(1 + geodEp2*sq(sbet2))

	var s12x float64
	meridian := lat1 == -90 || slam12 == 0
	if meridian {
		// Endpoints are on a single full meridian.
		// Head to the target longitude (alp1 = lam12); at the target the
		// geodesic heads north (alp2 = 0).
		calp1 := clam12
		ssig1 := sbet1
		csig1 := calp1 * cbet1
		ssig2 := sbet2
		csig2 := cbet2
		sig12 := math.Atan2(math.Max(0.0, csig1*ssig2-ssig1*csig2)+0.0,
			csig1*csig2+ssig1*ssig2)
		s12b, m12b, _ := w.lengths(geodN, sig12, ssig1, csig1, dn1, ssig2, csig2, dn2, true, true)
		if sig12 < 1 || m12b >= 0 {
			if sig12 < 3*tiny || (sig12 < tol0 && (s12b < 0 || m12b < 0)) {
				s12b = 0
			}
			s12x = s12b * geodB
		} else {
			// m12 < 0, i.e., prolate and too close to anti-podal.
			meridian = false
		}
	}

	if !meridian && sbet1 == 0 && (wgs84F <= 0 || lon12s >= wgs84F*180) {
		// Geodesic runs along equator.
		s12x = wgs84A * lam12
	} else if !meridian {
		sig12, salp1, calp1, dnm := w.inverseStart(sbet1, cbet1, dn1, sbet2, cbet2, dn2,
			lam12, slam12, clam12)
		if sig12 >= 0 {
			// Short lines.
			s12x = sig12 * geodB * dnm
		} else {
			// Newton's method on lambda12(alp1) - lam12 = 0, bracketed.
			var ssig1, csig1, ssig2, csig2, eps float64
			numit := 0
			tripn, tripb := false, false
			salp1a, calp1a := tiny, 1.0
			salp1b, calp1b := tiny, -1.0
			for ; numit < maxit2; numit++ {
				var v, dv float64
				v, sig12, ssig1, csig1, ssig2, csig2, eps, dv = w.lambda12(
					sbet1, cbet1, dn1, sbet2, cbet2, dn2, salp1, calp1,
					slam12, clam12, numit < maxit1)
				tolv := 1.0
				if tripn {
					tolv = 8
				}
				if tripb || !(math.Abs(v) >= tolv*tol0) {
					break
				}
				if v > 0 && (numit > maxit1 || calp1/salp1 > calp1b/salp1b) {
					salp1b, calp1b = salp1, calp1
				} else if v < 0 && (numit > maxit1 || calp1/salp1 < calp1a/salp1a) {
					salp1a, calp1a = salp1, calp1
				}
				if numit+1 < maxit1 && dv > 0 {
					dalp1 := -v / dv
					sdalp1, cdalp1 := math.Sincos(dalp1)
					nsalp1 := salp1*cdalp1 + calp1*sdalp1
					if nsalp1 > 0 && math.Abs(dalp1) < math.Pi {
						calp1 = calp1*cdalp1 - salp1*sdalp1
						salp1 = nsalp1
						salp1, calp1 = norm(salp1, calp1)
						tripn = math.Abs(v) <= 16*tol0
						continue
					}
				}
				// Bisect the bracket.
				salp1 = (salp1a + salp1b) / 2
				calp1 = (calp1a + calp1b) / 2
				salp1, calp1 = norm(salp1, calp1)
				tripn = false
				tripb = math.Abs(salp1a-salp1)+(calp1a-calp1) < tolb ||
					math.Abs(salp1-salp1b)+(calp1-calp1b) < tolb
			}
			s12b, _, _ := w.lengths(eps, sig12, ssig1, csig1, dn1, ssig2, csig2, dn2, true, false)
			s12x = s12b * geodB
		}
	}
	return 0.0 + s12x
}
