package modem

import (
	"errors"
	"testing"
)

// FuzzDecodePDU: no input makes the decoder panic, every error is a *DecodeError, and a decoded
// SMS-DELIVER's text re-encodes and decodes to the same text.
func FuzzDecodePDU(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.PDU)
	}
	f.Fuzz(func(t *testing.T, pdu string) {
		m, err := DecodePDU(pdu)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Field == "" || de.Reason == "" {
				t.Fatalf("error %v is not a *DecodeError naming field and reason", err)
			}
			return
		}
		if m.Type == Deliver && m.Text != "" && len(m.Text) < 300 {
			parts, err := EncodeSubmit("+4791234567", m.Text, SubmitOptions{})
			if err != nil {
				t.Fatalf("re-encoding %q: %v", m.Text, err)
			}
			got := ""
			for _, p := range parts {
				back, err := DecodePDU(p.Hex)
				if err != nil {
					t.Fatalf("decoding the encoder's own PDU %s: %v", p.Hex, err)
				}
				got += back.Text
			}
			// Unpaired surrogates become U+FFFD on the first decode, so the texts compare equal.
			if got != m.Text {
				t.Fatalf("round trip %q -> %q", m.Text, got)
			}
		}
	})
}

// FuzzParsePositionText: no input makes the parser panic, and what it accepts is a valid coordinate.
func FuzzParsePositionText(f *testing.F) {
	for _, s := range []string{
		"lat:59.910500 long:10.758000 speed:0.00 T:26/11/26 12:00 bat:80%",
		"lat: 59.9105 lon: 10.758",
		"http://maps.google.com/maps?q=59.9105,10.758",
		"Lat:N59.91050,Lon:E10.75800",
	} {
		f.Add(s)
	}
	for _, v := range loadVectors(f) {
		f.Add(v.Text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePositionText(text)
		if err != nil {
			if !errors.Is(err, ErrNoPosition) {
				t.Fatalf("error %v is not ErrNoPosition", err)
			}
			return
		}
		if p.Lat < -90 || p.Lat > 90 || p.Lon < -180 || p.Lon > 180 || (p.Lat == 0 && p.Lon == 0) {
			t.Fatalf("accepted %v, %v", p.Lat, p.Lon)
		}
		if p.BatteryPct != nil && (*p.BatteryPct < 0 || *p.BatteryPct > 100) {
			t.Fatalf("battery %d", *p.BatteryPct)
		}
	})
}
