package geo

import (
	"cmp"
	"math"
	"slices"
)

// Edge-level index of a Polygon: a static R-tree over the edges for the
// nearest-edge distance and horizontal bands for the crossing parity. Both
// answer exactly what the linear scan (ringDistParity over every ring)
// answers, bit for bit: they evaluate the same segDist2 and crosses on the
// same edges and skip an edge only when a bound with a safety margin proves
// that it cannot change the result. See DESIGN.md, "Edge index".

const (
	// treeFanout is the number of edges per leaf and children per node.
	treeFanout = 8
	// minIndexedEdges is the smallest polygon (in edges) that NewPolygon
	// builds an edge index for; smaller ones are scanned.
	minIndexedEdges = 32
	// bandCap bounds the band structure to bandCap entries per edge.
	bandCap = 8
	// marginRel is the relative safety margin of every pruning bound,
	// 2^-36 ≈ 1.5e-11: far above the few units of roundoff (2^-53) in
	// segDist2 and crossX, far below anything that costs work.
	marginRel = 0x1p-36
)

// seg is an edge from a to b, in ring order.
type seg struct{ a, b XY }

// edgeIndex is the edge-level acceleration structure of a polygon. It is
// immutable once built.
type edgeIndex struct {
	// segs are the edges with finite coordinates, in Hilbert order of
	// their midpoints; a one-position ring is the edge from it to itself.
	segs []seg
	// loose are the edges with a NaN or infinite coordinate (only from
	// unvalidated input), checked on every query.
	loose []seg
	// levels[0][i] bounds segs[8i:8i+8]; levels[l][i] bounds
	// levels[l-1][8i:8i+8]; the last level is the root alone.
	levels [][]Rect
	// slack is marginRel times the longest edge: the absolute part of the
	// margin of the nearest-edge search.
	slack float64

	// Crossing bands: band k is ys[k] <= y < ys[k+1]. part lists (by
	// index into segs) the non-horizontal edges that span part of band k,
	// full those that span all of it, sorted by lo.
	ys        []float64
	partStart []int32 // band k: part[partStart[k]:partStart[k+1]]
	part      []int32
	fullStart []int32 // band k: full[fullStart[k]:fullStart[k+1]]
	full      []fullEdge
}

// fullEdge is an edge that spans a whole band. Within the band its crossing
// abscissa crossX is > lo; pm is the largest upper bound of crossX over this
// and all earlier entries of the band.
type fullEdge struct {
	lo, pm float64
	e      int32
}

// crosses reports whether the ray from p towards +X crosses the edge s, by
// the half-open rule of the crossing-number test.
func crosses(s seg, p XY) bool {
	return (s.a.Y > p.Y) != (s.b.Y > p.Y) && p.X < crossX(s, p.Y)
}

