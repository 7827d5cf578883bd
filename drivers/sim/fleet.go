package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Fleet is a random fleet: Count tags that wander around Centre, each on its own seeded random walk.
type Fleet struct {
	Count     int
	Profile   string // "walking" or "driving"
	Centre    LonLat
	RadiusM   float64
	IntervalS float64
	AccuracyM float64
	NoiseM    float64
	// GapEveryS and GapS: every GapEveryS seconds (each tag at its own phase) the tag loses coverage for
	// GapS seconds; its fixes are kept and sent late, in one batch, when coverage returns. 0: no gaps.
	GapEveryS float64
	GapS      float64
	IDPrefix  string
}

// Fleet defaults.
const (
	DefaultFleetRadiusM = 1000
	DefaultFleetPrefix  = "sim-fleet-"
	MaxFleetCount       = 10000
)

var fleetAttrs = []string{"count", "profile", "centre", "radius_m", "interval_s", "accuracy_m", "noise_m", "gap_every_s", "gap_s", "id_prefix"}

// Profile is how a kind of tag moves: legs of a random heading and speed, sometimes a stop.
type Profile struct {
	SpeedMean, SpeedSD, SpeedMin, SpeedMax float64 // m/s, of a leg
	LegMinS, LegMaxS                       float64 // duration of a leg
	StopP                                  float64 // probability that a leg is a stop
	StopMinS, StopMaxS                     float64
	TurnSDDeg                              float64 // standard deviation of the heading change between legs
}

// Profiles are the movement profiles a fleet can use.
var Profiles = map[string]Profile{
	// A person on foot: about 1.3 m/s, a new direction every half minute to two minutes, now and then
	// standing still for a while.
	"walking": {SpeedMean: 1.3, SpeedSD: 0.25, SpeedMin: 0.6, SpeedMax: 2.2, LegMinS: 20, LegMaxS: 120,
		StopP: 0.2, StopMinS: 10, StopMaxS: 90, TurnSDDeg: 50},
	// A car in and around town: about 50 km/h, 18–110 km/h, stops at lights and junctions.
	"driving": {SpeedMean: 14, SpeedSD: 5, SpeedMin: 5, SpeedMax: 30, LegMinS: 10, LegMaxS: 60,
		StopP: 0.15, StopMinS: 10, StopMaxS: 45, TurnSDDeg: 60},
}

// leg is one stretch of a random walk: from From, at Speed along Heading, for Dur seconds from Start.
type leg struct {
	start, dur     float64
	from           LonLat
	heading, speed float64
}

// Walker is one fleet tag's random walk. Its position is a function of the seed, the tag's index and the
// elapsed time only: the same config gives the same positions at the same elapsed times.
type Walker struct {
	seed    uint64
	index   int
	profile Profile
	centre  LonLat
	radius  float64
	start   LonLat

	rng *rand.Rand
	cur leg
}

// NewWalker starts tag index of a fleet at a random point within the fleet's radius.
func NewWalker(seed uint64, index int, f Fleet) *Walker {
	w := &Walker{seed: seed, index: index, profile: Profiles[f.Profile], centre: f.Centre, radius: f.RadiusM}
	rng := rand.New(rand.NewPCG(seed, 1<<32|uint64(index)))
	// Uniform over the disc: the distance from the centre goes with the square root.
	d := f.RadiusM * math.Sqrt(rng.Float64())
	b := rng.Float64() * 360
	w.start = Destination(f.Centre, b, d)
	w.reset()
	return w
}

