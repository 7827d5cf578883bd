package protocol

import (
	"encoding/binary"
	"fmt"
	"time"
)

// GPS is the GPS block shared by location (0x12, 0x22) and alarm (0x16) packets.
type GPS struct {
	Time       time.Time // UTC, from YY MM DD hh mm ss
	InfoLength int       // high nibble of the GPS info byte
	Satellites int       // low nibble
	Lat, Lon   float64   // degrees, signed by the hemisphere bits
	SpeedKmh   int
	Course     int  // degrees, 0..1023 on the wire
	Valid      bool // course/status bit 12: the fix is valid (positioned)
	// CourseStatus is the raw 2-byte field: bits 0-9 course, bit 10 north, bit 11 west, bit 12 fix valid,
	// bit 13 differential, bits 14-15 ACC/other (model dependent).
	CourseStatus uint16
}

// GPSLen is the size of the GPS block.
const GPSLen = 18

// Terminal is the status block of a status (0x13) or alarm (0x16) packet.
type Terminal struct {
	// HasInfo says Info was sent (the long 16-byte 0x13 variant has no terminal info byte).
	HasInfo bool
	// Info is the terminal information byte: bit 0 defence on, bit 1 ACC high, bit 2 charging, bits 3-5
	// alarm (0 normal, 1 shock, 2 power cut, 3 low battery, 4 SOS, 7 removal), bit 6 GPS tracking on,
	// bit 7 oil/electricity cut.
	Info byte
	// Level is the voltage level 0 (no power) .. 6 (very high); HasLevel is false when the byte is not a
	// level (some firmware sends a raw voltage there).
	Level    int
	HasLevel bool
	GSM      byte // signal strength 0..4
	Alarm    byte // alarm type (0x16): see RemovalAlarms
	Language byte
}

// Alarm types in the alarm byte that mean the tag was taken off or opened.
var RemovalAlarms = map[byte]string{
	0x13: "tamper",
	0x18: "removal",
	0x25: "tamper",
}

// Charging reports terminal info bit 2.
func (t Terminal) Charging() bool { return t.HasInfo && t.Info&0x04 != 0 }

// InfoAlarm is terminal info bits 3-5.
func (t Terminal) InfoAlarm() int { return int(t.Info>>3) & 7 }

// Removed reports a strap removal or case tamper: terminal info alarm bits = 7, or a removal/tamper
// alarm type.
func (t Terminal) Removed() bool {
	if t.HasInfo && t.InfoAlarm() == 7 {
		return true
	}
	_, ok := RemovalAlarms[t.Alarm]
	return ok
}

// Packet is a decoded frame. Which fields are set depends on Protocol.
type Packet struct {
	Protocol byte
	Serial   uint16
	IMEI     string    // login
	GPS      *GPS      // 0x12, 0x22, 0x16
	Terminal *Terminal // 0x13, 0x16
	// ServerFlag and Text: 0x15 (the terminal's reply) and 0x80 (a server command).
	ServerFlag uint32
	Text       string
}

