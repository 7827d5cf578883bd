package serialrx

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	idLine  = "$PSKJ,864717003283581,87,C*5F"
	rmcLine = "$GPRMC,120001.00,A,5954.6300,N,01045.4800,E,2.5,87.3,261126,,,A*63"
)

func TestChecksumKnownSentence(t *testing.T) {
	// A widely published example sentence and its checksum.
	const body = "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"
	if got := Checksum(body); got != 0x6A {
		t.Fatalf("checksum %02X, want 6A", got)
	}
	if Frame(body) != "$"+body+"*6A" {
		t.Fatalf("frame %q", Frame(body))
	}
}

func TestParseLine(t *testing.T) {
	type want struct {
		reason   string
		device   string
		valid    bool
		lat, lon float64
		time     time.Time
		speed    float64 // m/s, -1 for none
		heading  float64 // -1 for none
	}
	at := time.Date(2026, 11, 26, 12, 0, 1, 0, time.UTC)
	cases := []struct {
		name string
		line string
		want want
	}{
		{"id", idLine, want{device: "864717003283581"}},
		{"id only", Frame("PSKJ,unit-0017"), want{device: "unit-0017"}},
		{"rmc north east", rmcLine, want{valid: true, lat: 59 + 54.63/60, lon: 10 + 45.48/60, time: at, speed: 2.5 * 1852 / 3600, heading: 87.3}},
		{"rmc south west, GN, no speed/course", Frame("GNRMC,235959.5,A,3352.1280,S,15112.5580,W,,,010125,,"),
			want{valid: true, lat: -(33 + 52.128/60), lon: -(151 + 12.558/60), time: time.Date(2025, 1, 1, 23, 59, 59, 5e8, time.UTC), speed: -1, heading: -1}},
		{"rmc course 360 is 0", Frame("GPRMC,000000,A,0000.0000,N,00000.0000,E,0,360,010126,,"),
			want{valid: true, time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), speed: 0, heading: 0}},
		{"rmc void", Frame("GPRMC,,V,,,,,,,,,,N"), want{speed: -1, heading: -1}},
		{"rmc void with time", Frame("GPRMC,120001,V,,,,,,,261126,,"), want{time: time.Date(2026, 11, 26, 12, 0, 1, 0, time.UTC), speed: -1, heading: -1}},
		{"rmc estimated mode is no fix", Frame("GPRMC,120001,A,5954.6300,N,01045.4800,E,0,0,261126,,,E"), want{time: time.Date(2026, 11, 26, 12, 0, 1, 0, time.UTC), speed: -1, heading: -1}},
		{"lowercase checksum hex", idLine[:len(idLine)-2] + "5f", want{device: "864717003283581"}},
		{"bad checksum", idLine[:len(idLine)-2] + "00", want{reason: ReasonChecksum}},
		{"no checksum", "$PSKJ,1", want{reason: ReasonFormat}},
		{"no dollar", "PSKJ,1*00", want{reason: ReasonFormat}},
		{"hex garbage", "$PSKJ,1*ZZ", want{reason: ReasonFormat}},
		{"unknown sentence", Frame("GPGGA,1,2,3"), want{reason: ReasonUnknown}},
		{"too long", "$" + strings.Repeat("A", MaxLine) + "*00", want{reason: ReasonTooLong}},
		{"id empty", Frame("PSKJ,"), want{reason: ReasonField}},
		{"id bad char", Frame("PSKJ,a b"), want{reason: ReasonField}},
		{"id battery 101", Frame("PSKJ,x,101"), want{reason: ReasonField}},
		{"id strap X", Frame("PSKJ,x,50,X"), want{reason: ReasonField}},
		{"rmc status X", Frame("GPRMC,120001,X,,,,,,,261126,,"), want{reason: ReasonField}},
		{"rmc minutes 60", Frame("GPRMC,120001,A,5960.0000,N,01045.4800,E,0,0,261126,,"), want{reason: ReasonField}},
		{"rmc lat 91", Frame("GPRMC,120001,A,9100.0000,N,01045.4800,E,0,0,261126,,"), want{reason: ReasonField}},
		{"rmc hemisphere", Frame("GPRMC,120001,A,5954.6300,E,01045.4800,E,0,0,261126,,"), want{reason: ReasonField}},
		{"rmc date 31 February", Frame("GPRMC,120001,A,5954.6300,N,01045.4800,E,0,0,310226,,"), want{reason: ReasonField}},
		{"rmc valid without date", Frame("GPRMC,120001,A,5954.6300,N,01045.4800,E,0,0,,,"), want{reason: ReasonField}},
		{"rmc negative speed", Frame("GPRMC,120001,A,5954.6300,N,01045.4800,E,-1,0,261126,,"), want{reason: ReasonField}},
		{"rmc speed beyond 350 m/s", Frame("GPRMC,120001,A,5954.6300,N,01045.4800,E,700,0,261126,,"), want{reason: ReasonOutOfRange}},
		{"rmc course 361", Frame("GPRMC,120001,A,5954.6300,N,01045.4800,E,0,361,261126,,"), want{reason: ReasonField}},
		{"rmc few fields", Frame("GPRMC,120001,A"), want{reason: ReasonField}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseLine(c.line)
			if c.want.reason != "" {
				le, ok := err.(*LineError)
				if !ok || le.Reason != c.want.reason {
					t.Fatalf("%q: %v, want reason %s", c.line, err, c.want.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", c.line, err)
			}
			if c.want.device != "" {
				if s.ID == nil || s.ID.Device != c.want.device {
					t.Fatalf("id %+v", s.ID)
				}
				return
			}
			r := s.RMC
			if r == nil || r.Valid != c.want.valid || !r.Time.Equal(c.want.time) {
				t.Fatalf("rmc %+v", r)
			}
			if math.Abs(r.Lat-c.want.lat) > 1e-9 || math.Abs(r.Lon-c.want.lon) > 1e-9 {
				t.Fatalf("position %v %v, want %v %v", r.Lat, r.Lon, c.want.lat, c.want.lon)
			}
			if (c.want.speed < 0) != (r.SpeedMps == nil) || (r.SpeedMps != nil && math.Abs(*r.SpeedMps-c.want.speed) > 1e-9) {
				t.Fatalf("speed %v, want %v", r.SpeedMps, c.want.speed)
			}
			if (c.want.heading < 0) != (r.HeadingDeg == nil) || (r.HeadingDeg != nil && *r.HeadingDeg != c.want.heading) {
				t.Fatalf("heading %v, want %v", r.HeadingDeg, c.want.heading)
			}
		})
	}
}

