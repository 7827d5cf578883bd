package sim

import (
	"math"
	"testing"
	"time"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestDistance(t *testing.T) {
	oneDegree := math.Pi / 180 * EarthRadiusM // 111 195.08 m
	cases := []struct {
		name string
		a, b LonLat
		want float64
		tol  float64
	}{
		{"same point", LonLat{10.75, 59.91}, LonLat{10.75, 59.91}, 0, 1e-9},
		{"one degree of latitude", LonLat{10, 59}, LonLat{10, 60}, oneDegree, 1e-6},
		{"one degree of longitude at the equator", LonLat{0, 0}, LonLat{1, 0}, oneDegree, 1e-6},
		{"one degree of longitude at 60 N is half", LonLat{10, 60}, LonLat{11, 60}, oneDegree / 2, 30},
		// Oslo S to Oslo City Hall, about 1.1 km.
		{"Oslo S to the City Hall", LonLat{10.7522, 59.9111}, LonLat{10.7336, 59.9119}, 1041, 5},
		{"antipodes", LonLat{0, 0}, LonLat{180, 0}, math.Pi * EarthRadiusM, 1e-3},
	}
	for _, c := range cases {
		if got := Distance(c.a, c.b); !near(got, c.want, c.tol) {
			t.Errorf("%s: Distance = %.3f, want %.3f ± %v", c.name, got, c.want, c.tol)
		}
		if got, back := Distance(c.a, c.b), Distance(c.b, c.a); !near(got, back, 1e-6) {
			t.Errorf("%s: not symmetric: %v vs %v", c.name, got, back)
		}
	}
}

func TestBearing(t *testing.T) {
	cases := []struct {
		name string
		a, b LonLat
		want float64
	}{
		{"north", LonLat{10, 59}, LonLat{10, 60}, 0},
		{"south", LonLat{10, 60}, LonLat{10, 59}, 180},
		{"east at the equator", LonLat{0, 0}, LonLat{1, 0}, 90},
		{"west at the equator", LonLat{1, 0}, LonLat{0, 0}, 270},
		{"north-east at the equator", LonLat{0, 0}, LonLat{0.001, 0.001}, 45},
	}
	for _, c := range cases {
		got := Bearing(c.a, c.b)
		if !near(got, c.want, 1e-3) {
			t.Errorf("%s: Bearing = %v, want %v", c.name, got, c.want)
		}
		if got < 0 || got >= 360 {
			t.Errorf("%s: Bearing %v outside [0, 360)", c.name, got)
		}
	}
	// East at 60 N starts slightly north of east on a great circle.
	if b := Bearing(LonLat{10, 60}, LonLat{11, 60}); b <= 89 || b >= 90 {
		t.Errorf("east at 60 N: %v, want a little below 90", b)
	}
}

func TestInterpolateAndOffset(t *testing.T) {
	a, b := LonLat{10.745, 59.905}, LonLat{10.7505, 59.9105}
	mid := Interpolate(a, b, 0.5)
	if d1, d2 := Distance(a, mid), Distance(mid, b); !near(d1, d2, 1e-6) || !near(d1+d2, Distance(a, b), 1e-6) {
		t.Errorf("midpoint not half way: %v + %v vs %v", d1, d2, Distance(a, b))
	}
	if Interpolate(a, b, 0) != a {
		t.Errorf("fraction 0 moved: %v", Interpolate(a, b, 0))
	}
	if p := Interpolate(a, b, 1); Distance(p, b) > 1e-6 {
		t.Errorf("fraction 1 is %v m from b", Distance(p, b))
	}
	o := Offset(a, 30, 40)
	if d := Distance(a, o); !near(d, 50, 0.01) {
		t.Errorf("offset 30 N, 40 E is %v m away, want 50", d)
	}
	if br := Bearing(a, o); !near(br, math.Atan2(40, 30)*180/math.Pi, 0.05) {
		t.Errorf("offset bearing %v", br)
	}
}

func TestRouteAt(t *testing.T) {
	a, b, c := LonLat{10, 60}, LonLat{10, 60.001}, LonLat{10.002, 60.001}
	ab, bc := Distance(a, b), Distance(b, c)
	open := NewRoute([]LonLat{a, b, c}, false)
	loop := NewRoute([]LonLat{a, b, c}, true)
	single := NewRoute([]LonLat{a}, false)
	cases := []struct {
		name    string
		r       Route
		dist    float64
		want    LonLat
		heading float64 // -1: not checked
		moving  bool
	}{
		{"start", open, 0, a, 0, true},
		{"half of first leg", open, ab / 2, Interpolate(a, b, 0.5), 0, true},
		{"at the corner", open, ab, b, Bearing(b, c), true},
		{"on the second leg", open, ab + bc/4, Interpolate(b, c, 0.25), -1, true},
		{"end", open, ab + bc, c, Bearing(b, c), false},
		{"past the end stays at the last point", open, 10 * (ab + bc), c, Bearing(b, c), false},
		{"negative distance is the start", open, -5, a, 0, true},
		{"loop wraps around", loop, loop.Length() + ab/2, Interpolate(a, b, 0.5), 0, true},
		{"loop walks back to the first point", loop, ab + bc + Distance(c, a)/2, Interpolate(c, a, 0.5), -1, true},
		{"single point is stationary", single, 1000, a, -1, false},
	}
	for _, x := range cases {
		p, h, moving := x.r.At(x.dist)
		if Distance(p, x.want) > 0.001 {
			t.Errorf("%s: at %v, want %v (%.4f m off)", x.name, p, x.want, Distance(p, x.want))
		}
		if moving != x.moving {
			t.Errorf("%s: moving = %v, want %v", x.name, moving, x.moving)
		}
		if x.heading >= 0 && !near(h, x.heading, 0.01) {
			t.Errorf("%s: heading %v, want %v", x.name, h, x.heading)
		}
	}
	if !near(loop.Length(), ab+bc+Distance(c, a), 1e-6) {
		t.Errorf("loop length %v", loop.Length())
	}
}

func TestTagPosition(t *testing.T) {
	path := []LonLat{{10.745, 59.905}, {10.7505, 59.9105}}
	tag := Tag{Path: path, SpeedMps: 8, StartDelay: 5}
	r := NewRoute(path, false)
	total := r.Length() // about 705 m
	cases := []struct {
		name    string
		elapsed time.Duration
		walked  float64
		moving  bool
	}{
		{"waits at the start during the delay", 3 * time.Second, 0, false},
		{"starts walking after the delay", 15 * time.Second, 80, true},
		{"arrives and stays", time.Hour, total, false},
	}
	for _, c := range cases {
		p := TagPosition(tag, r, c.elapsed)
		if d := Distance(path[0], p.At); !near(d, c.walked, 0.01) {
			t.Errorf("%s: %v m from the start, want %v", c.name, d, c.walked)
		}
		if p.Moving != c.moving {
			t.Errorf("%s: moving %v", c.name, p.Moving)
		}
		if c.moving && (p.SpeedMps != 8 || !near(p.HeadingDeg, Bearing(path[0], path[1]), 0.01)) {
			t.Errorf("%s: speed %v heading %v", c.name, p.SpeedMps, p.HeadingDeg)
		}
		if !c.moving && p.SpeedMps != 0 {
			t.Errorf("%s: speed %v while not moving", c.name, p.SpeedMps)
		}
	}
}
