package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func fleetOf(profile string) Fleet {
	return Fleet{Count: 1, Profile: profile, Centre: LonLat{10.75, 59.91}, RadiusM: 1000, IntervalS: 10, IDPrefix: "f-"}
}

func track(w *Walker, step float64, n int) []Position {
	out := make([]Position, n)
	for i := range out {
		out[i] = w.At(float64(i) * step)
	}
	return out
}

func TestFleetWalkIsDeterministic(t *testing.T) {
	f := fleetOf("walking")
	a := track(NewWalker(7, 3, f), 10, 720)
	b := track(NewWalker(7, 3, f), 10, 720)
	c := track(NewWalker(8, 3, f), 10, 720)
	d := track(NewWalker(7, 4, f), 10, 720)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed and tag, different positions at step %d: %v vs %v", i, a[i], b[i])
		}
	}
	if a[0].At == c[0].At || a[0].At == d[0].At {
		t.Fatal("another seed or another tag starts at the same point")
	}
	// Asking for an earlier time replays the same walk.
	w := NewWalker(7, 3, f)
	w.At(5000)
	if got := w.At(100); got != a[10] {
		t.Fatalf("replay: %v, want %v", got, a[10])
	}
}

func TestFleetProfilesMoveRealistically(t *testing.T) {
	for _, c := range []struct {
		profile        string
		minAvg, maxAvg float64
	}{
		{"walking", 0.6, 2.2},
		{"driving", 5, 30},
	} {
		p := Profiles[c.profile]
		f := fleetOf(c.profile)
		for tag := 0; tag < 5; tag++ {
			tr := track(NewWalker(1, tag, f), 5, 2000) // almost three hours
			var moving, sum float64
			for i := 1; i < len(tr); i++ {
				v := Distance(tr[i-1].At, tr[i].At) / 5
				if v > p.SpeedMax*1.001 {
					t.Fatalf("%s tag %d: %.1f m/s between samples, above %v", c.profile, tag, v, p.SpeedMax)
				}
				if tr[i].Moving {
					moving++
					sum += tr[i].SpeedMps
					if h := tr[i].HeadingDeg; h < 0 || h >= 360 {
						t.Fatalf("heading %v", h)
					}
				}
				if d := Distance(f.Centre, tr[i].At); d > 1.5*f.RadiusM {
					t.Fatalf("%s tag %d wandered %.0f m from the centre (radius %v)", c.profile, tag, d, f.RadiusM)
				}
			}
			if moving < 0.5*float64(len(tr)) || moving > 0.98*float64(len(tr)) {
				t.Errorf("%s tag %d moves in %.0f of %d samples: it should mostly move and sometimes stop", c.profile, tag, moving, len(tr))
			}
			if avg := sum / moving; avg < c.minAvg || avg > c.maxAvg {
				t.Errorf("%s tag %d: average speed %.2f m/s", c.profile, tag, avg)
			}
		}
	}
}

