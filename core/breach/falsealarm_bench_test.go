package breach

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/geo"
	"github.com/skjold-alarm/skjold/core/order"
)

// gpsModel is how a simulated tag's fixes relate to where it really is.
type gpsModel struct {
	accMin, accMax float64 // reported accuracy (95 % radius), drawn per fix
	outlier        float64 // share of multipath fixes: off by 3–6 × the accuracy, reported as usual
	gapEvery       float64 // chance per fix that coverage drops for 10–30 minutes
}

// tagDay simulates one tag for one day at one report a minute and returns what the evaluator raised.
// entering tags walk from 300 m out to a random depth, stay ten minutes and leave, twice a day; the
// others live 30–300 m outside the zone.
type dayResult struct {
	falseCertain, falseProbable int
	entries, missed             int
}

func tagDay(rng *rand.Rand, m gpsModel, entering bool) dayResult {
	centre := geo.LatLon{Lat: 59 + rng.Float64()*10, Lon: 6 + rng.Float64()*20}
	p := geo.NewProjection(centre)
	const half = 50.0 // a 100 m × 100 m home
	var ring [][]float64
	for _, c := range [][2]float64{{-half, -half}, {half, -half}, {half, half}, {-half, half}, {-half, -half}} {
		ll := p.Inverse(geo.XY{X: c[0], Y: c[1]})
		ring = append(ring, []float64{ll.Lon, ll.Lat})
	}
	coords, _ := json.Marshal([][][]float64{ring})
	e := New(DefaultConfig())
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	o := order.Order{ID: "o", Reference: "r", Basis: order.Court, ValidFrom: day.Add(-time.Hour),
		Offender: order.Party{Device: "t"},
		Zones:    []order.Zone{{ID: "home", Kind: order.Exclusion, WarningM: 100, Geometry: order.Geometry{Type: "Polygon", Coordinates: coords}}}}
	e.PutOrder(PutOrder{At: day, Order: o})
	e.Finish()

	// The true path: outside tags wander on a ring 30–300 m from the edge; entering tags also make two
	// visits of ten minutes to a random depth.
	angle := rng.Float64() * 2 * math.Pi
	dist := 30 + rng.Float64()*270
	type visit struct {
		start, end int
		depth      float64
	}
	var visits []visit
	if entering {
		for v := 0; v < 2; v++ {
			s := 200 + v*600 + rng.IntN(300)
			visits = append(visits, visit{s, s + 10, 5 + rng.Float64()*40})
		}
	}
	var res dayResult
	gap := 0
	inVisit := func(i int) *visit {
		for k := range visits {
			if i >= visits[k].start-5 && i <= visits[k].end+5 {
				return &visits[k]
			}
		}
		return nil
	}
	raisedIn := make([]bool, len(visits))
	seenIn := make([]int, len(visits)) // fixes reported while the tag was inside
	for i := 0; i < 1440; i++ {
		at := day.Add(time.Duration(i) * time.Minute)
		angle += (rng.Float64() - 0.5) * 0.1
		dist = math.Max(30, math.Min(300, dist+(rng.Float64()-0.5)*10))
		d := dist
		if v := inVisit(i); v != nil {
			switch {
			case i < v.start:
				d = float64(v.start-i) * 60 // walking in at 1 m/s
			case i <= v.end:
				d = -v.depth
			default:
				d = float64(i-v.end) * 60
			}
		}
		// A point at signed distance d from the square's edge, in the direction of angle.
		r := half + d
		if d < 0 {
			r = half + d // inside: depth from the edge toward the centre
		}
		truth := geo.XY{X: r * math.Cos(angle), Y: r * math.Sin(angle)}
		if math.Abs(math.Cos(angle)) < math.Abs(math.Sin(angle)) {
			truth = geo.XY{X: r * math.Cos(angle) / math.Abs(math.Sin(angle)), Y: r * math.Copysign(1, math.Sin(angle))}
		} else {
			truth = geo.XY{X: r * math.Copysign(1, math.Cos(angle)), Y: r * math.Sin(angle) / math.Abs(math.Cos(angle))}
		}
		// An operator resolves the alarms of a visit a few minutes after it.
		for _, v := range visits {
			if i == v.end+5 {
				for _, a := range e.Alarms(true, "") {
					e.Begin()
					e.Resolve(ResolveAlarm{At: at, By: "operator", ID: a.ID})
					e.Finish()
				}
			}
		}
		if gap > 0 {
			gap--
			continue
		}
		if rng.Float64() < m.gapEvery {
			gap = 10 + rng.IntN(20)
			continue
		}
		acc := m.accMin + rng.Float64()*(m.accMax-m.accMin)
		sigma := acc / 2.45
		off := geo.XY{X: rng.NormFloat64() * sigma, Y: rng.NormFloat64() * sigma}
		if rng.Float64() < m.outlier {
			a, k := rng.Float64()*2*math.Pi, acc*(3+3*rng.Float64())
			off = geo.XY{X: k * math.Cos(a), Y: k * math.Sin(a)}
		}
		ll := p.Inverse(geo.XY{X: truth.X + off.X, Y: truth.Y + off.Y})
		lat, lon := ll.Lat, ll.Lon
		for k, v := range visits {
			if i >= v.start && i <= v.end {
				seenIn[k]++
			}
		}
		e.Begin()
		e.Observe(Observations{At: at, Obs: []device.Observation{{Device: "t", Time: at, Lat: &lat, Lon: &lon, AccuracyM: &acc}}})
		for _, ch := range e.Finish().Changes {
			if ch.Alarm.Kind != alarm.Breach {
				continue
			}
			raised := ch.Transition.Event == alarm.EventRaised || ch.Transition.Event == alarm.EventUpdated
			if !raised {
				continue
			}
			if v := inVisit(i); v != nil {
				for k := range visits {
					if &visits[k] == v {
						raisedIn[k] = true
					}
				}
				continue
			}
			if ch.Transition.Note == "now certain" || ch.Alarm.Certainty == alarm.Certain {
				if debugFalse {
					println("false certain", i, ch.Transition.Event, ch.Transition.Note, *ch.Alarm.DistanceM, ch.Alarm.Position.AccuracyM, entering, d)
				}
				res.falseCertain++
			} else {
				res.falseProbable++
			}
		}
	}
	for k, v := range visits {
		res.entries++
		// Missed: at least two fixes inside (one may be an outlier either way) and nothing raised.
		if seenIn[k] >= 2 && !raisedIn[k] && v.depth > 2*m.accMax {
			if debugFalse {
				println("missed", v.start, v.end, v.depth, seenIn[k])
			}
			res.missed++
		}
	}
	return res
}

