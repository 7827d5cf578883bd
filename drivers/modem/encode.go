package modem

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// SubmitOptions tune EncodeSubmit.
type SubmitOptions struct {
	// SMSC is the service centre number put in the PDU; "" lets the modem use the SIM's (the PDU starts
	// with 00).
	SMSC string
	// StatusReport sets TP-SRR: the network sends an SMS-STATUS-REPORT once the message is delivered.
	StatusReport bool
	// ConcatRef is the 8-bit reference of a message that needs several parts.
	ConcatRef uint8
}

// SubmitPDU is one SMS-SUBMIT ready for AT+CMGS: Hex is the whole PDU (SMSC part included) and TPDULen the
// length AT+CMGS wants (octets after the SMSC part).
type SubmitPDU struct {
	Hex     string
	TPDULen int
}

// Single-part and per-part limits (TS 23.040): 160 septets or 140 octets; a 6-octet concatenation header
// leaves 153 septets or 134 octets (67 UCS-2 code units).
const (
	maxSeptets       = 160
	maxSeptetsPart   = 153
	maxUCS2Units     = 70
	maxUCS2UnitsPart = 67
	maxParts         = 255
)

// EncodeSubmit encodes text to dest as one SMS-SUBMIT, or as several concatenated ones when it is too long
// for one. GSM 7-bit is used when every character is in the default alphabet or its extension table,
// UCS-2 otherwise. The validity period is relative, 24 hours.
func EncodeSubmit(dest, text string, o SubmitOptions) ([]SubmitPDU, error) {
	da, err := encodeAddress(dest)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", dest, err)
	}
	var smsc []byte
	if o.SMSC != "" {
		a, err := encodeAddress(o.SMSC)
		if err != nil {
			return nil, fmt.Errorf("smsc %q: %w", o.SMSC, err)
		}
		// The SMSC field counts octets (type included), not digits.
		smsc = append([]byte{byte(len(a) - 1)}, a[1:]...)
	} else {
		smsc = []byte{0}
	}
	var parts [][]byte // septets (GSM7) or UCS-2 octets, one slice per part
	dcs := byte(0x00)
	if septets, err := textToSeptets(text); err == nil {
		if len(septets) <= maxSeptets {
			parts = [][]byte{septets}
		} else {
			for len(septets) > 0 {
				n := min(maxSeptetsPart, len(septets))
				if septets[n-1] == gsm7Escape && n < len(septets) {
					n-- // never split an escape from its key
				}
				parts = append(parts, septets[:n])
				septets = septets[n:]
			}
		}
	} else {
		dcs = 0x08
		units := utf16.Encode([]rune(text))
		if len(units) <= maxUCS2Units {
			parts = [][]byte{textToUCS2(text)}
		} else {
			for len(units) > 0 {
				n := min(maxUCS2UnitsPart, len(units))
				if utf16.IsSurrogate(rune(units[n-1])) && units[n-1] < 0xDC00 && n < len(units) {
					n-- // never split a surrogate pair
				}
				b := make([]byte, 0, 2*n)
				for _, u := range units[:n] {
					b = append(b, byte(u>>8), byte(u))
				}
				parts = append(parts, b)
				units = units[n:]
			}
		}
	}
	if len(parts) > maxParts {
		return nil, errors.New("text too long: more than 255 parts")
	}
	out := make([]SubmitPDU, 0, len(parts))
	for i, p := range parts {
		fo := byte(0x01 | 0x10) // SMS-SUBMIT, relative validity period
		if o.StatusReport {
			fo |= 0x20
		}
		var udh []byte
		if len(parts) > 1 {
			fo |= 0x40
			udh = []byte{0x05, 0x00, 0x03, o.ConcatRef, byte(len(parts)), byte(i + 1)}
		}
		tpdu := []byte{fo, 0x00} // TP-MR 0: the modem assigns the reference
		tpdu = append(tpdu, da...)
		tpdu = append(tpdu, 0x00, dcs, 0xA7) // PID, DCS, VP = 24 h
		if dcs == 0x00 {
			fill := 0
			skip := 0
			if len(udh) > 0 {
				skip = (len(udh)*8 + 6) / 7
				fill = skip*7 - len(udh)*8
			}
			packed := packSeptets(p, fill)
			tpdu = append(tpdu, byte(skip+len(p)))
			tpdu = append(tpdu, udh...)
			tpdu = append(tpdu, packed...)
		} else {
			tpdu = append(tpdu, byte(len(udh)+len(p)))
			tpdu = append(tpdu, udh...)
			tpdu = append(tpdu, p...)
		}
		out = append(out, SubmitPDU{
			Hex:     strings.ToUpper(hex.EncodeToString(append(append([]byte(nil), smsc...), tpdu...))),
			TPDULen: len(tpdu),
		})
	}
	return out, nil
}

// encodeAddress encodes a phone number as TP address: digit count, type of address, swapped semi-octets.
// "+47..." is international (type 91), other digit strings unknown/ISDN (type 81).
func encodeAddress(num string) ([]byte, error) {
	toa := byte(0x81)
	digits := num
	if strings.HasPrefix(num, "+") {
		toa, digits = 0x91, num[1:]
	}
	if digits == "" || len(digits) > 20 {
		return nil, errors.New("must have 1 to 20 digits")
	}
	out := []byte{byte(len(digits)), toa}
	for i := 0; i < len(digits); i += 2 {
		lo, err := semiOctet(digits[i])
		if err != nil {
			return nil, err
		}
		hi := byte(0x0F)
		if i+1 < len(digits) {
			if hi, err = semiOctet(digits[i+1]); err != nil {
				return nil, err
			}
		}
		out = append(out, hi<<4|lo)
	}
	return out, nil
}

func semiOctet(c byte) (byte, error) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', nil
	case c == '*':
		return 0x0A, nil
	case c == '#':
		return 0x0B, nil
	}
	return 0, fmt.Errorf("%q is not a digit", c)
}
