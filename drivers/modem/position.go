package modem

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Position is what a TK103/GPS103-style position text says.
type Position struct {
	Lat, Lon float64
	// Time is the fix time from the text ("T:26/11/26 12:00", read as UTC); zero when the text has none.
	Time time.Time
	// SpeedKmh and BatteryPct are set when the text has them.
	SpeedKmh   *float64
	BatteryPct *int
}

// ErrNoPosition says a text is not a position report this driver understands.
var ErrNoPosition = errors.New("not a position text")

var (
	coord = `([NSEWnsew])?\s*([+-]?\d{1,3}(?:\.\d+)?)(?:\s*([NSEWnsew])\b)?`
	reLat = regexp.MustCompile(`(?i)\blat(?:itude)?\s*[:=]\s*` + coord)
	reLon = regexp.MustCompile(`(?i)\b(?:lon|long|lng|longitude)\s*[:=]\s*` + coord)
	// maps.google.<tld>/maps?q=59.9105,10.758 (also ?q=loc:, N/S/E/W prefixes, %2C for the comma,
	// /maps?f=q&q=...).
	reLink = regexp.MustCompile(`(?i)maps\.google\.[a-z.]+/(?:maps)?\?(?:[^\s]*&)?q=(?:loc:)?` + coord + `\s*(?:,|%2C)\s*` + coord)
	reTime = regexp.MustCompile(`\bT\s*[:=]\s*(\d{2})/(\d{2})/(\d{2})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?`)
	reSpd  = regexp.MustCompile(`(?i)\bspeed\s*[:=]\s*(\d{1,4}(?:\.\d+)?)`)
	reBat  = regexp.MustCompile(`(?i)\bbat(?:tery)?\s*[:=]\s*(\d{1,3})\s*%?`)
)

// signed applies a hemisphere letter (prefix or suffix) to a number: S and W are negative. neg and pos are
// the letters allowed for this axis.
func signed(pre, num, post string, neg, pos byte) (float64, error) {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	for _, l := range []string{pre, post} {
		if l == "" {
			continue
		}
		c := strings.ToUpper(l)[0]
		switch c {
		case neg:
			v = -math.Abs(v)
		case pos:
		default:
			return 0, fmt.Errorf("hemisphere %q on the wrong axis", l)
		}
	}
	return v, nil
}

// ParsePositionText reads a position text. Accepted, anywhere in the text and case-insensitive:
//
//	lat:59.910500 long:10.758000 speed:0.00 T:26/11/26 12:00 bat:80%
//	lat: 59.9105 lon: 10.758 ...           (lat / latitude; lon / long / lng / longitude; ':' or '=')
//	lat:N59.9105 long:E10.758, lat:59.9105S  (hemisphere letter before or after: S and W negative)
//	http://maps.google.com/maps?q=59.9105,10.758   (also https, other google TLDs, q=loc:, N/E prefixes)
//
// Keyed lat/lon win over a link. T is YY/MM/DD hh:mm[:ss] in UTC; speed is km/h; bat is a percentage.
// Coordinates outside ±90/±180 and the exact point 0,0 (a tag without a fix) are refused.
func ParsePositionText(text string) (Position, error) {
	var p Position
	la, lo := reLat.FindStringSubmatch(text), reLon.FindStringSubmatch(text)
	var err1, err2 error
	switch {
	case la != nil && lo != nil:
		p.Lat, err1 = signed(la[1], la[2], la[3], 'S', 'N')
		p.Lon, err2 = signed(lo[1], lo[2], lo[3], 'W', 'E')
	default:
		l := reLink.FindStringSubmatch(text)
		if l == nil {
			return p, ErrNoPosition
		}
		p.Lat, err1 = signed(l[1], l[2], l[3], 'S', 'N')
		p.Lon, err2 = signed(l[4], l[5], l[6], 'W', 'E')
	}
	if err := errors.Join(err1, err2); err != nil {
		return p, fmt.Errorf("%w: %v", ErrNoPosition, err)
	}
	if math.Abs(p.Lat) > 90 || math.Abs(p.Lon) > 180 {
		return p, fmt.Errorf("%w: coordinates %v, %v out of range", ErrNoPosition, p.Lat, p.Lon)
	}
	if p.Lat == 0 && p.Lon == 0 {
		return p, fmt.Errorf("%w: 0,0 (no fix)", ErrNoPosition)
	}
	if t := reTime.FindStringSubmatch(text); t != nil {
		n := make([]int, 6)
		for i := 0; i < 6; i++ {
			if t[i+1] != "" {
				n[i], _ = strconv.Atoi(t[i+1])
			}
		}
		at := time.Date(2000+n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], 0, time.UTC)
		if n[1] >= 1 && n[1] <= 12 && at.Day() == n[2] && n[3] < 24 && n[4] < 60 && n[5] < 60 {
			p.Time = at
		}
	}
	if s := reSpd.FindStringSubmatch(text); s != nil {
		if v, err := strconv.ParseFloat(s[1], 64); err == nil {
			p.SpeedKmh = &v
		}
	}
	if b := reBat.FindStringSubmatch(text); b != nil {
		if v, err := strconv.Atoi(b[1]); err == nil && v <= 100 {
			p.BatteryPct = &v
		}
	}
	return p, nil
}
