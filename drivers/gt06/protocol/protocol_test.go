package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"
	"time"
)

type vector struct {
	ID       string         `json:"id"`
	Hex      string         `json:"hex"`
	Kind     string         `json:"kind"`
	Protocol string         `json:"protocol_number"`
	Expect   map[string]any `json:"expect"`
	CRCOK    bool           `json:"crc_ok"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	raw, err := os.ReadFile("../testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Frames []vector `json:"frames"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Frames) == 0 {
		t.Fatal("no vectors")
	}
	return v.Frames
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeOne(t *testing.T, b []byte) (Frame, Packet) {
	t.Helper()
	var d Decoder
	d.Write(b)
	f, err := d.Next()
	if err != nil {
		t.Fatalf("frame % X: %v", b, err)
	}
	if _, err := d.Next(); err != ErrNeedMore || d.Buffered() != 0 {
		t.Fatalf("after one frame: %v, %d bytes left", err, d.Buffered())
	}
	p, err := Parse(f)
	if err != nil {
		t.Fatalf("parse % X: %v", b, err)
	}
	return f, p
}

func TestCRCKnownValues(t *testing.T) {
	cases := []struct {
		in   []byte
		want uint16
	}{
		{[]byte("123456789"), 0x906E}, // CRC-16/X-25 check value
		{[]byte{0x05, 0x01, 0x00, 0x01}, 0xD9DC},
		{nil, 0x0000},
	}
	for _, c := range cases {
		if got := CRC(c.in); got != c.want {
			t.Errorf("CRC(% X) = %04X, want %04X", c.in, got, c.want)
		}
	}
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.ID, func(t *testing.T) {
			raw := mustHex(t, v.Hex)
			f, p := decodeOne(t, raw)
			if got := "0x" + hex.EncodeToString([]byte{f.Protocol}); !bytes.EqualFold([]byte(got), []byte(v.Protocol)) {
				t.Fatalf("protocol %s, want %s", got, v.Protocol)
			}
			// Re-encoding the decoded frame gives the same bytes.
			again, err := Encode(f)
			if err != nil || !bytes.Equal(again, raw) {
				t.Fatalf("re-encoded % X (%v), want % X", again, err, raw)
			}
			switch v.Kind {
			case "login":
				if p.IMEI != "864717003283581" {
					t.Fatalf("IMEI %q", p.IMEI)
				}
				// The protocol's example ACK is for serial 1; this frame's serial is 9.
				if got := Ack(Login, 1); !bytes.Equal(got, mustHex(t, "787805010001D9DC0D0A")) {
					t.Fatalf("login ACK % X", got)
				}
				ack := Ack(f.Protocol, f.Serial)
				var d Decoder
				d.Write(ack)
				if af, err := d.Next(); err != nil || af.Protocol != Login || af.Serial != 9 || len(af.Content) != 0 {
					t.Fatalf("ACK % X decodes to %+v, %v", ack, af, err)
				}
			case "status/heartbeat":
				want := int(v.Expect["batteryLevel"].(float64))
				if p.Terminal == nil || !p.Terminal.HasLevel || p.Terminal.Level != want {
					t.Fatalf("terminal %+v, want level %d", p.Terminal, want)
				}
			case "location":
				wantTime, _ := time.Parse(time.RFC3339, v.Expect["time"].(string))
				g := p.GPS
				if g == nil || !g.Time.Equal(wantTime) || g.Valid != v.Expect["valid"].(bool) {
					t.Fatalf("gps %+v", g)
				}
				if math.Abs(g.Lat-v.Expect["lat"].(float64)) > 1e-5 || math.Abs(g.Lon-v.Expect["lon"].(float64)) > 1e-5 {
					t.Fatalf("position %v %v, want %v %v", g.Lat, g.Lon, v.Expect["lat"], v.Expect["lon"])
				}
			case "alarm":
				if v.Expect["alarm"] != "removing" {
					t.Fatalf("vector expects %v", v.Expect)
				}
				if p.Terminal == nil || !p.Terminal.Removed() || p.GPS == nil {
					t.Fatalf("alarm packet %+v terminal %+v, want removal", p, p.Terminal)
				}
				if !p.Terminal.Charging() {
					t.Fatalf("terminal info %08b: charging bit set", p.Terminal.Info)
				}
				if p.Terminal.HasLevel {
					t.Fatalf("level byte %d is not a 0-6 level", p.Terminal.Level)
				}
			default:
				t.Fatalf("kind %q has no check", v.Kind)
			}
		})
	}
}