func TestIDExtras(t *testing.T) {
	s, err := ParseLine(idLine)
	if err != nil || s.ID.BatteryPct == nil || *s.ID.BatteryPct != 87 || s.ID.Strap != StrapClosed {
		t.Fatalf("%+v %v", s.ID, err)
	}
	s, err = ParseLine(Frame("PSKJ,x,,O"))
	if err != nil || s.ID.BatteryPct != nil || s.ID.Strap != StrapOpen {
		t.Fatalf("%+v %v", s.ID, err)
	}
}

func TestLineReader(t *testing.T) {
	var lr lineReader
	got := lr.feed([]byte("$A*00\r\n$B"))
	got = append(got, lr.feed([]byte("*01\n"+strings.Repeat("x", MaxLine+5)+"\r\n$C*02\r\n"))...)
	var texts, reasons []string
	for _, l := range got {
		if l.err != nil {
			reasons = append(reasons, l.err.(*LineError).Reason)
		} else {
			texts = append(texts, l.text)
		}
	}
	if strings.Join(texts, "|") != "$A*00|$B*01|$C*02" || strings.Join(reasons, "|") != ReasonTooLong {
		t.Fatalf("lines %q, errors %q", texts, reasons)
	}
}

// FuzzParseLine: no line makes the parser panic, and whatever it accepts is in range.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{idLine, rmcLine, Frame("GPRMC,,V,,,,,,,,,,N"), Frame("GNRMC,235959.5,A,3352.1280,S,15112.5580,W,,,010125,,"), "$*00", "$PSKJ,1*ZZ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, err := ParseLine(line)
		if err != nil {
			if _, ok := err.(*LineError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if (s.ID == nil) == (s.RMC == nil) {
			t.Fatalf("sentence %+v", s)
		}
		if r := s.RMC; r != nil && r.Valid {
			if math.Abs(r.Lat) > 90 || math.Abs(r.Lon) > 180 || r.Time.IsZero() {
				t.Fatalf("out of range %+v", r)
			}
			if r.SpeedMps != nil && (*r.SpeedMps < 0 || *r.SpeedMps > 350) || r.HeadingDeg != nil && (*r.HeadingDeg < 0 || *r.HeadingDeg >= 360) {
				t.Fatalf("speed/heading %+v", r)
			}
		}
		var lr lineReader
		lr.feed([]byte(line))
	})
}

// The example lines in DESIGN.md and the package doc must parse.
func TestDocumentedExamplesParse(t *testing.T) {
	for _, file := range []string{"DESIGN.md", "serialrx.go"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(string(raw), "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "//"))
			if !strings.HasPrefix(line, "$") || strings.ContainsAny(line, "< ") {
				continue
			}
			n++
			if _, err := ParseLine(line); err != nil {
				t.Errorf("%s: %q: %v", file, line, err)
			}
		}
		if n < 2 {
			t.Errorf("%s: %d example lines found", file, n)
		}
	}
}
