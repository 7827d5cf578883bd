package modem

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

type vector struct {
	PDU         string `json:"pdu"`
	Type        string `json:"type"`
	SMSC        string `json:"smsc"`
	Sender      string `json:"sender"`
	Destination string `json:"destination"`
	Time        string `json:"time"`
	Text        string `json:"text"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	raw, err := os.ReadFile("testdata/sms_pdu.json")
	if err != nil {
		t.Fatal(err)
	}
	var v []vector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v) < 5 {
		t.Fatalf("only %d vectors", len(v))
	}
	return v
}

func TestDecodeVectors(t *testing.T) {
	for i, v := range loadVectors(t) {
		m, err := DecodePDU(v.PDU)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if m.Type.String() != v.Type {
			t.Errorf("vector %d: type %s, want %s", i, m.Type, v.Type)
		}
		if v.SMSC != "" && m.SMSC != v.SMSC {
			t.Errorf("vector %d: smsc %q, want %q", i, m.SMSC, v.SMSC)
		}
		want := v.Sender
		if v.Type == "SMS-SUBMIT" {
			want = v.Destination
		}
		if m.Address != want {
			t.Errorf("vector %d: address %q, want %q", i, m.Address, want)
		}
		if v.Time != "" {
			wt, err := time.Parse(time.RFC3339, v.Time)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Time.Equal(wt) || m.Time.Format(time.RFC3339) != v.Time {
				t.Errorf("vector %d: time %s, want %s", i, m.Time.Format(time.RFC3339), v.Time)
			}
		}
		if m.Text != v.Text {
			t.Errorf("vector %d: text %q, want %q", i, m.Text, v.Text)
		}
	}
}

func TestDecodeVectorDetails(t *testing.T) {
	v := loadVectors(t)
	// Vector 3 carries a concatenation header (ref C3, 1 part, part 1) and is not international.
	m, err := DecodePDU(v[3].PDU)
	if err != nil {
		t.Fatal(err)
	}
	if m.Concat == nil || *m.Concat != (Concat{Ref: 0xC3, Total: 1, Seq: 1}) {
		t.Fatalf("concat %+v", m.Concat)
	}
	if want := time.Date(2013, 6, 25, 16, 40, 48, 0, time.FixedZone("", 2*3600)); !m.Time.Equal(want) {
		t.Fatalf("time %v, want %v", m.Time, want)
	}
	// Vector 4 is an SMS-SUBMIT with a status report request and message reference 0x0D.
	s, err := DecodePDU(v[4].PDU)
	if err != nil {
		t.Fatal(err)
	}
	if !s.SRR || s.Reference != 0x0D {
		t.Fatalf("submit SRR %v MR %d", s.SRR, s.Reference)
	}
}

func TestTimeZoneSignAndQuarters(t *testing.T) {
	// 2026-11-26 12:00:00, zone -03:30 (14 quarters, sign bit set): TZ octet tens=1|8 units=4 -> 0x49.
	pdu := "00" + "04" + "0A91" + "7419325476" + "0000" + "62116221000049" + "0141"
	m, err := DecodePDU(pdu)
	if err != nil {
		t.Fatal(err)
	}
	if _, off := m.Time.Zone(); off != -(3*3600 + 1800) {
		t.Fatalf("zone offset %d", off)
	}
	if m.Time.UTC() != time.Date(2026, 11, 26, 15, 30, 0, 0, time.UTC) || m.Text != "A" || m.Address != "+4791234567" {
		t.Fatalf("got %v %q %q", m.Time.UTC(), m.Text, m.Address)
	}
}

func TestAlphanumericSender(t *testing.T) {
	// "Telenor": 7 septets = 49 bits = 13 semi-octets, type D0 (alphanumeric).
	name, _ := textToSeptets("Telenor")
	packed := packSeptets(name, 0)
	pdu := "00" + "04" + "0DD0" + strings.ToUpper(hex.EncodeToString(packed)) + "0000" + "62116221000000" + "0141"
	m, err := DecodePDU(pdu)
	if err != nil {
		t.Fatal(err)
	}
	if m.Address != "Telenor" {
		t.Fatalf("sender %q", m.Address)
	}
}

func TestSeptetPackingWithAndWithoutFill(t *testing.T) {
	text := "hellohello"
	s, err := textToSeptets(text)
	if err != nil {
		t.Fatal(err)
	}
	// The well-known packing of "hellohello" (TS 23.038 example).
	if got := strings.ToUpper(hex.EncodeToString(packSeptets(s, 0))); got != "E8329BFD4697D9EC37" {
		t.Fatalf("packed %s", got)
	}
	for fill := 0; fill < 7; fill++ {
		p := packSeptets(s, fill)
		back, err := unpackSeptets(p, len(s), fill)
		if err != nil || septetsToText(back) != text {
			t.Fatalf("fill %d: %q %v", fill, septetsToText(back), err)
		}
	}
	// A 6-octet header (48 bits) is followed by 1 fill bit so the text starts on septet 7.
	if got := packSeptets([]byte{0x41 & 0x7F}, 1); got[0] != 0x82 {
		t.Fatalf("fill bit packing % X", got)
	}
	if _, err := unpackSeptets([]byte{0x01}, 3, 0); err == nil {
		t.Fatal("unpacking beyond the data succeeded")
	}
}

func TestExtensionCharacters(t *testing.T) {
	text := "{}[]~\\|^€ and \f"
	s, err := textToSeptets(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2*10+5 {
		t.Fatalf("%d septets, want every extension char as ESC + key", len(s))
	}
	if got := septetsToText(s); got != text {
		t.Fatalf("round trip %q", got)
	}
	// ESC followed by a key outside the table shows the basic character; a lone trailing ESC is a space.
	if got := septetsToText([]byte{0x1B, 0x41, 0x1B}); got != "A " {
		t.Fatalf("got %q", got)
	}
}

func TestUCS2SurrogatePairs(t *testing.T) {
	text := "Hei 😀 Ærlig"
	b := textToUCS2(text)
	if len(b) != 2*(len([]rune(text))+1) {
		t.Fatalf("%d octets: the emoji must take a surrogate pair", len(b))
	}
	got, err := ucs2ToText(b)
	if err != nil || got != text {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := ucs2ToText([]byte{0, 0x41, 0}); err == nil {
		t.Fatal("odd length accepted")
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	long7 := strings.Repeat("lat:59.9105 {x} ", 15) // 240 characters, extension chars included
	longU := strings.Repeat("Åpne døra 😀 ", 12)
	cases := []struct {
		text  string
		enc   Encoding
		parts int
	}{
		{"Test2", GSM7, 1},
		{"fix030s***n123456", GSM7, 1},
		{"Gå inn! €[]", GSM7, 1},
		{"Привет", UCS2, 1},
		{"😀😀", UCS2, 1},
		{strings.Repeat("a", 160), GSM7, 1},
		{long7, GSM7, 2},
		{longU, UCS2, 0},
	}
	for _, c := range cases {
		pdus, err := EncodeSubmit("+4791234567", c.text, SubmitOptions{StatusReport: true, ConcatRef: 7, SMSC: "+4790002100"})
		if err != nil {
			t.Fatal(err)
		}
		if c.parts > 0 && len(pdus) != c.parts {
			t.Fatalf("%q: %d parts, want %d", c.text, len(pdus), c.parts)
		}
		var sb strings.Builder
		for i, p := range pdus {
			m, err := DecodePDU(p.Hex)
			if err != nil {
				t.Fatalf("%q part %d: %v", c.text, i, err)
			}
			raw, _ := hex.DecodeString(p.Hex)
			if p.TPDULen != len(raw)-1-int(raw[0]) {
				t.Fatalf("tpdu length %d, pdu %d octets with smsc %d", p.TPDULen, len(raw), raw[0])
			}
			if m.Type != Submit || !m.SRR || m.Address != "+4791234567" || m.SMSC != "+4790002100" || m.Encoding != c.enc {
				t.Fatalf("%q: %+v", c.text, m)
			}
			if len(pdus) > 1 && (m.Concat == nil || m.Concat.Seq != i+1 || m.Concat.Total != len(pdus) || m.Concat.Ref != 7) {
				t.Fatalf("part %d concat %+v", i, m.Concat)
			}
			sb.WriteString(m.Text)
		}
		if sb.String() != c.text {
			t.Fatalf("round trip %q, want %q", sb.String(), c.text)
		}
	}
	if p, _ := EncodeSubmit("91234567", "x", SubmitOptions{}); !strings.HasPrefix(p[0].Hex, "001100088119325476") {
		t.Fatalf("national, no SMSC: %s", p[0].Hex)
	}
	if _, err := EncodeSubmit("+47abc", "x", SubmitOptions{}); err == nil {
		t.Fatal("letters in a number accepted")
	}
}

func TestStatusReport(t *testing.T) {
	pdu := StatusReportPDU(0x2A, "+4791234567", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), 0x00)
	m, err := DecodePDU(pdu)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != StatusReport || m.Reference != 0x2A || m.Address != "+4791234567" || !m.Delivered() {
		t.Fatalf("%+v", m)
	}
	m2, _ := DecodePDU(StatusReportPDU(1, "+4791234567", time.Now(), 0x41))
	if m2.Delivered() || m2.Pending() {
		t.Fatalf("status 41 is a permanent failure: %+v", m2)
	}
}

func TestMalformedPDUsNameTheField(t *testing.T) {
	good := loadVectors(t)[0].PDU
	cases := []struct {
		pdu, field, reason string
	}{
		{"zz", "pdu", ReasonHex},
		{"", "smsc length", ReasonTruncated},
		{"0C91", "smsc length", ReasonAddress},
		{"0691722819", "smsc", ReasonTruncated},
		{"00", "first octet", ReasonTruncated},
		{"0003", "first octet", ReasonType},
		{"00040B91722821", "originating address", ReasonTruncated},
		{"00041591", "originating address", ReasonAddress},
		{"00040B917228214365F70000", "scts", ReasonTruncated},
		{"00040B917228214365F70000AA30805120618005D4F29C2E03", "scts", ReasonTimestamp},
		{"00040B917228214365F70000311380512061800541", "scts", ReasonTimestamp},
		{"00040B917228214365F70024313080512061800541", "dcs", ReasonDCS},
		{"00040B917228214365F7000031308051206180", "udl", ReasonTruncated},
		{"00040B917228214365F7000031308051206180A1", "udl", ReasonUserData},
		{"00040B917228214365F700003130805120618005D4F2", "user data", ReasonTruncated},
		{"00440B917228214365F700003130805120618002", "user data", ReasonTruncated},
		{"00440B917228214365F70000313080512061800207FF", "udh", ReasonUDH},
		{"00440B917228214365F7000031308051206180090600050300010141", "udh", ReasonUDH},
		{"00440B917228214365F700003130805120618008050003C3020341", "udh", ReasonUDH},
		{"00040B917228214365F7000831308051206180034100FF", "user data", ReasonUserData},
		{good[:len(good)-4], "user data", ReasonTruncated},
	}
	for _, c := range cases {
		_, err := DecodePDU(c.pdu)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: err %v, want a *DecodeError", c.pdu, err)
			continue
		}
		if de.Field != c.field || de.Reason != c.reason || !strings.Contains(de.Error(), "octet") {
			t.Errorf("%s: %v (field %q reason %q), want field %q reason %q", c.pdu, err, de.Field, de.Reason, c.field, c.reason)
		}
	}
}
