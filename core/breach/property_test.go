package breach

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/geo"
	"github.com/skjold-alarm/skjold/core/order"
)

// A random situation somewhere in Norway: an exclusion zone (a convex-ish polygon of 50 m to 2 km)
// with a warning buffer, and a track of fixes.
type situation struct {
	centre   geo.LatLon
	ring     [][]float64 // [lon, lat], closed
	warningM float64
	track    []geo.LatLon
	accs     []float64
}

func drawZone(t *rapid.T) (geo.LatLon, [][]float64, float64) {
	c := geo.LatLon{Lat: rapid.Float64Range(58, 71).Draw(t, "lat"), Lon: rapid.Float64Range(5, 30).Draw(t, "lon")}
	p := geo.NewProjection(c)
	n := rapid.IntRange(3, 12).Draw(t, "vertices")
	r := rapid.Float64Range(50, 2000).Draw(t, "radius")
	var ring [][]float64
	for i := 0; i < n; i++ {
		a := 2 * math.Pi * float64(i) / float64(n)
		k := rapid.Float64Range(0.6, 1).Draw(t, "k")
		ll := p.Inverse(geo.XY{X: r * k * math.Cos(a), Y: r * k * math.Sin(a)})
		ring = append(ring, []float64{ll.Lon, ll.Lat})
	}
	ring = append(ring, ring[0])
	return c, ring, rapid.Float64Range(0, 300).Draw(t, "warning")
}

func situationOrder(s situation) order.Order {
	coords, _ := json.Marshal([][][]float64{s.ring})
	return order.Order{
		ID: "ord-p", Reference: "P", Basis: order.Court, ValidFrom: t0.Add(-time.Hour), ApproachLeadS: 1,
		Offender: order.Party{Device: offender},
		Zones:    []order.Zone{{ID: "z", Kind: order.Exclusion, WarningM: s.warningM, Geometry: order.Geometry{Type: "Polygon", Coordinates: coords}}},
	}
}

func run(t *rapid.T, s situation) []alarm.Change {
	e := New(DefaultConfig())
	if _, err := e.PutOrder(PutOrder{At: t0, Order: situationOrder(s)}); err != nil {
		t.Fatalf("order: %v", err)
	}
	e.Finish()
	var all []alarm.Change
	for i, ll := range s.track {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		lat, lon, acc := ll.Lat, ll.Lon, s.accs[i]
		e.Begin()
		e.Observe(Observations{At: at, Obs: []device.Observation{{Device: offender, Time: at, Lat: &lat, Lon: &lon, AccuracyM: &acc}}})
		all = append(all, e.Finish().Changes...)
	}
	return all
}

// Moving a track away from every zone never raises a breach, whatever the accuracy.
func TestPropertyTrackAwayFromZonesNeverBreaches(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c, ring, warn := drawZone(t)
		p := geo.NewProjection(c)
		shape := geo.ProjectPolygon(p, [][][]float64{ring})
		s := situation{centre: c, ring: ring, warningM: warn}
		n := rapid.IntRange(1, 30).Draw(t, "fixes")
		for i := 0; i < n; i++ {
			// Anywhere up to 5 km away, then pushed out until at least 1 m outside.
			xy := geo.XY{X: rapid.Float64Range(-5000, 5000).Draw(t, "x"), Y: rapid.Float64Range(-5000, 5000).Draw(t, "y")}
			for shape.SignedDistance(xy) < 1 {
				xy.X, xy.Y = xy.X*1.5+1, xy.Y*1.5+1
			}
			s.track = append(s.track, p.Inverse(xy))
			s.accs = append(s.accs, rapid.Float64Range(0, 500).Draw(t, "acc"))
		}
		for _, ch := range run(t, s) {
			if isBreach(ch.Alarm.Kind) {
				t.Fatalf("a track outside the zone raised %s at %+v", ch.Alarm.Kind, ch.Alarm.Position)
			}
		}
	})
}

// Translating a whole scenario — zone and fixes — by a few hundred metres changes no alarm. Fixes within
// a metre of a threshold are left out, where the projection's change of scale could tip them.
func TestPropertyTranslationChangesNoAlarm(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c, ring, warn := drawZone(t)
		dLat := rapid.Float64Range(-0.004, 0.004).Draw(t, "dlat")
		dLon := rapid.Float64Range(-0.008, 0.008).Draw(t, "dlon")
		moved := make([][]float64, len(ring))
		for i, q := range ring {
			moved[i] = []float64{q[0] + dLon, q[1] + dLat}
		}
		c2 := geo.LatLon{Lat: c.Lat + dLat, Lon: c.Lon + dLon}
		shape1 := geo.ProjectPolygon(geo.NewProjection(c), [][][]float64{ring})
		shape2 := geo.ProjectPolygon(geo.NewProjection(c2), [][][]float64{moved})
		p1, p2 := geo.NewProjection(c), geo.NewProjection(c2)
		a := situation{centre: c, ring: ring, warningM: warn}
		b := situation{centre: c2, ring: moved, warningM: warn}
		n := rapid.IntRange(1, 25).Draw(t, "fixes")
		margin := DefaultConfig().HysteresisM
		near := func(d, acc float64) bool {
			for _, th := range []float64{0, warn, margin, warn + margin, -acc, warn - acc} {
				if math.Abs(d-th) < 1 {
					return true
				}
			}
			return false
		}
		for i := 0; i < n; i++ {
			ll := p1.Inverse(geo.XY{X: rapid.Float64Range(-3000, 3000).Draw(t, "x"), Y: rapid.Float64Range(-3000, 3000).Draw(t, "y")})
			ll2 := geo.LatLon{Lat: ll.Lat + dLat, Lon: ll.Lon + dLon}
			acc := rapid.Float64Range(1, 60).Draw(t, "acc")
			d1 := shape1.SignedDistance(p1.Forward(ll))
			d2 := shape2.SignedDistance(p2.Forward(ll2))
			if near(d1, acc) || near(d2, acc) {
				continue
			}
			a.track, a.accs = append(a.track, ll), append(a.accs, acc)
			b.track, b.accs = append(b.track, ll2), append(b.accs, acc)
		}
		ga, gb := run(t, a), run(t, b)
		key := func(chs []alarm.Change) string {
			s := ""
			for _, ch := range chs {
				if ch.Alarm.Kind == alarm.Approach {
					continue
				}
				s += fmt.Sprintf("%s/%s/%s;", ch.Alarm.Kind, ch.Transition.Event, ch.Alarm.Certainty)
			}
			return s
		}
		if key(ga) != key(gb) {
			t.Fatalf("translated by (%.4f, %.4f):\n%s\n%s", dLat, dLon, key(ga), key(gb))
		}
	})
}

// The same entries give the same alarms, byte for byte.
func TestPropertyReplayIsDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c, ring, warn := drawZone(t)
		p := geo.NewProjection(c)
		s := situation{centre: c, ring: ring, warningM: warn}
		for i, n := 0, rapid.IntRange(1, 40).Draw(t, "fixes"); i < n; i++ {
			s.track = append(s.track, p.Inverse(geo.XY{X: rapid.Float64Range(-2500, 2500).Draw(t, "x"), Y: rapid.Float64Range(-2500, 2500).Draw(t, "y")}))
			s.accs = append(s.accs, rapid.Float64Range(1, 200).Draw(t, "acc"))
		}
		a, _ := json.Marshal(run(t, s))
		b, _ := json.Marshal(run(t, s))
		if string(a) != string(b) {
			t.Fatal("two replays differ")
		}
	})
}