// Parse decodes a frame's content. An unknown protocol number gives ReasonUnknownProtocol, content that
// is too short ReasonTruncated, impossible values ReasonInvalid.
func Parse(f Frame) (Packet, error) {
	p := Packet{Protocol: f.Protocol, Serial: f.Serial}
	c := f.Content
	switch f.Protocol {
	case Login:
		if len(c) < 8 {
			return p, errorf(ReasonTruncated, "login content is %d bytes, want 8", len(c))
		}
		imei, err := DecodeIMEI(c[:8])
		if err != nil {
			return p, err
		}
		p.IMEI = imei
	case Location, Location22:
		g, err := parseGPS(c)
		if err != nil {
			return p, err
		}
		p.GPS = &g
	case Alarm:
		g, err := parseGPS(c)
		if err != nil {
			return p, err
		}
		if len(c) < GPSLen+1 {
			return p, errorf(ReasonTruncated, "alarm content is %d bytes, no LBS block", len(c))
		}
		lbs := int(c[GPSLen]) // the LBS block's length, counting itself
		if lbs < 1 {
			lbs = 1
		}
		off := GPSLen + lbs
		if len(c) < off+5 {
			return p, errorf(ReasonTruncated, "alarm content is %d bytes, want %d", len(c), off+5)
		}
		t := parseTerminal(c[off : off+5])
		p.GPS, p.Terminal = &g, &t
	case Status:
		switch {
		case len(c) == 16:
			// Long variant: information content, satellites (2), alarm, language, battery level,
			// working mode, voltage (2), ...; no terminal info byte.
			t := Terminal{Alarm: c[3], Language: c[4]}
			if c[5] <= 6 {
				t.Level, t.HasLevel = int(c[5]), true
			}
			p.Terminal = &t
		case len(c) >= 5:
			t := parseTerminal(c[:5])
			p.Terminal = &t
		default:
			return p, errorf(ReasonTruncated, "status content is %d bytes, want 5", len(c))
		}
	case CommandReply, ServerCommand:
		// length (1) = server flag (4) + text; then server flag, text (and, on newer firmware, a
		// 2-byte language that this decoder ignores).
		if len(c) < 5 {
			return p, errorf(ReasonTruncated, "command content is %d bytes, want at least 5", len(c))
		}
		n := int(c[0])
		if n < 4 || 1+n > len(c) {
			return p, errorf(ReasonTruncated, "command length %d does not fit content of %d bytes", n, len(c))
		}
		p.ServerFlag = binary.BigEndian.Uint32(c[1:5])
		p.Text = string(c[5 : 1+n])
	default:
		return p, errorf(ReasonUnknownProtocol, "protocol 0x%02X", f.Protocol)
	}
	return p, nil
}

func parseTerminal(c []byte) Terminal {
	t := Terminal{HasInfo: true, Info: c[0], GSM: c[2], Alarm: c[3], Language: c[4]}
	if c[1] <= 6 {
		t.Level, t.HasLevel = int(c[1]), true
	}
	return t
}

func bcdNibble(n byte) (byte, bool) { return '0' + n, n <= 9 }

// DecodeIMEI turns 8 BCD bytes (16 digits with a leading zero) into the 15-digit IMEI.
func DecodeIMEI(b []byte) (string, error) {
	if len(b) != 8 {
		return "", errorf(ReasonTruncated, "IMEI is %d bytes, want 8", len(b))
	}
	digits := make([]byte, 0, 16)
	for _, x := range b {
		hi, ok1 := bcdNibble(x >> 4)
		lo, ok2 := bcdNibble(x & 0x0F)
		if !ok1 || !ok2 {
			return "", errorf(ReasonInvalid, "IMEI % X is not BCD", b)
		}
		digits = append(digits, hi, lo)
	}
	if digits[0] == '0' {
		digits = digits[1:]
	}
	return string(digits), nil
}

// EncodeIMEI is the inverse of DecodeIMEI: up to 16 digits, left-padded with zeros.
func EncodeIMEI(imei string) ([]byte, error) {
	if len(imei) == 0 || len(imei) > 16 {
		return nil, fmt.Errorf("gt06: IMEI %q must have 1 to 16 digits", imei)
	}
	s := imei
	for len(s) < 16 {
		s = "0" + s
	}
	out := make([]byte, 8)
	for i := 0; i < 16; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("gt06: IMEI %q has a non-digit", imei)
		}
		out[i/2] |= (c - '0') << (4 * (1 - i%2))
	}
	return out, nil
}

// Coordinates are minutes × 30000, i.e. degrees × 1 800 000.
const coordScale = 1800000.0

