package breach

import (
	"cmp"
	"math"
	"slices"

	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/geo"
	"github.com/skjold-alarm/skjold/core/order"
)

// Which zones a fix must be evaluated against. A zone's alarms (breach, warning, approach) can only start
// when the fix is within some distance m of the zone; a zone whose alarms are all closed and that the fix
// is certainly farther than m from is skipped, which changes nothing: evaluating it would only find every
// condition inactive with no alarm to update. "Certainly" uses rigorous bounds (geo.Band) computed from
// latitude and longitude, so no projection is needed to skip a zone. See DESIGN.md, "Fast paths".

const (
	// regionHalfLat and regionHalfLon bound the order's region around its projection origin, in degrees:
	// fixes and zone discs outside it are evaluated the slow way.
	regionHalfLat = 2.0
	regionHalfLon = 5.0
	// maxDiscRadius: a zone larger than this (metres) gets no disc and is always evaluated.
	maxDiscRadius = 50000.0
	// maxIndexMargin: with a larger m the index is not consulted and every disc is tested.
	maxIndexMargin = 40000.0
	// boundSlack is added to every margin (metres): far more than the nanometres by which the projection,
	// the inverse projection of a disc's centre and the geodesic bounds round.
	boundSlack = 1.0
	// indexMinZones: orders with more zones get a zone index; fewer are scanned.
	indexMinZones = 8
	zoneFanout    = 8
)

// region is the part of the map around an order's projection origin where the bounds apply.
type region struct {
	band geo.Band
	lon0 float64
	kmax float64 // bound of the projection's scale over the region
	// Degrees per metre of the band (Band.Degrees(1)).
	latPerM, lonPerM float64
}

func newRegion(p *geo.Projection, origin geo.LatLon) region {
	r := region{band: geo.NewBand(origin.Lat, regionHalfLat), lon0: origin.Lon}
	r.kmax = p.ScaleBound(r.band, regionHalfLon)
	r.latPerM, r.lonPerM = r.band.Degrees(1)
	return r
}

// relLon returns the longitude of ll relative to the region's central meridian, in (-360, 360).
func (r *region) relLon(ll geo.LatLon) float64 { return ll.Lon - r.lon0 }

// contains reports whether the bounds apply at ll.
func (r *region) contains(ll geo.LatLon) bool {
	return r.band.Contains(ll) && math.Abs(r.relLon(ll)) <= regionHalfLon
}

// disc is a disc containing (part of) a zone: its centre's position and its radius in projected metres,
// the error of the inverse projection of the centre included.
type disc struct {
	centre geo.LatLon
	radius float64
}

// compileZone prepares a zone's discs.
func (c *compiledOrder) compileZone(z *order.Zone, shape geo.Shape) compiledZone {
	cz := compiledZone{id: z.ID, kind: z.Kind, warningM: z.WarningM, sched: z.Schedule, shape: shape}
	parts := []geo.Shape{shape}
	if mp, ok := shape.(geo.MultiPolygon); ok {
		parts = parts[:0]
		for _, pg := range mp {
			parts = append(parts, pg)
		}
	}
	for _, s := range parts {
		centre, r, ok := geo.EnclosingDisc(s)
		if !ok {
			if mp, isMP := shape.(geo.MultiPolygon); isMP && s.Bounds().IsEmpty() && len(mp) > 1 {
				continue // an empty member adds nothing to the union
			}
			cz.always = true
			break
		}
		ll := c.proj.Inverse(centre)
		back := c.proj.Forward(ll)
		r += math.Hypot(back.X-centre.X, back.Y-centre.Y)
		if !(r <= maxDiscRadius) || !c.region.contains(ll) {
			cz.always = true
			break
		}
		cz.discs = append(cz.discs, disc{centre: ll, radius: r})
	}
	if z.Kind != order.Exclusion || len(cz.discs) == 0 {
		cz.always = true
	}
	if cz.always {
		cz.discs = nil
	}
	if z.Kind == order.Exclusion {
		c.maxWarn = math.Max(c.maxWarn, z.WarningM)
	}
	return cz
}

// zoneIndex is a static packed R-tree over the discs' boxes in degrees (latitude, longitude relative to
// the central meridian), built once per order: a query visits O(log n) nodes plus the boxes it meets.
type zoneIndex struct {
	boxes  []zbox  // leaf entries, in tree order
	zones  []int32 // the zone of each leaf entry
	levels [][]zbox
}