// crossX returns the abscissa where the line through s meets the horizontal
// line at y. The conversion keeps the compiler from fusing the multiply and
// add, so the result is the same on every architecture.
func crossX(s seg, y float64) float64 {
	return s.a.X + float64((y-s.a.Y)/(s.b.Y-s.a.Y)*(s.b.X-s.a.X))
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// newEdgeIndex builds the index of the edges of rings, or returns nil when
// there are fewer than minEdges of them.
func newEdgeIndex(rings []Ring, minEdges int) *edgeIndex {
	n := 0
	for _, r := range rings {
		n += max(len(r)-1, min(len(r), 1))
	}
	if n < minEdges || n == 0 || n > math.MaxInt32 {
		return nil
	}
	ix := &edgeIndex{}
	segs := make([]seg, 0, n)
	add := func(s seg) {
		if finite(s.a.X) && finite(s.a.Y) && finite(s.b.X) && finite(s.b.Y) {
			segs = append(segs, s)
		} else {
			ix.loose = append(ix.loose, s)
		}
	}
	for _, r := range rings {
		if len(r) == 1 {
			add(seg{r[0], r[0]})
		}
		for i := 1; i < len(r); i++ {
			add(seg{r[i-1], r[i]})
		}
	}
	ix.segs = hilbertSort(segs)
	ix.buildTree()
	ix.buildBands()
	return ix
}

// hilbertSort orders segs by the Hilbert index of their midpoints on a
// 65536 × 65536 grid over their bounds, ties by ring order.
func hilbertSort(segs []seg) []seg {
	b := EmptyRect()
	for _, s := range segs {
		b.extend(s.a)
		b.extend(s.b)
	}
	type key struct {
		h uint64
		i int32
	}
	keys := make([]key, len(segs))
	w, h := b.Max.X-b.Min.X, b.Max.Y-b.Min.Y
	for i, s := range segs {
		mx, my := s.a.X/2+s.b.X/2, s.a.Y/2+s.b.Y/2
		var gx, gy uint32
		if w > 0 {
			gx = uint32(math.Min(65535, math.Max(0, (mx-b.Min.X)/w*65535)))
		}
		if h > 0 {
			gy = uint32(math.Min(65535, math.Max(0, (my-b.Min.Y)/h*65535)))
		}
		keys[i] = key{hilbert(gx, gy), int32(i)}
	}
	slices.SortFunc(keys, func(x, y key) int {
		if c := cmp.Compare(x.h, y.h); c != 0 {
			return c
		}
		return cmp.Compare(x.i, y.i)
	})
	out := make([]seg, len(segs))
	for i, k := range keys {
		out[i] = segs[k.i]
	}
	return out
}

// hilbert returns the distance of (x, y) along the Hilbert curve filling
// the 65536 × 65536 grid.
func hilbert(x, y uint32) uint64 {
	const n = 1 << 16
	var d uint64
	for s := uint32(n / 2); s > 0; s /= 2 {
		var rx, ry uint32
		if x&s != 0 {
			rx = 1
		}
		if y&s != 0 {
			ry = 1
		}
		d += uint64(s) * uint64(s) * uint64((3*rx)^ry)
		if ry == 0 {
			if rx == 1 {
				x, y = n-1-x, n-1-y
			}
			x, y = y, x
		}
	}
	return d
}

// buildTree packs the R-tree levels bottom-up and sets slack.
func (ix *edgeIndex) buildTree() {
	if len(ix.segs) == 0 {
		return
	}
	longest := 0.0
	leaves := make([]Rect, (len(ix.segs)+treeFanout-1)/treeFanout)
	for i := range leaves {
		r := EmptyRect()
		for _, s := range ix.segs[i*treeFanout : min((i+1)*treeFanout, len(ix.segs))] {
			r.extend(s.a)
			r.extend(s.b)
			longest = math.Max(longest, math.Hypot(s.b.X-s.a.X, s.b.Y-s.a.Y))
		}
		leaves[i] = r
	}
	ix.slack = marginRel * longest
	ix.levels = [][]Rect{leaves}
	for lv := leaves; len(lv) > 1; {
		up := make([]Rect, (len(lv)+treeFanout-1)/treeFanout)
		for i := range up {
			r := EmptyRect()
			for _, c := range lv[i*treeFanout : min((i+1)*treeFanout, len(lv))] {
				r = r.Union(c)
			}
			up[i] = r
		}
		ix.levels = append(ix.levels, up)
		lv = up
	}
}

// rectDist2 returns the squared distance from p to r (0 inside).
func rectDist2(r Rect, p XY) float64 {
	var dx, dy float64
	if p.X < r.Min.X {
		dx = r.Min.X - p.X
	} else if p.X > r.Max.X {
		dx = p.X - r.Max.X
	}
	if p.Y < r.Min.Y {
		dy = r.Min.Y - p.Y
	} else if p.Y > r.Max.Y {
		dy = p.Y - r.Max.Y
	}
	return dx*dx + dy*dy
}

// nearState is the state of one nearest-edge search.
type nearState struct {
	p     XY
	best2 float64 // smallest segDist2 so far (or the initial limit)
	thr2  float64 // boxes with rectDist2 > thr2 hold no edge below best2
}

// threshold returns thr2 for best2. An edge whose segDist2 evaluates below
// best2 is at true distance < d(1+4u) + 6u(d+L), with d = sqrt(best2), L its
// length and u = 2^-53 (rounding in the differences, the cross product and
// the division of segDist2), so its box is nearer than that too; marginRel
// covers this with a factor of more than 1000 to spare, including the
// rounding in rectDist2 and here.
func (ix *edgeIndex) threshold(best2 float64) float64 {
	t := math.Sqrt(best2)*(1+marginRel) + ix.slack
	return t * t
}

// nearest2 returns min(best2, segDist2 over every edge), the squared
// distance from p to the nearest edge unless best2 is smaller.
func (ix *edgeIndex) nearest2(p XY, best2 float64) float64 {
	for _, s := range ix.loose {
		if d := segDist2(s.a, s.b, p); d < best2 {
			best2 = d
		}
	}
	top := len(ix.levels) - 1
	if top < 0 {
		return best2
	}
	st := nearState{p: p, best2: best2, thr2: ix.threshold(best2)}
	if !(rectDist2(ix.levels[top][0], p) > st.thr2) {
		ix.visit(&st, top, 0)
	}
	return st.best2
}

// visit searches node i of level lv, children nearest first, skipping those
// whose box is beyond the threshold.
func (ix *edgeIndex) visit(st *nearState, lv, i int) {
	if lv == 0 {
		improved := false
		for _, s := range ix.segs[i*treeFanout : min((i+1)*treeFanout, len(ix.segs))] {
			if d := segDist2(s.a, s.b, st.p); d < st.best2 {
				st.best2 = d
				improved = true
			}
		}
		if improved {
			st.thr2 = ix.threshold(st.best2)
		}
		return
	}
	kids := ix.levels[lv-1]
	var order [treeFanout]struct {
		d float64
		i int
	}
	n := 0
	for j := i * treeFanout; j < min((i+1)*treeFanout, len(kids)); j++ {
		d := rectDist2(kids[j], st.p)
		if d > st.thr2 {
			continue
		}
		k := n
		for k > 0 && order[k-1].d > d {
			order[k] = order[k-1]
			k--
		}
		order[k].d, order[k].i = d, j
		n++
	}
	for _, c := range order[:n] {
		if c.d > st.thr2 {
			break // the rest are farther still
		}
		ix.visit(st, lv-1, c.i)
	}
}

// buildBands builds the crossing bands over the non-horizontal edges. The
// band boundaries are every m-th distinct endpoint ordinate, m = 4, 8, ...,
// the smallest for which the bands hold at most bandCap entries per edge
// (edges spanning many bands, as in a comb, would otherwise be listed in
// each).
func (ix *edgeIndex) buildBands() {
	var ids []int32
	var vals []float64
	for i, s := range ix.segs {
		if s.a.Y != s.b.Y {
			ids = append(ids, int32(i))
			vals = append(vals, s.a.Y, s.b.Y)
		}
	}
	if len(ids) == 0 {
		return
	}
	slices.Sort(vals)
	vals = slices.Compact(vals)
	limit := bandCap * len(ids)
	var ys []float64
	for m := 4; ; m *= 2 {
		ys = ys[:0]
		for j := 0; j < len(vals); j += m {
			ys = append(ys, vals[j])
		}
		if ys[len(ys)-1] != vals[len(vals)-1] {
			ys = append(ys, vals[len(vals)-1])
		}
		if len(ys) <= 2 || ix.bandEntries(ids, ys, limit) <= limit {
			break
		}
	}
	ix.ys = slices.Clip(ys)
	nb := len(ys) - 1

	// Two passes: count per band, then fill.
	partN := make([]int32, nb+1)
	fullN := make([]int32, nb+1)
	ix.eachBand(ids, ys, func(e int32, k int, full bool) {
		if full {
			fullN[k+1]++
		} else {
			partN[k+1]++
		}
	})
	for k := 1; k <= nb; k++ {
		partN[k] += partN[k-1]
		fullN[k] += fullN[k-1]
	}
	ix.partStart, ix.fullStart = partN, fullN
	ix.part = make([]int32, partN[nb])
	ix.full = make([]fullEdge, fullN[nb])
	pn := slices.Clone(partN[:nb])
	fn := slices.Clone(fullN[:nb])
	ix.eachBand(ids, ys, func(e int32, k int, full bool) {
		if !full {
			ix.part[pn[k]] = e
			pn[k]++
			return
		}
		s := ix.segs[e]
		x0, x1 := crossX(s, ys[k]), crossX(s, ys[k+1])
		m := marginRel * (math.Abs(s.a.X) + math.Abs(s.b.X))
		// pm holds the edge's own upper bound until the prefix maximum.
		ix.full[fn[k]] = fullEdge{lo: math.Min(x0, x1) - m, pm: math.Max(x0, x1) + m, e: e}
		fn[k]++
	})
	for k := 0; k < nb; k++ {
		lo, hi := fullN[k], fullN[k+1]
		band := ix.full[lo:hi]
		slices.SortFunc(band, func(x, y fullEdge) int {
			if c := cmp.Compare(x.lo, y.lo); c != 0 {
				return c
			}
			return cmp.Compare(x.e, y.e)
		})
		for j := 1; j < len(band); j++ {
			band[j].pm = math.Max(band[j].pm, band[j-1].pm)
		}
	}
}

// bandRange returns the bands k0..k1 that the edge s (non-horizontal) spans
// part of: those with ys[k] < max(a.Y, b.Y) and ys[k+1] > min(a.Y, b.Y).
func bandRange(s seg, ys []float64) (k0, k1 int) {
	y0, y1 := math.Min(s.a.Y, s.b.Y), math.Max(s.a.Y, s.b.Y)
	// k0: the last k with ys[k] <= y0; k1: the last k with ys[k] < y1.
	k0, _ = slices.BinarySearch(ys, y0)
	if k0 == len(ys) || ys[k0] != y0 {
		k0--
	}
	k1, _ = slices.BinarySearch(ys, y1)
	k1--
	return max(k0, 0), min(k1, len(ys)-2)
}

// eachBand calls f for every band that each edge of ids spans part of, with
// full set when it spans the whole band.
func (ix *edgeIndex) eachBand(ids []int32, ys []float64, f func(e int32, k int, full bool)) {
	for _, e := range ids {
		s := ix.segs[e]
		y0, y1 := math.Min(s.a.Y, s.b.Y), math.Max(s.a.Y, s.b.Y)
		k0, k1 := bandRange(s, ys)
		for k := k0; k <= k1; k++ {
			f(e, k, ys[k] >= y0 && ys[k+1] <= y1)
		}
	}
}

// bandEntries counts the band entries for boundaries ys, stopping early
// above limit.
func (ix *edgeIndex) bandEntries(ids []int32, ys []float64, limit int) int {
	total := 0
	for _, e := range ids {
		k0, k1 := bandRange(ix.segs[e], ys)
		total += k1 - k0 + 1
		if total > limit {
			break
		}
	}
	return total
}

// odd returns the parity of the number of edges crossed by the ray from p
// towards +X.
func (ix *edgeIndex) odd(p XY) bool {
	odd := false
	for _, s := range ix.loose {
		if crosses(s, p) {
			odd = !odd
		}
	}
	ys := ix.ys
	// Only a band can hold an edge with min(a.Y, b.Y) <= p.Y < max.
	if len(ys) < 2 || !(p.Y >= ys[0] && p.Y < ys[len(ys)-1]) {
		return odd
	}
	lo, hi := 0, len(ys)-1 // ys[lo] <= p.Y < ys[hi]
	for hi-lo > 1 {
		if m := int(uint(lo+hi) >> 1); ys[m] <= p.Y {
			lo = m
		} else {
			hi = m
		}
	}
	for _, e := range ix.part[ix.partStart[lo]:ix.partStart[lo+1]] {
		if crosses(ix.segs[e], p) {
			odd = !odd
		}
	}
	full := ix.full[ix.fullStart[lo]:ix.fullStart[lo+1]]
	// Every full edge spans p.Y. Those from j1 on (lo > p.X) are crossed,
	// those before j0 (pm <= p.X) are not; the few between are evaluated.
	j1 := searchFull(full, func(f *fullEdge) bool { return f.lo > p.X })
	j0 := searchFull(full[:j1], func(f *fullEdge) bool { return f.pm > p.X })
	if (len(full)-j1)&1 == 1 {
		odd = !odd
	}
	for _, f := range full[j0:j1] {
		if crosses(ix.segs[f.e], p) {
			odd = !odd
		}
	}
	return odd
}

// searchFull returns the first index at which the monotone predicate ok
// holds, or len(full).
func searchFull(full []fullEdge, ok func(*fullEdge) bool) int {
	lo, hi := 0, len(full)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ok(&full[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}
