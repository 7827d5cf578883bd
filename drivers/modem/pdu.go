package modem

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MessageType is the TP-MTI of a PDU as seen by the modem (the mobile station).
type MessageType int

const (
	// Deliver is an SMS-DELIVER: a message received from a device.
	Deliver MessageType = iota
	// Submit is an SMS-SUBMIT: a message to send (or one stored in the SIM's sent folder).
	Submit
	// StatusReport is an SMS-STATUS-REPORT: the delivery report of a message sent with SRR set.
	StatusReport
)

func (t MessageType) String() string {
	switch t {
	case Deliver:
		return "SMS-DELIVER"
	case Submit:
		return "SMS-SUBMIT"
	case StatusReport:
		return "SMS-STATUS-REPORT"
	}
	return fmt.Sprintf("MessageType(%d)", int(t))
}

// Encoding is the alphabet of the user data (from the DCS).
type Encoding int

const (
	GSM7 Encoding = iota
	Data8
	UCS2
)

// Concat is a concatenated-message information element (IE 0x00 with an 8-bit reference, IE 0x08 with a
// 16-bit reference).
type Concat struct {
	Ref   uint16
	Total int // number of parts
	Seq   int // this part, from 1
}

// Message is a decoded PDU.
type Message struct {
	Type MessageType
	SMSC string // service centre address ("" when the PDU carries none)
	// Address is the originating address of an SMS-DELIVER, the destination of an SMS-SUBMIT, the
	// recipient of an SMS-STATUS-REPORT: "+4791234567" (international), "91234567" (national or unknown),
	// or the alphanumeric sender name.
	Address string
	// Time is the service centre time stamp (SCTS) of an SMS-DELIVER or SMS-STATUS-REPORT, in the zone
	// it carries.
	Time     time.Time
	Encoding Encoding
	Text     string
	Concat   *Concat // nil for a single-part message
	// Reference is the message reference (TP-MR) of an SMS-SUBMIT or SMS-STATUS-REPORT.
	Reference uint8
	// SRR: the sender requested a status report (SMS-SUBMIT), or the report answers one (status report).
	SRR bool
	// Discharge is the time of the status (SMS-STATUS-REPORT).
	Discharge time.Time
	// Status is TP-ST of a status report: 0x00-0x1F delivered, 0x20-0x3F still trying, 0x40 and above failed.
	Status uint8
}

// Delivered reports whether a status report says the message reached its recipient.
func (m *Message) Delivered() bool { return m.Type == StatusReport && m.Status < 0x20 }

// Pending reports whether a status report says the service centre is still trying.
func (m *Message) Pending() bool {
	return m.Type == StatusReport && m.Status >= 0x20 && m.Status < 0x40
}

// DecodeError says which field of a PDU could not be decoded and at which octet offset (in the PDU
// including the SMSC part). Reason is a short stable word for metrics.
type DecodeError struct {
	Field  string
	Offset int
	Reason string
	Msg    string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("pdu: %s at octet %d: %s", e.Field, e.Offset, e.Msg)
}

// Reasons of DecodeError.
const (
	ReasonHex       = "hex"
	ReasonTruncated = "truncated"
	ReasonType      = "type"
	ReasonAddress   = "address"
	ReasonTimestamp = "timestamp"
	ReasonDCS       = "dcs"
	ReasonUDH       = "udh"
	ReasonUserData  = "user_data"
)

type reader struct {
	b   []byte
	off int
}