func parseGPS(c []byte) (GPS, error) {
	if len(c) < GPSLen {
		return GPS{}, errorf(ReasonTruncated, "GPS block is %d bytes, want %d", len(c), GPSLen)
	}
	yy, mo, dd, hh, mi, ss := int(c[0]), int(c[1]), int(c[2]), int(c[3]), int(c[4]), int(c[5])
	if mo < 1 || mo > 12 || dd < 1 || dd > 31 || hh > 23 || mi > 59 || ss > 59 {
		return GPS{}, errorf(ReasonInvalid, "date %02d-%02d-%02d %02d:%02d:%02d", yy, mo, dd, hh, mi, ss)
	}
	t := time.Date(2000+yy, time.Month(mo), dd, hh, mi, ss, 0, time.UTC)
	if t.Day() != dd {
		return GPS{}, errorf(ReasonInvalid, "date %02d-%02d-%02d does not exist", yy, mo, dd)
	}
	g := GPS{
		Time:         t,
		InfoLength:   int(c[6] >> 4),
		Satellites:   int(c[6] & 0x0F),
		SpeedKmh:     int(c[15]),
		CourseStatus: binary.BigEndian.Uint16(c[16:18]),
	}
	lat := float64(binary.BigEndian.Uint32(c[7:11])) / coordScale
	lon := float64(binary.BigEndian.Uint32(c[11:15])) / coordScale
	if lat > 90 || lon > 180 {
		return GPS{}, errorf(ReasonInvalid, "coordinates %v, %v out of range", lat, lon)
	}
	if g.CourseStatus&(1<<10) == 0 { // bit 10 clear: south
		lat = -lat
	}
	if g.CourseStatus&(1<<11) != 0 { // bit 11 set: west
		lon = -lon
	}
	g.Lat, g.Lon = lat, lon
	g.Course = int(g.CourseStatus & 0x03FF)
	g.Valid = g.CourseStatus&(1<<12) != 0
	return g, nil
}

// EncodeGPS builds the 18-byte GPS block (for tests and simulators). Lat/Lon signs set the hemisphere bits;
// Course and Valid set their bits; other CourseStatus bits (13-15) are kept.
func EncodeGPS(g GPS) []byte {
	t := g.Time.UTC()
	out := []byte{byte(t.Year() - 2000), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()),
		byte(g.InfoLength<<4) | byte(g.Satellites&0x0F)}
	lat, lon := g.Lat, g.Lon
	cs := g.CourseStatus &^ 0x1FFF
	cs |= uint16(g.Course) & 0x03FF
	if lat >= 0 {
		cs |= 1 << 10
	} else {
		lat = -lat
	}
	if lon < 0 {
		cs |= 1 << 11
		lon = -lon
	}
	if g.Valid {
		cs |= 1 << 12
	}
	out = binary.BigEndian.AppendUint32(out, uint32(lat*coordScale+0.5))
	out = binary.BigEndian.AppendUint32(out, uint32(lon*coordScale+0.5))
	out = append(out, byte(g.SpeedKmh))
	return binary.BigEndian.AppendUint16(out, cs)
}

// EncodeTerminal builds the 5-byte status block.
func EncodeTerminal(t Terminal) []byte {
	level := byte(0xFF)
	if t.HasLevel {
		level = byte(t.Level)
	}
	return []byte{t.Info, level, t.GSM, t.Alarm, t.Language}
}

// EncodeCommand builds a server command (0x80) content: length, server flag, text.
func EncodeCommand(serverFlag uint32, text string) ([]byte, error) {
	if len(text) > MaxCommandText {
		return nil, fmt.Errorf("gt06: command text of %d bytes, at most %d fit", len(text), MaxCommandText)
	}
	out := []byte{byte(4 + len(text))}
	out = binary.BigEndian.AppendUint32(out, serverFlag)
	return append(out, text...), nil
}

// MaxCommandText is the longest command text a short 0x80 frame carries (length byte ≤ 255).
const MaxCommandText = 200

// CommandFrame builds the whole 0x80 frame.
func CommandFrame(serverFlag uint32, text string, serial uint16) ([]byte, error) {
	c, err := EncodeCommand(serverFlag, text)
	if err != nil {
		return nil, err
	}
	return Encode(Frame{Protocol: ServerCommand, Content: c, Serial: serial})
}