func TestFleetConfig(t *testing.T) {
	s := configured(t, `{"seed": 3, "fleet": {"count": 3, "profile": "driving", "centre": [10.75, 59.91], "radius_m": 500, "id_prefix": "car-"}}`)
	if got := s.Devices(); strings.Join(got, ",") != "car-0001,car-0002,car-0003" {
		t.Fatalf("devices %v", got)
	}
	// Same seed, same positions, through the driver's own observation path.
	s2 := configured(t, `{"seed": 3, "fleet": {"count": 3, "profile": "driving", "centre": [10.75, 59.91], "radius_m": 500, "id_prefix": "car-"}}`)
	start := time.Unix(1700000000, 0)
	for i := 0; i < 3; i++ {
		for _, at := range []time.Duration{0, time.Minute, 7 * time.Minute} {
			a, b := s.observation(i, start, start.Add(at)), s2.observation(i, start, start.Add(at))
			if a.GetLat() != b.GetLat() || a.GetLon() != b.GetLon() || a.GetDevice() != b.GetDevice() {
				t.Fatalf("tag %d at %v: %v vs %v", i, at, a, b)
			}
			if d := Distance(LonLat{10.75, 59.91}, LonLat{a.GetLon(), a.GetLat()}); d > 750 {
				t.Fatalf("tag %d is %.0f m from the centre", i, d)
			}
		}
	}
	// Tags and a fleet together.
	s3 := configured(t, `{"tags": [{"device": "a", "path": [[10, 60]]}], "fleet": {"count": 2, "centre": [10, 60]}}`)
	if got := s3.Devices(); len(got) != 3 || got[0] != "a" || got[1] != DefaultFleetPrefix+"0001" {
		t.Fatalf("devices %v", got)
	}

	bad := []struct{ cfg, field string }{
		{`{"fleet": {"centre": [10, 60]}}`, "fleet.count"},
		{`{"fleet": {"count": 0, "centre": [10, 60]}}`, "fleet.count"},
		{`{"fleet": {"count": 2}}`, "fleet.centre"},
		{`{"fleet": {"count": 2, "centre": [60, 100]}}`, "fleet.centre"},
		{`{"fleet": {"count": 2, "centre": [10, 60], "profile": "flying"}}`, "fleet.profile"},
		{`{"fleet": {"count": 2, "centre": [10, 60], "gap_s": 30, "gap_every_s": 10}}`, "fleet.gap_every_s"},
		{`{"fleet": {"count": 2, "centre": [10, 60], "colour": 1}}`, "fleet.colour"},
		{`{"fleet": [1]}`, "fleet"},
		{`{"tags": [{"device": "sim-fleet-0002", "path": [[10, 60]]}], "fleet": {"count": 2, "centre": [10, 60]}}`, "tags[0].device"},
		{`{}`, "tags"},
	}
	for _, c := range bad {
		_, errs := ParseConfig([]byte(c.cfg))
		found := false
		for _, e := range errs {
			found = found || e.GetField() == c.field
		}
		if !found {
			t.Errorf("%s: errors %v do not name %s", c.cfg, errs, c.field)
		}
	}
}

func TestInGap(t *testing.T) {
	for _, c := range []struct {
		every, gap, phase, at float64
		want                  bool
	}{
		{0, 10, 0, 5, false},
		{100, 10, 0, 5, false}, // never at the start
		{100, 10, 0, 100, true},
		{100, 10, 0, 109.9, true},
		{100, 10, 0, 110, false},
		{100, 10, 30, 70, true},
		{100, 10, 30, 80, false},
		{100, 10, 0, 305, true},
	} {
		if got := InGap(c.every, c.gap, c.phase, c.at); got != c.want {
			t.Errorf("InGap(%v, %v, %v, %v) = %v", c.every, c.gap, c.phase, c.at, got)
		}
	}
}

// A tag that loses coverage keeps its fixes and sends them, with their own fix times, in one late batch.
func TestFleetGapSendsFixesLateInOneBatch(t *testing.T) {
	const interval = 0.02
	s := configured(t, fmt.Sprintf(`{"seed": 1, "fleet": {"count": 1, "centre": [10.75, 59.91], "interval_s": %v,
		"gap_every_s": 0.4, "gap_s": 0.15}}`, interval))
	r := &recorder{got: make(chan struct{}, 1)}
	run(t, s, r)
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := r.waitBatches(t, 1)
		late := -1
		for i, b := range all {
			if len(b) >= 3 {
				late = i
				break
			}
		}
		if late > 0 {
			b, prev := all[late], all[late-1]
			lastBefore := prev[len(prev)-1].GetTime().AsTime()
			for j, o := range b {
				tm := o.GetTime().AsTime()
				if j == 0 && !tm.After(lastBefore) {
					t.Fatalf("late batch starts at %v, not after the last fix sent before the gap %v", tm, lastBefore)
				}
				if j > 0 {
					step := tm.Sub(b[j-1].GetTime().AsTime()).Seconds()
					if step < interval*0.5 || step > 2 {
						t.Fatalf("fix %d of the late batch is %.3f s after the one before: not the original fix times", j, step)
					}
				}
			}
			span := b[len(b)-1].GetTime().AsTime().Sub(b[0].GetTime().AsTime())
			if span < 50*time.Millisecond {
				t.Fatalf("the late batch's fixes span %v; they were taken through the gap", span)
			}
			if got := metricLate.Value(); got < float64(len(b)-1) {
				t.Fatalf("late fixes counted %v, want at least %d", got, len(b)-1)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no late batch among %d batches", len(all))
		}
		r.waitBatches(t, len(all)+1)
	}
}