var debugFalse = false

// BenchmarkFalseAlarms reports, per simulated tag-day, breaches raised while a tag was not in the zone
// (certain and probable separately), and entries deeper than twice the accuracy that raised nothing.
// Half the tags live 30–300 m outside the zone all day; the other half also enter it twice.
func BenchmarkFalseAlarms(b *testing.B) {
	for _, c := range []struct {
		name string
		m    gpsModel
	}{
		{"acc10m", gpsModel{accMin: 10, accMax: 10, outlier: 0.01, gapEvery: 0.002}},
		{"acc5-30m", gpsModel{accMin: 5, accMax: 30, outlier: 0.01, gapEvery: 0.002}},
	} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(7, 11))
			var total dayResult
			for i := 0; i < b.N; i++ {
				r := tagDay(rng, c.m, i%2 == 1)
				total.falseCertain += r.falseCertain
				total.falseProbable += r.falseProbable
				total.entries += r.entries
				total.missed += r.missed
			}
			days := b.N
			b.ReportMetric(float64(total.falseCertain)/float64(days), "false_certain/tag-day")
			b.ReportMetric(float64(total.falseProbable)/float64(days), "false_probable/tag-day")
			b.ReportMetric(float64(total.missed), "missed_entries")
			b.ReportMetric(float64(total.entries), "entries")
		})
	}
}