type zbox struct{ lat0, lat1, lon0, lon1 float64 }

func (b *zbox) union(o zbox) {
	b.lat0, b.lat1 = math.Min(b.lat0, o.lat0), math.Max(b.lat1, o.lat1)
	b.lon0, b.lon1 = math.Min(b.lon0, o.lon0), math.Max(b.lon1, o.lon1)
}

// meets reports whether b, widened by dLat and dLon, contains (lat, lon).
func (b *zbox) meets(lat, lon, dLat, dLon float64) bool {
	return lat >= b.lat0-dLat && lat <= b.lat1+dLat && lon >= b.lon0-dLon && lon <= b.lon1+dLon
}

// buildIndex sorts the zones into those always evaluated and those behind a disc test, and indexes the
// discs of an order with many zones.
func (c *compiledOrder) buildIndex() {
	type entry struct {
		box  zbox
		zone int32
	}
	var entries []entry
	c.discs = c.discBuf[:0]
	for i := range c.zones {
		z := &c.zones[i]
		c.zoneIdx[z.id] = int32(i)
		if z.always {
			c.always = append(c.always, int32(i))
			continue
		}
		for _, d := range z.discs {
			c.discs = append(c.discs, zoneDisc{d, int32(i)})
			lat, lon := c.region.relPos(d.centre)
			dLat, dLon := d.radius*c.region.latPerM, d.radius*c.region.lonPerM
			entries = append(entries, entry{zbox{lat - dLat, lat + dLat, lon - dLon, lon + dLon}, int32(i)})
		}
	}
	if len(c.zones) <= indexMinZones || math.IsInf(c.region.lonPerM, 0) || math.IsInf(c.region.latPerM, 0) {
		return
	}
	// Sort-tile-recursive packing: slices by longitude, then latitude within a slice.
	mid := func(b zbox) (float64, float64) { return b.lat0/2 + b.lat1/2, b.lon0/2 + b.lon1/2 }
	slices.SortFunc(entries, func(x, y entry) int {
		_, a := mid(x.box)
		_, b := mid(y.box)
		return cmp.Or(cmp.Compare(a, b), cmp.Compare(x.zone, y.zone))
	})
	leaves := (len(entries) + zoneFanout - 1) / zoneFanout
	per := int(math.Ceil(math.Sqrt(float64(leaves)))) * zoneFanout
	for i := 0; i < len(entries); i += per {
		s := entries[i:min(i+per, len(entries))]
		slices.SortFunc(s, func(x, y entry) int {
			a, _ := mid(x.box)
			b, _ := mid(y.box)
			return cmp.Or(cmp.Compare(a, b), cmp.Compare(x.zone, y.zone))
		})
	}
	ix := &zoneIndex{}
	for _, e := range entries {
		ix.boxes = append(ix.boxes, e.box)
		ix.zones = append(ix.zones, e.zone)
	}
	for lv := ix.boxes; len(lv) > 1 || len(ix.levels) == 0; {
		up := make([]zbox, (len(lv)+zoneFanout-1)/zoneFanout)
		for i := range up {
			up[i] = lv[i*zoneFanout]
			for _, b := range lv[i*zoneFanout+1 : min((i+1)*zoneFanout, len(lv))] {
				up[i].union(b)
			}
		}
		ix.levels = append(ix.levels, up)
		lv = up
	}
	c.index = ix
}

// relPos returns ll as (latitude, longitude relative to the central meridian).
func (r *region) relPos(ll geo.LatLon) (float64, float64) { return ll.Lat, r.relLon(ll) }

// query appends the zones of the leaf entries whose box, widened by dLat and dLon, contains (lat, lon).
func (ix *zoneIndex) query(lat, lon, dLat, dLon float64, out []int32) []int32 {
	if len(ix.boxes) == 0 {
		return out
	}
	top := len(ix.levels) - 1
	if !ix.levels[top][0].meets(lat, lon, dLat, dLon) {
		return out
	}
	return ix.visit(top, 0, lat, lon, dLat, dLon, out)
}

