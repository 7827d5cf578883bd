package modem

import (
	"errors"
	"testing"
	"time"
)

func TestParsePositionText(t *testing.T) {
	fix := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		text     string
		lat, lon float64
		at       time.Time
		speed    float64 // -1: none
		bat      int     // -1: none
	}{
		{"lat:59.910500 long:10.758000 speed:0.00 T:26/11/26 12:00 bat:80%", 59.9105, 10.758, fix, 0, 80},
		{"lat: 59.9105 lon: 10.758 speed: 12.5 T:26/11/26 12:00:30", 59.9105, 10.758, fix.Add(30 * time.Second), 12.5, -1},
		{"http://maps.google.com/maps?q=59.9105,10.758", 59.9105, 10.758, time.Time{}, -1, -1},
		{"help me! https://maps.google.no/maps?f=q&q=loc:N59.9105,E10.758 bat=15", 59.9105, 10.758, time.Time{}, -1, 15},
		{"Lat:N59.91050,Lon:E10.75800,Speed:5", 59.9105, 10.758, time.Time{}, 5, -1},
		{"lat:33.8688S long:151.2093E", -33.8688, 151.2093, time.Time{}, -1, -1},
		{"LATITUDE=-12.5 LONGITUDE=-77.25 http://maps.google.com/maps?q=1,1", -12.5, -77.25, time.Time{}, -1, -1},
		{"lat:59.9 lon:10.7 T:26/02/30 12:00", 59.9, 10.7, time.Time{}, -1, -1}, // no 30 February: SCTS is used
	}
	for _, c := range cases {
		p, err := ParsePositionText(c.text)
		if err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		if p.Lat != c.lat || p.Lon != c.lon || !p.Time.Equal(c.at) {
			t.Errorf("%q: %v %v %v", c.text, p.Lat, p.Lon, p.Time)
		}
		if (c.speed < 0) != (p.SpeedKmh == nil) || (p.SpeedKmh != nil && *p.SpeedKmh != c.speed) {
			t.Errorf("%q: speed %v", c.text, p.SpeedKmh)
		}
		if (c.bat < 0) != (p.BatteryPct == nil) || (p.BatteryPct != nil && *p.BatteryPct != c.bat) {
			t.Errorf("%q: battery %v", c.text, p.BatteryPct)
		}
	}
}

func TestParsePositionTextRefuses(t *testing.T) {
	for _, text := range []string{
		"", "hello", "lat:59.9", "long:10.7", "lat:0.000000 long:0.000000 T:26/11/26 12:00",
		"lat:95.1 long:10", "lat:59 long:190", "lat:E59 long:10", "maps.google.com/maps?q=abc",
		"low battery!", "http://maps.google.com/maps?q=59.9",
	} {
		if _, err := ParsePositionText(text); !errors.Is(err, ErrNoPosition) {
			t.Errorf("%q: err %v, want ErrNoPosition", text, err)
		}
	}
}