func TestDecoderRejectsAndResynchronises(t *testing.T) {
	login := mustHex(t, "78780D01086471700328358100093F040D0A")
	badCRC := append([]byte(nil), login...)
	badCRC[len(badCRC)-3] ^= 0xFF
	badStop := append([]byte(nil), login...)
	badStop[len(badStop)-1] = 0x0B
	shortLen := mustHex(t, "787804010001")
	longTooBig := mustHex(t, "7979FFFF01")
	cases := []struct {
		name   string
		stream []byte
		want   []string // reasons ("" for a good frame), in order
	}{
		{"good", login, []string{""}},
		{"bad crc then good", cat(badCRC, login), []string{ReasonCRC, ReasonSync, ""}},
		{"bad stop then good", cat(badStop, login), []string{ReasonStop, ReasonSync, ""}},
		{"length below minimum", cat(shortLen, login), []string{ReasonLength, ReasonSync, ""}},
		{"long length above limit", cat(longTooBig, login), []string{ReasonLength, ReasonSync, ""}},
		{"garbage before", cat([]byte{0, 1, 2, 0x79, 0x0D, 0x0A}, login), []string{ReasonSync, ""}},
		{"two good", cat(login, login), []string{"", ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d Decoder
			d.Write(c.stream)
			var got []string
			for {
				_, err := d.Next()
				if err == ErrNeedMore {
					break
				}
				got = append(got, Reason(err))
			}
			if !equal(got, c.want) {
				t.Fatalf("reasons %q, want %q", got, c.want)
			}
			if err := d.End(); err != nil {
				t.Fatalf("end: %v", err)
			}
		})
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDecoderByteByByteAndTruncatedEnd(t *testing.T) {
	var stream []byte
	var want int
	for _, v := range loadVectors(t) {
		stream = append(stream, mustHex(t, v.Hex)...)
		want++
	}
	var d Decoder
	got := 0
	for _, b := range stream {
		d.Write([]byte{b})
		for {
			_, err := d.Next()
			if err == ErrNeedMore {
				break
			}
			if err != nil {
				t.Fatalf("byte-by-byte: %v", err)
			}
			got++
		}
	}
	if got != want {
		t.Fatalf("%d frames, want %d", got, want)
	}
	d.Write(stream[:7])
	if _, err := d.Next(); err != ErrNeedMore {
		t.Fatalf("partial frame: %v", err)
	}
	if err := d.End(); Reason(err) != ReasonTruncated {
		t.Fatalf("end with a partial frame: %v, want truncated", err)
	}
	if d.Buffered() != 0 {
		t.Fatal("End kept bytes")
	}
}

func TestLongFrameRoundTrip(t *testing.T) {
	content := bytes.Repeat([]byte{0xAB}, 300)
	b, err := Encode(Frame{Long: true, Protocol: 0x94, Content: content, Serial: 0x1234})
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0x79 || b[1] != 0x79 || int(b[2])<<8|int(b[3]) != 305 {
		t.Fatalf("header % X", b[:4])
	}
	f, err := func() (Frame, error) { var d Decoder; d.Write(b); return d.Next() }()
	if err != nil || !f.Long || f.Protocol != 0x94 || f.Serial != 0x1234 || !bytes.Equal(f.Content, content) {
		t.Fatalf("decoded %+v, %v", f, err)
	}
	if _, err := Parse(f); Reason(err) != ReasonUnknownProtocol {
		t.Fatalf("parse 0x94: %v, want unknown_protocol", err)
	}
	if _, err := Encode(Frame{Content: make([]byte, 251)}); err == nil {
		t.Fatal("a short frame with 251 content bytes was encoded")
	}
}

func TestGPSRoundTrip(t *testing.T) {
	cases := []GPS{
		{Time: time.Date(2026, 11, 26, 12, 0, 1, 0, time.UTC), Satellites: 9, InfoLength: 12, Lat: 59.9105, Lon: 10.758, SpeedKmh: 36, Course: 271, Valid: true},
		{Time: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), Satellites: 0, Lat: -33.8688, Lon: -151.2093, SpeedKmh: 255, Course: 0, Valid: false},
	}
	for _, g := range cases {
		content := EncodeGPS(g)
		for _, proto := range []byte{Location, Location22} {
			b, err := Encode(Frame{Protocol: proto, Content: append(content, make([]byte, 8)...), Serial: 7})
			if err != nil {
				t.Fatal(err)
			}
			_, p := decodeOne(t, b)
			got := p.GPS
			if !got.Time.Equal(g.Time) || got.Satellites != g.Satellites || got.SpeedKmh != g.SpeedKmh ||
				got.Course != g.Course || got.Valid != g.Valid || math.Abs(got.Lat-g.Lat) > 1e-6 || math.Abs(got.Lon-g.Lon) > 1e-6 {
				t.Fatalf("0x%02X: got %+v, want %+v", proto, *got, g)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	gps := EncodeGPS(GPS{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Valid: true})
	badDate := append([]byte(nil), gps...)
	badDate[1] = 13
	feb30 := append([]byte(nil), gps...)
	feb30[1], feb30[2] = 2, 30
	cases := []struct {
		name string
		f    Frame
		want string
	}{
		{"login short", Frame{Protocol: Login, Content: []byte{1, 2, 3}}, ReasonTruncated},
		{"login not BCD", Frame{Protocol: Login, Content: []byte{0x0A, 0, 0, 0, 0, 0, 0, 0}}, ReasonInvalid},
		{"location short", Frame{Protocol: Location, Content: gps[:17]}, ReasonTruncated},
		{"location month 13", Frame{Protocol: Location, Content: badDate}, ReasonInvalid},
		{"location 30 February", Frame{Protocol: Location22, Content: feb30}, ReasonInvalid},
		{"alarm without status", Frame{Protocol: Alarm, Content: append(gps, 9, 0, 0)}, ReasonTruncated},
		{"status short", Frame{Protocol: Status, Content: []byte{1, 2}}, ReasonTruncated},
		{"command length past content", Frame{Protocol: CommandReply, Content: []byte{40, 0, 0, 0, 1, 'a'}}, ReasonTruncated},
		{"unknown", Frame{Protocol: 0x42}, ReasonUnknownProtocol},
	}
	for _, c := range cases {
		if _, err := Parse(c.f); Reason(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
}

func TestStatusAndAlarmTerminal(t *testing.T) {
	cases := []struct {
		name              string
		term              Terminal
		charging, removed bool
	}{
		{"normal, charging", Terminal{Info: 0x04 | 0x40, Level: 4, HasLevel: true}, true, false},
		{"removal bits", Terminal{Info: 7 << 3, Level: 3, HasLevel: true}, false, true},
		{"removal alarm type", Terminal{Info: 0, Alarm: 0x18, Level: 6, HasLevel: true}, false, true},
		{"SOS is not removal", Terminal{Info: 4 << 3, Alarm: 0x01, Level: 6, HasLevel: true}, false, false},
	}
	for _, c := range cases {
		b, _ := Encode(Frame{Protocol: Status, Content: EncodeTerminal(c.term), Serial: 3})
		_, p := decodeOne(t, b)
		tm := p.Terminal
		if tm.Charging() != c.charging || tm.Removed() != c.removed || tm.Level != c.term.Level || !tm.HasLevel {
			t.Errorf("%s: %+v charging=%v removed=%v", c.name, tm, tm.Charging(), tm.Removed())
		}
		g := EncodeGPS(GPS{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Valid: true, Lat: 1, Lon: 2})
		content := cat(g, []byte{9, 0, 0, 0, 0, 0, 0, 0, 0}, EncodeTerminal(c.term))
		b, _ = Encode(Frame{Protocol: Alarm, Content: content, Serial: 4})
		_, p = decodeOne(t, b)
		if p.GPS == nil || p.GPS.Lat != 1 || p.Terminal.Removed() != c.removed {
			t.Errorf("%s as alarm: %+v %+v", c.name, p.GPS, p.Terminal)
		}
	}
}

func TestIMEIRoundTrip(t *testing.T) {
	for _, imei := range []string{"864717003283581", "123456789012345", "0864717003283581"} {
		b, err := EncodeIMEI(imei)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeIMEI(b)
		if err != nil || (got != imei && "0"+got != imei) {
			t.Fatalf("%s: %q %v", imei, got, err)
		}
	}
	if _, err := EncodeIMEI("12a"); err == nil {
		t.Fatal("non-digit IMEI encoded")
	}
}

func TestCommandRoundTrip(t *testing.T) {
	b, err := CommandFrame(0x01020304, "TIMER,10#", 0x0009)
	if err != nil {
		t.Fatal(err)
	}
	f, p := decodeOne(t, b)
	if f.Protocol != ServerCommand || p.ServerFlag != 0x01020304 || p.Text != "TIMER,10#" || p.Serial != 9 {
		t.Fatalf("command %+v", p)
	}
	if b[2] != byte(1+1+4+9+4) {
		t.Fatalf("length byte %d", b[2])
	}
	if _, err := CommandFrame(1, string(make([]byte, MaxCommandText+1)), 1); err == nil {
		t.Fatal("over-long command encoded")
	}
}

// FuzzDecode feeds arbitrary bytes, in arbitrary chunks, to the stream decoder and parses every frame:
// nothing panics, every Next call that reports progress consumes bytes, and the buffer stays bounded.
func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(mustHex(f, v.Hex), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		d := Decoder{MaxLength: 512}
		step := int(chunk) + 1
		for i := 0; i < len(data); i += step {
			end := min(i+step, len(data))
			d.Write(data[i:end])
			for calls := 0; ; calls++ {
				before := d.Buffered()
				fr, err := d.Next()
				if errors.Is(err, ErrNeedMore) {
					break
				}
				if d.Buffered() >= before {
					t.Fatalf("Next returned %v without consuming bytes", err)
				}
				if err == nil {
					_, _ = Parse(fr)
				} else if Reason(err) == "" {
					t.Fatalf("error without a reason: %v", err)
				}
			}
			if d.Buffered() > 4+512+2+step {
				t.Fatalf("buffer holds %d bytes", d.Buffered())
			}
		}
		_ = d.End()
	})
}