func (ix *zoneIndex) visit(lv, i int, lat, lon, dLat, dLon float64, out []int32) []int32 {
	if lv == 0 {
		for j := i * zoneFanout; j < min((i+1)*zoneFanout, len(ix.boxes)); j++ {
			if ix.boxes[j].meets(lat, lon, dLat, dLon) {
				out = append(out, ix.zones[j])
			}
		}
		return out
	}
	kids := ix.levels[lv-1]
	for j := i * zoneFanout; j < min((i+1)*zoneFanout, len(kids)); j++ {
		if kids[j].meets(lat, lon, dLat, dLon) {
			out = ix.visit(lv-1, j, lat, lon, dLat, dLon, out)
		}
	}
	return out
}

// reach returns how near (projected metres) the fix f must be to an exclusion zone for one of its
// alarms to start, given the closing speed's reference fix: within the largest warning distance for a
// breach or warning, and for an approach within the lead time at the fastest closing speed the track
// allows. A signed distance changes no faster than the position, and the projected distance between two
// fixes is at most kmax × Band.Upper of them, so the closing speed is at most that over the span.
func (e *Evaluator) reach(c *compiledOrder, f geo.LatLon, ref *device.Fix, span float64, hasRef bool) float64 {
	m := c.maxWarn
	if !hasRef {
		return m // no closing speed, no approach
	}
	lead := c.lead(e.cfg).Seconds()
	far := lead * maxSpeed // approach is looked for no farther than this
	if !(e.cfg.ApproachMinSpeed > 0) {
		return math.Max(m, far) // a receding or standing offender can count as approaching
	}
	rl := geo.LatLon{Lat: ref.Lat, Lon: ref.Lon}
	v := math.Inf(1)
	if c.region.contains(rl) {
		v = c.region.kmax * c.region.band.Upper(rl, f) / span
	}
	if !(v >= e.cfg.ApproachMinSpeed) {
		return m // no closing speed can reach the minimum
	}
	return math.Max(m, math.Min(far, lead*v))
}

// candidates returns, in zone order, the zones of c that the offender's fix f must be evaluated
// against: those it may be within m of (m from reach), those always evaluated, and those with an open
// alarm of the device whose condition holds (one that does not is left as it is by a fix that cannot
// make it hold). With the fast path off, or f outside the order's region, that is every zone. The
// result is valid until the next call.
//
// limit is m with room for rounding, in projected metres: an exclusion zone without an active alarm that
// is not nearer than limit to the fix changes nothing either. It is +Inf when that does not hold (the
// fast paths off, or f outside the region where the bounds behind m apply).
func (e *Evaluator) candidates(c *compiledOrder, ds *devState, f geo.LatLon, m float64) (cands []int32, limit float64) {
	out := e.cands[:0]
	if e.slow || !c.region.contains(f) || !(m >= 0) {
		for i := range c.zones {
			out = append(out, int32(i))
		}
		e.cands = out
		return out, math.Inf(1)
	}
	m = m*(1+1e-9) + boundSlack
	near := func(i int32) bool {
		for _, d := range c.zones[i].discs {
			if c.region.band.Lower(f, d.centre)-d.radius <= m {
				return true
			}
		}
		return false
	}
	if ix := c.index; ix != nil && m <= maxIndexMargin {
		lat, lon := c.region.relPos(f)
		// 1e-9° (0.1 mm) covers the rounding of the boxes' edges in degrees.
		out = ix.query(lat, lon, m*c.region.latPerM+1e-9, m*c.region.lonPerM+1e-9, out)
		// Keep the zones whose disc passes the finer test.
		k := 0
		for _, i := range out {
			if near(i) {
				out[k] = i
				k++
			}
		}
		out = out[:k]
	} else {
		for i := range c.discs {
			if d := &c.discs[i]; c.region.band.Lower(f, d.centre)-d.radius <= m {
				out = append(out, d.zone)
			}
		}
	}
	out = append(out, c.always...)
	if set := ds.conds; set.activeOf != nil {
		// Many open alarms: only the subjects of the active ones. The map's order does not matter,
		// the zones are sorted below.
		for subject := range set.activeOf {
			if i, ok := c.zoneIdx[subject]; ok {
				out = append(out, i)
			}
		}
	} else if set.anyActive() {
		for _, oc := range set.open {
			if i, ok := c.zoneIdx[oc.subject]; ok && oc.a.Active {
				out = append(out, i)
			}
		}
	}
	if !slices.IsSorted(out) {
		slices.Sort(out)
	}
	out = slices.Compact(out)
	e.cands = out
	return out, m
}
