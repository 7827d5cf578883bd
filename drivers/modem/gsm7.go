package modem

import (
	"errors"
	"unicode/utf16"
)

// The GSM 03.38 default alphabet (TS 23.038 §6.2.1): index = septet value. 0x1B is the escape to the
// extension table.
var gsm7Basic = []rune("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")

// gsm7Ext is the default alphabet extension table: the character of ESC + key.
var gsm7Ext = map[byte]rune{
	0x0A: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2F: '\\', 0x3C: '[', 0x3D: '~', 0x3E: ']', 0x40: '|', 0x65: '€',
}

const gsm7Escape = 0x1B

var (
	gsm7BasicRev = map[rune]byte{}
	gsm7ExtRev   = map[rune]byte{}
)

func init() {
	if len(gsm7Basic) != 128 {
		panic("modem: GSM 7-bit table must have 128 characters")
	}
	for i, r := range gsm7Basic {
		if i != gsm7Escape {
			gsm7BasicRev[r] = byte(i)
		}
	}
	for k, r := range gsm7Ext {
		gsm7ExtRev[r] = k
	}
}

// septetsToText maps septets to text. ESC followed by a key that is not in the extension table shows the
// key's basic character (TS 23.038: "display the default character"); a trailing lone ESC is a space.
func septetsToText(s []byte) string {
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i] & 0x7F
		if c == gsm7Escape {
			if i+1 >= len(s) {
				out = append(out, ' ')
				break
			}
			i++
			k := s[i] & 0x7F
			if r, ok := gsm7Ext[k]; ok {
				out = append(out, r)
			} else if k == gsm7Escape {
				out = append(out, ' ')
			} else {
				out = append(out, gsm7Basic[k])
			}
			continue
		}
		out = append(out, gsm7Basic[c])
	}
	return string(out)
}

// errNotGSM7 says a text holds a character outside the GSM 7-bit alphabet and its extension table.
var errNotGSM7 = errors.New("text has characters outside the GSM 7-bit alphabet")

// textToSeptets maps text to septets, with extension characters as ESC + key.
func textToSeptets(text string) ([]byte, error) {
	out := make([]byte, 0, len(text))
	for _, r := range text {
		if c, ok := gsm7BasicRev[r]; ok {
			out = append(out, c)
		} else if k, ok := gsm7ExtRev[r]; ok {
			out = append(out, gsm7Escape, k)
		} else {
			return nil, errNotGSM7
		}
	}
	return out, nil
}

// packSeptets packs septets into octets, least significant bit first, after fill zero bits (0-6): the
// padding that aligns the text to a septet boundary after a user data header.
func packSeptets(septets []byte, fill int) []byte {
	nbits := fill + 7*len(septets)
	out := make([]byte, (nbits+7)/8)
	pos := fill
	for _, s := range septets {
		v := uint16(s&0x7F) << (pos % 8)
		out[pos/8] |= byte(v)
		if pos/8+1 < len(out) {
			out[pos/8+1] |= byte(v >> 8)
		}
		pos += 7
	}
	return out
}

// unpackSeptets reads n septets starting fill bits into data. It fails when data is too short.
func unpackSeptets(data []byte, n, fill int) ([]byte, error) {
	if n < 0 || fill < 0 || (fill+7*n+7)/8 > len(data) {
		return nil, errors.New("fewer octets than the septet count needs")
	}
	out := make([]byte, n)
	pos := fill
	for i := 0; i < n; i++ {
		v := uint16(data[pos/8])
		if pos/8+1 < len(data) {
			v |= uint16(data[pos/8+1]) << 8
		}
		out[i] = byte(v>>(pos%8)) & 0x7F
		pos += 7
	}
	return out, nil
}

// ucs2ToText decodes big-endian UTF-16 (UCS-2 as sent by phones, surrogate pairs included).
func ucs2ToText(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", errors.New("odd number of octets in UCS-2 text")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return string(utf16.Decode(u)), nil
}

// textToUCS2 encodes text as big-endian UTF-16.
func textToUCS2(text string) []byte {
	u := utf16.Encode([]rune(text))
	out := make([]byte, 0, 2*len(u))
	for _, c := range u {
		out = append(out, byte(c>>8), byte(c))
	}
	return out
}