func (r *reader) errf(field, reason, format string, args ...any) *DecodeError {
	return &DecodeError{Field: field, Offset: r.off, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

func (r *reader) take(n int, field string) ([]byte, error) {
	if n < 0 || r.off+n > len(r.b) {
		return nil, r.errf(field, ReasonTruncated, "needs %d octets, %d left", n, len(r.b)-r.off)
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v, nil
}

func (r *reader) byte1(field string) (byte, error) {
	v, err := r.take(1, field)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// DecodePDU decodes a PDU as the modem gives it in PDU mode (+CMGR, +CMGL): hex, starting with the SMSC
// address. It never panics; every error is a *DecodeError.
func DecodePDU(hexPDU string) (*Message, error) {
	b, err := hex.DecodeString(strings.TrimSpace(hexPDU))
	if err != nil {
		return nil, &DecodeError{Field: "pdu", Offset: 0, Reason: ReasonHex, Msg: "not hexadecimal: " + err.Error()}
	}
	return DecodeBytes(b, true)
}

// DecodeBytes decodes a binary PDU; withSMSC says whether it starts with the SMSC address.
func DecodeBytes(b []byte, withSMSC bool) (*Message, error) {
	r := &reader{b: b}
	m := &Message{}
	if withSMSC {
		n, err := r.byte1("smsc length")
		if err != nil {
			return nil, err
		}
		if n > 0 {
			if n > 11 {
				return nil, &DecodeError{Field: "smsc length", Offset: 0, Reason: ReasonAddress, Msg: fmt.Sprintf("%d octets, at most 11", n)}
			}
			start := r.off
			raw, err := r.take(int(n), "smsc")
			if err != nil {
				return nil, err
			}
			m.SMSC, err = decodeAddressValue(raw[0], raw[1:], 2*(int(n)-1))
			if err != nil {
				return nil, &DecodeError{Field: "smsc", Offset: start, Reason: ReasonAddress, Msg: err.Error()}
			}
		}
	}
	fo, err := r.byte1("first octet")
	if err != nil {
		return nil, err
	}
	udhi := fo&0x40 != 0
	switch fo & 0x03 {
	case 0x00:
		m.Type = Deliver
		if m.Address, err = r.address("originating address"); err != nil {
			return nil, err
		}
		if _, err = r.byte1("pid"); err != nil {
			return nil, err
		}
		dcs, err := r.byte1("dcs")
		if err != nil {
			return nil, err
		}
		if m.Encoding, err = encodingOf(dcs); err != nil {
			return nil, r.errf("dcs", ReasonDCS, "%v", err)
		}
		if m.Time, err = r.timestamp("scts"); err != nil {
			return nil, err
		}
		if err := r.userData(m, udhi); err != nil {
			return nil, err
		}
	case 0x01:
		m.Type = Submit
		m.SRR = fo&0x20 != 0
		if m.Reference, err = r.byte1("message reference"); err != nil {
			return nil, err
		}
		if m.Address, err = r.address("destination address"); err != nil {
			return nil, err
		}
		if _, err = r.byte1("pid"); err != nil {
			return nil, err
		}
		dcs, err := r.byte1("dcs")
		if err != nil {
			return nil, err
		}
		if m.Encoding, err = encodingOf(dcs); err != nil {
			return nil, r.errf("dcs", ReasonDCS, "%v", err)
		}
		switch (fo >> 3) & 0x03 {
		case 0x02: // relative
			_, err = r.take(1, "validity period")
		case 0x01, 0x03: // enhanced, absolute
			_, err = r.take(7, "validity period")
		}
		if err != nil {
			return nil, err
		}
		if err := r.userData(m, udhi); err != nil {
			return nil, err
		}
	case 0x02:
		m.Type = StatusReport
		m.SRR = fo&0x20 != 0
		if m.Reference, err = r.byte1("message reference"); err != nil {
			return nil, err
		}
		if m.Address, err = r.address("recipient address"); err != nil {
			return nil, err
		}
		if m.Time, err = r.timestamp("scts"); err != nil {
			return nil, err
		}
		if m.Discharge, err = r.timestamp("discharge time"); err != nil {
			return nil, err
		}
		if m.Status, err = r.byte1("status"); err != nil {
			return nil, err
		}
		// TP-PI, PID, DCS and user data may follow; the report needs none of them.
	default:
		return nil, &DecodeError{Field: "first octet", Offset: r.off - 1, Reason: ReasonType, Msg: fmt.Sprintf("reserved message type (first octet %02X)", fo)}
	}
	return m, nil
}

func encodingOf(dcs byte) (Encoding, error) {
	switch {
	case dcs&0xC0 == 0x00 || dcs&0xC0 == 0x40: // general data coding (0x40: marked for automatic deletion)
		if dcs&0x20 != 0 {
			return 0, fmt.Errorf("compressed text (DCS %02X) is not supported", dcs)
		}
		switch (dcs >> 2) & 0x03 {
		case 0:
			return GSM7, nil
		case 1:
			return Data8, nil
		case 2:
			return UCS2, nil
		}
		return 0, fmt.Errorf("reserved alphabet (DCS %02X)", dcs)
	case dcs&0xF0 == 0xC0 || dcs&0xF0 == 0xD0: // message waiting, default alphabet
		return GSM7, nil
	case dcs&0xF0 == 0xE0: // message waiting, UCS-2
		return UCS2, nil
	case dcs&0xF0 == 0xF0:
		if dcs&0x04 != 0 {
			return Data8, nil
		}
		return GSM7, nil
	}
	return 0, fmt.Errorf("reserved coding group (DCS %02X)", dcs)
}

// address reads a TP address: length in semi-octets, type of address, value.
func (r *reader) address(field string) (string, error) {
	start := r.off
	n, err := r.byte1(field + " length")
	if err != nil {
		return "", err
	}
	if n > 20 {
		return "", &DecodeError{Field: field, Offset: start, Reason: ReasonAddress, Msg: fmt.Sprintf("%d digits, at most 20", n)}
	}
	toa, err := r.byte1(field + " type")
	if err != nil {
		return "", err
	}
	raw, err := r.take((int(n)+1)/2, field)
	if err != nil {
		return "", err
	}
	s, err := decodeAddressValue(toa, raw, int(n))
	if err != nil {
		return "", &DecodeError{Field: field, Offset: start, Reason: ReasonAddress, Msg: err.Error()}
	}
	return s, nil
}

// decodeAddressValue decodes digits semi-octets (or an alphanumeric name) of type toa.
func decodeAddressValue(toa byte, raw []byte, digits int) (string, error) {
	ton := (toa >> 4) & 0x07
	if ton == 0x05 { // alphanumeric: GSM 7-bit packed
		septets, err := unpackSeptets(raw, digits*4/7, 0)
		if err != nil {
			return "", err
		}
		return septetsToText(septets), nil
	}
	var sb strings.Builder
	if ton == 0x01 {
		sb.WriteByte('+')
	}
	const semi = "0123456789*#abc"
	for i := 0; i < digits; i++ {
		b := raw[i/2]
		d := b & 0x0F
		if i%2 == 1 {
			d = b >> 4
		}
		if d == 0x0F {
			if i == digits-1 {
				break // filler
			}
			return "", fmt.Errorf("filler F inside the number at digit %d", i+1)
		}
		sb.WriteByte(semi[d])
	}
	return sb.String(), nil
}

func bcd(b byte) (int, bool) {
	lo, hi := int(b&0x0F), int(b>>4)
	return lo*10 + hi, lo < 10 && hi < 10
}

// timestamp reads 7 octets of swapped semi-octets: YY MM DD hh mm ss TZ, TZ in quarter hours with the sign
// in bit 3 of the first (tens) semi-octet.
func (r *reader) timestamp(field string) (time.Time, error) {
	start := r.off
	b, err := r.take(7, field)
	if err != nil {
		return time.Time{}, err
	}
	var v [6]int
	for i := 0; i < 6; i++ {
		n, ok := bcd(b[i])
		if !ok {
			return time.Time{}, &DecodeError{Field: field, Offset: start + i, Reason: ReasonTimestamp, Msg: fmt.Sprintf("octet %02X is not two decimal digits", b[i])}
		}
		v[i] = n
	}
	tzTens, tzUnits := int(b[6]&0x07), int(b[6]>>4)
	if tzUnits > 9 {
		return time.Time{}, &DecodeError{Field: field, Offset: start + 6, Reason: ReasonTimestamp, Msg: fmt.Sprintf("time zone octet %02X is not decimal", b[6])}
	}
	q := tzTens*10 + tzUnits
	if q > 56 { // ±14 h
		return time.Time{}, &DecodeError{Field: field, Offset: start + 6, Reason: ReasonTimestamp, Msg: fmt.Sprintf("time zone of %d quarter hours", q)}
	}
	if b[6]&0x08 != 0 {
		q = -q
	}
	if v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59 {
		return time.Time{}, &DecodeError{Field: field, Offset: start, Reason: ReasonTimestamp,
			Msg: fmt.Sprintf("no such time %02d-%02d-%02d %02d:%02d:%02d", v[0], v[1], v[2], v[3], v[4], v[5])}
	}
	zone := time.FixedZone("", q*15*60)
	t := time.Date(2000+v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], 0, zone)
	if t.Day() != v[2] {
		return time.Time{}, &DecodeError{Field: field, Offset: start + 2, Reason: ReasonTimestamp, Msg: fmt.Sprintf("day %d does not exist in %04d-%02d", v[2], 2000+v[0], v[1])}
	}
	return t, nil
}

// userData reads TP-UDL and TP-UD, with its header when udhi is set.
func (r *reader) userData(m *Message, udhi bool) error {
	udlOff := r.off
	udl, err := r.byte1("udl")
	if err != nil {
		return err
	}
	var octets int
	if m.Encoding == GSM7 {
		if udl > 160 {
			return &DecodeError{Field: "udl", Offset: udlOff, Reason: ReasonUserData, Msg: fmt.Sprintf("%d septets, at most 160", udl)}
		}
		octets = (int(udl)*7 + 7) / 8
	} else {
		if udl > 140 {
			return &DecodeError{Field: "udl", Offset: udlOff, Reason: ReasonUserData, Msg: fmt.Sprintf("%d octets, at most 140", udl)}
		}
		octets = int(udl)
	}
	udOff := r.off
	ud, err := r.take(octets, "user data")
	if err != nil {
		return err
	}
	headerLen := 0 // octets of the header including UDHL
	if udhi {
		if len(ud) == 0 {
			return &DecodeError{Field: "udh", Offset: udOff, Reason: ReasonUDH, Msg: "UDHI set but no user data"}
		}
		headerLen = int(ud[0]) + 1
		if headerLen > len(ud) {
			return &DecodeError{Field: "udh", Offset: udOff, Reason: ReasonUDH, Msg: fmt.Sprintf("header of %d octets in %d octets of user data", headerLen, len(ud))}
		}
		c, err := parseUDH(ud[1:headerLen], udOff+1)
		if err != nil {
			return err
		}
		m.Concat = c
	}
	switch m.Encoding {
	case GSM7:
		skip := (headerLen*8 + 6) / 7 // septets the header occupies, fill bits included
		n := int(udl) - skip
		if n < 0 {
			return &DecodeError{Field: "udl", Offset: udlOff, Reason: ReasonUserData, Msg: fmt.Sprintf("%d septets cannot hold a %d-octet header", udl, headerLen)}
		}
		septets, err := unpackSeptets(ud, n, skip*7)
		if err != nil {
			return &DecodeError{Field: "user data", Offset: udOff, Reason: ReasonUserData, Msg: err.Error()}
		}
		m.Text = septetsToText(septets)
	case UCS2:
		t, err := ucs2ToText(ud[headerLen:])
		if err != nil {
			return &DecodeError{Field: "user data", Offset: udOff + headerLen, Reason: ReasonUserData, Msg: err.Error()}
		}
		m.Text = t
	case Data8:
		m.Text = data8Text(ud[headerLen:])
	}
	return nil
}

// data8Text reads 8-bit data as text: UTF-8 when it is valid UTF-8, else Latin-1.
func data8Text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// parseUDH walks the information elements; it returns the concatenation IE if there is one.
func parseUDH(h []byte, off int) (*Concat, error) {
	var c *Concat
	for i := 0; i < len(h); {
		if i+2 > len(h) {
			return nil, &DecodeError{Field: "udh", Offset: off + i, Reason: ReasonUDH, Msg: "information element cut short"}
		}
		id, n := h[i], int(h[i+1])
		if i+2+n > len(h) {
			return nil, &DecodeError{Field: "udh", Offset: off + i, Reason: ReasonUDH, Msg: fmt.Sprintf("element %02X of %d octets overruns the header", id, n)}
		}
		v := h[i+2 : i+2+n]
		switch id {
		case 0x00, 0x08:
			want := 3
			if id == 0x08 {
				want = 4
			}
			if n != want {
				return nil, &DecodeError{Field: "udh", Offset: off + i, Reason: ReasonUDH, Msg: fmt.Sprintf("concatenation element %02X has %d octets, want %d", id, n, want)}
			}
			cc := &Concat{Ref: uint16(v[0]), Total: int(v[1]), Seq: int(v[2])}
			if id == 0x08 {
				cc = &Concat{Ref: uint16(v[0])<<8 | uint16(v[1]), Total: int(v[2]), Seq: int(v[3])}
			}
			if cc.Total == 0 || cc.Seq == 0 || cc.Seq > cc.Total {
				return nil, &DecodeError{Field: "udh", Offset: off + i, Reason: ReasonUDH, Msg: fmt.Sprintf("part %d of %d", cc.Seq, cc.Total)}
			}
			c = cc
		}
		i += 2 + n
	}
	return c, nil
}

// StatusReportPDU builds an SMS-STATUS-REPORT PDU (without SMSC address: "00" first) for message
// reference mr to recipient, with status st. Tests and modem emulators use it.
func StatusReportPDU(mr uint8, recipient string, at time.Time, st uint8) string {
	a, err := encodeAddress(recipient)
	if err != nil {
		a = []byte{0, 0x81}
	}
	b := []byte{0x00, 0x06, mr}
	b = append(b, a...)
	ts := encodeTimestamp(at)
	b = append(b, ts...)
	b = append(b, ts...)
	b = append(b, st)
	return strings.ToUpper(hex.EncodeToString(b))
}

// DeliverPDU builds an SMS-DELIVER PDU (without SMSC address) from sender with text, for tests and
// emulators. udh, when not nil, is the user data header without its length octet. GSM 7-bit when the text
// fits the alphabet, else UCS-2.
func DeliverPDU(sender string, at time.Time, text string, udh []byte) (string, error) {
	a, err := encodeAddress(sender)
	if err != nil {
		return "", err
	}
	fo := byte(0x04) // SMS-DELIVER, no more messages to send
	if udh != nil {
		fo |= 0x40
		udh = append([]byte{byte(len(udh))}, udh...)
	}
	b := append([]byte{0x00, fo}, a...)
	septets, err := textToSeptets(text)
	if err == nil {
		b = append(b, 0x00, 0x00)
		b = append(b, encodeTimestamp(at)...)
		skip := (len(udh)*8 + 6) / 7
		b = append(b, byte(skip+len(septets)))
		b = append(b, udh...)
		b = append(b, packSeptets(septets, skip*7-len(udh)*8)...)
	} else {
		u := textToUCS2(text)
		b = append(b, 0x00, 0x08)
		b = append(b, encodeTimestamp(at)...)
		b = append(b, byte(len(udh)+len(u)))
		b = append(b, udh...)
		b = append(b, u...)
	}
	return strings.ToUpper(hex.EncodeToString(b)), nil
}

func encodeTimestamp(t time.Time) []byte {
	_, off := t.Zone()
	q := off / (15 * 60)
	sign := byte(0)
	if q < 0 {
		q, sign = -q, 0x08
	}
	sw := func(n int) byte { return byte(n%10)<<4 | byte(n/10%10) }
	return []byte{sw(t.Year() % 100), sw(int(t.Month())), sw(t.Day()), sw(t.Hour()), sw(t.Minute()), sw(t.Second()),
		sw(q) | sign}
}
