package serialrx

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxLine bounds one line, without CR LF. NMEA allows 82 characters; the PSKJ sentence may carry a longer
// device id (up to MaxDeviceID).
const MaxLine = 160

// MaxDeviceID bounds the device id in a PSKJ sentence.
const MaxDeviceID = 64

// Reasons a line is rejected; they label the driver's metrics.
const (
	ReasonFormat     = "format"       // not "$<fields>*<two hex digits>"
	ReasonChecksum   = "checksum"     // XOR of the characters between '$' and '*' differs
	ReasonUnknown    = "unknown"      // a well-formed sentence this driver does not use
	ReasonField      = "field"        // a field of a known sentence is missing or malformed
	ReasonTooLong    = "too_long"     // no line end within MaxLine characters
	ReasonNoID       = "no_id"        // an RMC sentence not directly preceded by its PSKJ sentence
	ReasonOrphanID   = "orphan_id"    // a PSKJ sentence not directly followed by an RMC sentence
	ReasonOutOfRange = "out_of_range" // speed or course the node would refuse
)

// LineError says why a line was rejected.
type LineError struct {
	Reason string
	Detail string
}

func (e *LineError) Error() string { return "nmea: " + e.Reason + ": " + e.Detail }

func lineErr(reason, format string, args ...any) *LineError {
	return &LineError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Strap is the strap state a PSKJ sentence reports.
type Strap int

const (
	StrapUnknown Strap = iota
	StrapClosed
	StrapOpen
)

// ID is a $PSKJ sentence: the device the next RMC sentence belongs to, and optional tag state.
type ID struct {
	Device     string
	BatteryPct *int32
	Strap      Strap
}

// RMC is a $--RMC sentence (recommended minimum GNSS data).
type RMC struct {
	Time       time.Time // UTC; zero when the sentence has no time or date (status V)
	Valid      bool      // status A and a mode other than N (not valid) or E (estimated)
	Lat, Lon   float64   // degrees, signed
	SpeedMps   *float64  // from knots
	HeadingDeg *float64  // course over ground, true
}

// Sentence is one parsed line: exactly one of ID and RMC is set.
type Sentence struct {
	ID  *ID
	RMC *RMC
}

// Checksum is the NMEA checksum: XOR of every byte of s (the text between '$' and '*').
func Checksum(s string) byte {
	var c byte
	for i := 0; i < len(s); i++ {
		c ^= s[i]
	}
	return c
}

// Frame wraps a sentence body (without '$' and '*') as a line with its checksum, without CR LF.
func Frame(body string) string { return fmt.Sprintf("$%s*%02X", body, Checksum(body)) }

// ParseLine parses one line (CR LF already removed). Errors are *LineError.
func ParseLine(line string) (Sentence, error) {
	if len(line) > MaxLine {
		return Sentence{}, lineErr(ReasonTooLong, "%d characters", len(line))
	}
	if len(line) < 4 || line[0] != '$' || line[len(line)-3] != '*' {
		return Sentence{}, lineErr(ReasonFormat, "%q is not $...*hh", clip(line))
	}
	body := line[1 : len(line)-3]
	want, err := strconv.ParseUint(line[len(line)-2:], 16, 8)
	if err != nil {
		return Sentence{}, lineErr(ReasonFormat, "checksum %q is not hexadecimal", line[len(line)-2:])
	}
	for i := 0; i < len(body); i++ {
		if body[i] < 0x20 || body[i] > 0x7E || body[i] == '$' || body[i] == '*' {
			return Sentence{}, lineErr(ReasonFormat, "character 0x%02X in the sentence", body[i])
		}
	}
	if got := Checksum(body); got != byte(want) {
		return Sentence{}, lineErr(ReasonChecksum, "sentence says %02X, computed %02X", want, got)
	}
	f := strings.Split(body, ",")
	switch f[0] {
	case "PSKJ":
		id, err := parseID(f[1:])
		return Sentence{ID: id}, err
	case "GPRMC", "GNRMC":
		r, err := parseRMC(f[1:])
		return Sentence{RMC: r}, err
	default:
		return Sentence{}, lineErr(ReasonUnknown, "sentence %q", clip(f[0]))
	}
}

func clip(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

func parseID(f []string) (*ID, error) {
	if len(f) < 1 || len(f) > 3 {
		return nil, lineErr(ReasonField, "PSKJ has %d fields, want 1 to 3", len(f))
	}
	id := &ID{Device: f[0]}
	if id.Device == "" || len(id.Device) > MaxDeviceID {
		return nil, lineErr(ReasonField, "device id must be 1 to %d characters", MaxDeviceID)
	}
	for i := 0; i < len(id.Device); i++ {
		c := id.Device[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_' || c == '.') {
			return nil, lineErr(ReasonField, "device id %q has character %q", clip(id.Device), c)
		}
	}
	if len(f) >= 2 && f[1] != "" {
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 || n > 100 {
			return nil, lineErr(ReasonField, "battery %q is not 0-100", clip(f[1]))
		}
		b := int32(n)
		id.BatteryPct = &b
	}
	if len(f) >= 3 {
		switch f[2] {
		case "":
		case "C":
			id.Strap = StrapClosed
		case "O":
			id.Strap = StrapOpen
		default:
			return nil, lineErr(ReasonField, "strap %q is not C, O or empty", clip(f[2]))
		}
	}
	return id, nil
}

// RMC fields after the address: 0 time, 1 status, 2 lat, 3 N/S, 4 lon, 5 E/W, 6 speed (knots),
// 7 course, 8 date, 9 magnetic variation, 10 E/W, 11 mode (NMEA 2.3+), 12 navigational status (4.1).
func parseRMC(f []string) (*RMC, error) {
	if len(f) < 11 || len(f) > 13 {
		return nil, lineErr(ReasonField, "RMC has %d fields, want 11 to 13", len(f))
	}
	r := &RMC{}
	switch f[1] {
	case "A":
		r.Valid = true
	case "V":
	default:
		return nil, lineErr(ReasonField, "status %q is not A or V", clip(f[1]))
	}
	if len(f) >= 12 {
		switch f[11] {
		case "N", "E":
			r.Valid = false // not valid, or estimated (dead reckoning): no position
		case "", "A", "D", "F", "R", "P", "S", "M":
		default:
			return nil, lineErr(ReasonField, "mode %q", clip(f[11]))
		}
	}
	if f[0] != "" || f[8] != "" {
		t, err := rmcTime(f[0], f[8])
		if err != nil {
			return nil, err
		}
		r.Time = t
	}
	if !r.Valid {
		return r, nil
	}
	if r.Time.IsZero() {
		return nil, lineErr(ReasonField, "a valid fix without time and date")
	}
	lat, err := coord(f[2], f[3], 2, "N", "S", 90)
	if err != nil {
		return nil, err
	}
	lon, err := coord(f[4], f[5], 3, "E", "W", 180)
	if err != nil {
		return nil, err
	}
	r.Lat, r.Lon = lat, lon
	if f[6] != "" {
		kn, err := strconv.ParseFloat(f[6], 64)
		if err != nil || kn < 0 || !finite(kn) {
			return nil, lineErr(ReasonField, "speed %q", clip(f[6]))
		}
		mps := kn * 1852 / 3600
		if mps > 350 {
			return nil, lineErr(ReasonOutOfRange, "speed %v knots", kn)
		}
		r.SpeedMps = &mps
	}
	if f[7] != "" {
		c, err := strconv.ParseFloat(f[7], 64)
		if err != nil || c < 0 || c > 360 || !finite(c) {
			return nil, lineErr(ReasonField, "course %q", clip(f[7]))
		}
		if c == 360 {
			c = 0
		}
		r.HeadingDeg = &c
	}
	return r, nil
}

func finite(f float64) bool { return f == f && f < 1e300 && f > -1e300 }

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// rmcTime combines hhmmss[.sss] and ddmmyy (UTC; years 00-99 are 2000-2099).
func rmcTime(hms, dmy string) (time.Time, error) {
	if len(hms) < 6 || !digits(hms[:6]) || len(dmy) != 6 || !digits(dmy) {
		return time.Time{}, lineErr(ReasonField, "time %q date %q", clip(hms), clip(dmy))
	}
	var nanos int
	if len(hms) > 6 {
		frac := hms[6:]
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 || !digits(frac[1:]) {
			return time.Time{}, lineErr(ReasonField, "time %q", clip(hms))
		}
		v, _ := strconv.Atoi(frac[1:])
		for i := len(frac) - 1; i < 9; i++ {
			v *= 10
		}
		nanos = v
	}
	a := func(s string) int { n, _ := strconv.Atoi(s); return n }
	h, mi, s := a(hms[0:2]), a(hms[2:4]), a(hms[4:6])
	d, mo, y := a(dmy[0:2]), a(dmy[2:4]), a(dmy[4:6])
	if h > 23 || mi > 59 || s > 59 || mo < 1 || mo > 12 || d < 1 {
		return time.Time{}, lineErr(ReasonField, "time %q date %q", hms, dmy)
	}
	t := time.Date(2000+y, time.Month(mo), d, h, mi, s, nanos, time.UTC)
	if t.Day() != d {
		return time.Time{}, lineErr(ReasonField, "date %q does not exist", dmy)
	}
	return t, nil
}

// coord parses ddmm.mmmm (latitude, degDigits 2) or dddmm.mmmm (longitude, 3) with its hemisphere.
func coord(v, hemi string, degDigits int, pos, neg string, limit float64) (float64, error) {
	if len(v) < degDigits+2 || !digits(v[:degDigits+2]) {
		return 0, lineErr(ReasonField, "coordinate %q", clip(v))
	}
	deg, _ := strconv.Atoi(v[:degDigits])
	minutes, err := strconv.ParseFloat(v[degDigits:], 64)
	if err != nil || minutes >= 60 || minutes < 0 || (len(v) > degDigits+2 && v[degDigits+2] != '.') {
		return 0, lineErr(ReasonField, "coordinate %q", clip(v))
	}
	x := float64(deg) + minutes/60
	if x > limit {
		return 0, lineErr(ReasonField, "coordinate %q is beyond %v degrees", clip(v), limit)
	}
	switch hemi {
	case pos:
	case neg:
		x = -x
	default:
		return 0, lineErr(ReasonField, "hemisphere %q is not %s or %s", clip(hemi), pos, neg)
	}
	return x, nil
}