func (w *Walker) reset() {
	w.rng = rand.New(rand.NewPCG(w.seed, 2<<32|uint64(w.index)))
	w.cur = leg{from: w.start, heading: w.rng.Float64() * 360}
	w.cur = w.next(w.cur, 0)
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// next draws the leg that starts at time at, after prev.
func (w *Walker) next(prev leg, at float64) leg {
	p := w.profile
	from := prev.from
	if prev.dur > 0 {
		from = Destination(prev.from, prev.heading, prev.speed*prev.dur)
	}
	l := leg{start: at, from: from}
	if w.rng.Float64() < p.StopP {
		l.dur = p.StopMinS + w.rng.Float64()*(p.StopMaxS-p.StopMinS)
		l.heading = prev.heading
		return l
	}
	l.dur = p.LegMinS + w.rng.Float64()*(p.LegMaxS-p.LegMinS)
	l.speed = clamp(p.SpeedMean+w.rng.NormFloat64()*p.SpeedSD, p.SpeedMin, p.SpeedMax)
	l.heading = normDeg(prev.heading + w.rng.NormFloat64()*p.TurnSDDeg)
	// Stay within the radius: a leg that would end outside it heads back towards the centre instead.
	if Distance(w.centre, Destination(from, l.heading, l.speed*l.dur)) > w.radius {
		l.heading = normDeg(Bearing(from, w.centre) + w.rng.NormFloat64()*20)
	}
	return l
}

// At returns where the tag is elapsed seconds after the start, its speed and heading, and whether it
// moves. Calls with growing times are cheap; an earlier time replays the walk from the start.
func (w *Walker) At(elapsed float64) Position {
	if elapsed < w.cur.start {
		w.reset()
	}
	for elapsed >= w.cur.start+w.cur.dur {
		w.cur = w.next(w.cur, w.cur.start+w.cur.dur)
	}
	l := w.cur
	p := Destination(l.from, l.heading, l.speed*(elapsed-l.start))
	if l.speed == 0 {
		return Position{At: p}
	}
	return Position{At: p, SpeedMps: l.speed, HeadingDeg: l.heading, Moving: true}
}

// Destination is the point dist metres from p along the initial bearing (degrees), on the sphere.
func Destination(p LonLat, bearingDeg, dist float64) LonLat {
	if dist == 0 {
		return p
	}
	δ := dist / EarthRadiusM
	θ := rad(bearingDeg)
	φ1, λ1 := rad(p.Lat()), rad(p.Lon())
	φ2 := math.Asin(math.Sin(φ1)*math.Cos(δ) + math.Cos(φ1)*math.Sin(δ)*math.Cos(θ))
	λ2 := λ1 + math.Atan2(math.Sin(θ)*math.Sin(δ)*math.Cos(φ1), math.Cos(δ)-math.Sin(φ1)*math.Sin(φ2))
	lon := math.Mod(deg(λ2)+540, 360) - 180
	return LonLat{lon, deg(φ2)}
}

// gapPhase is where in its GapEveryS cycle tag index starts, so that a fleet's tags do not all lose
// coverage at once.
func gapPhase(seed uint64, index int, every float64) float64 {
	if every <= 0 {
		return 0
	}
	return rand.New(rand.NewPCG(seed, 3<<32|uint64(index))).Float64() * every
}

// InGap reports whether a tag with this gap schedule and phase has no coverage elapsed seconds after
// the start. The first gap begins one full cycle in (never at the start).
func InGap(every, gap, phase, elapsed float64) bool {
	if every <= 0 || gap <= 0 {
		return false
	}
	t := elapsed + phase
	if t < every {
		return false
	}
	return math.Mod(t, every) < gap
}

// parseFleet checks a fleet object and fills defaults.
func parseFleet(at string, raw json.RawMessage, e *errs) (Fleet, bool) {
	f := Fleet{Profile: "walking", RadiusM: DefaultFleetRadiusM, IntervalS: DefaultIntervalS,
		AccuracyM: DefaultAccuracyM, IDPrefix: DefaultFleetPrefix}
	m, ok := object(raw)
	if !ok {
		e.add(at, "must be an object with %s", strings.Join(fleetAttrs, ", "))
		return f, false
	}
	before := len(e.list)
	num := func(key string, min, max float64, dst *float64) {
		v, present := m[key]
		if !present {
			return
		}
		n, ok := number(v)
		switch {
		case !ok:
			e.add(at+"."+key, "must be a number")
		case n < min || n > max:
			e.add(at+"."+key, "%v is out of range [%v, %v]", n, min, max)
		default:
			*dst = n
		}
	}
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "count":
			n, ok := number(v)
			if !ok || n != math.Trunc(n) || n < 1 || n > MaxFleetCount {
				e.add(at+".count", "must be a whole number from 1 to %d", MaxFleetCount)
			} else {
				f.Count = int(n)
			}
		case "profile":
			if err := json.Unmarshal(v, &f.Profile); err != nil {
				e.add(at+".profile", `must be "walking" or "driving"`)
			} else if _, ok := Profiles[f.Profile]; !ok {
				e.add(at+".profile", `%q is not "walking" or "driving"`, f.Profile)
			}
		case "centre":
			pts := parsePath(at+".centre", json.RawMessage("["+string(v)+"]"), &errs{})
			if len(pts) != 1 {
				e.add(at+".centre", "must be [lon, lat]: two numbers in range")
			} else {
				f.Centre = pts[0]
			}
		case "radius_m":
			num(k, 1, 100000, &f.RadiusM)
		case "interval_s":
			num(k, MinIntervalS, 86400, &f.IntervalS)
		case "accuracy_m":
			num(k, 0, 100000, &f.AccuracyM)
		case "noise_m":
			num(k, 0, 1000, &f.NoiseM)
		case "gap_every_s":
			num(k, 0, 7*86400, &f.GapEveryS)
		case "gap_s":
			num(k, 0, 86400, &f.GapS)
		case "id_prefix":
			if err := json.Unmarshal(v, &f.IDPrefix); err != nil {
				e.add(at+".id_prefix", "must be a string")
			} else if len(f.IDPrefix) > maxDeviceLen-8 {
				e.add(at+".id_prefix", "is longer than %d bytes", maxDeviceLen-8)
			}
		default:
			e.add(at+"."+k, "unknown attribute (known: %s)", strings.Join(fleetAttrs, ", "))
		}
	}
	if _, ok := m["count"]; !ok {
		e.add(at+".count", "is required")
	}
	if _, ok := m["centre"]; !ok {
		e.add(at+".centre", "is required: [lon, lat]")
	}
	if f.GapS > 0 && f.GapEveryS <= f.GapS {
		e.add(at+".gap_every_s", "must be more than gap_s (%v) when gap_s is set", f.GapS)
	}
	return f, len(e.list) == before
}

// FleetDevice is the device id of tag i (from 0) of a fleet.
func FleetDevice(f Fleet, i int) string { return fmt.Sprintf("%s%04d", f.IDPrefix, i+1) }
