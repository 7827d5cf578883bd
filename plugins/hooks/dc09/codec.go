package dc09

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Message IDs (the quoted token of a frame).
const (
	IDSIA  = "SIA-DCS"
	IDCID  = "ADM-CID"
	IDNull = "NULL"
	IDAck  = "ACK"
	IDNak  = "NAK"
	IDDuh  = "DUH"
)

// TimestampLayout is the DC-09 timestamp (always UTC) without its leading '_'.
const TimestampLayout = "15:04:05,01-02-2006"

// MaxFrame bounds what is read as one frame (a DC-09 length field holds at most 0FFF).
const MaxFrame = 4 + 4 + 0xFFF + 2

// Frame is one DC-09 message. Prefix characters ('R', 'L', '#', '[', '_') are not part of the fields.
type Frame struct {
	ID        string // "SIA-DCS", "ADM-CID", "NULL", "ACK", "NAK", "DUH"
	Encrypted bool   // the ID is written with a leading '*' and the data part is AES-CBC encrypted
	Seq       string // four decimal digits, "0001"…"9999" ("0000" in a NAK)
	Receiver  string // R field, omitted when empty
	Line      string // L field, omitted when empty
	Account   string // the account after '#'
	// AccountPrefix is the character before the account: '#' (the default when zero) or 'A', which
	// receivers use in a NAK ("A0").
	AccountPrefix byte
	Data          string    // the content of the first [...] block
	Extended      []string  // further [...] blocks, each without its brackets (e.g. "Xabc")
	Time          time.Time // the timestamp; zero: none (it is mandatory in an encrypted frame)
}

// CRC16 is CRC-16/ARC: polynomial 0x8005 reflected (0xA001), initial value 0, no final xor.
func CRC16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// SeqString formats a sequence number as four digits.
func SeqString(n int) string { return fmt.Sprintf("%04d", n) }

// FormatTimestamp writes t (in UTC) as HH:MM:SS,MM-DD-YYYY.
func FormatTimestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// Encode writes f as a frame: LF, CRC, length, body, CR. With a key (16, 24 or 32 bytes: AES-128/192/256)
// the frame is encrypted; pad supplies the random pad bytes (crypto/rand when nil).
func Encode(f Frame, key []byte, pad io.Reader) ([]byte, error) {
	return encode(f, key, pad, false)
}

func encode(f Frame, key []byte, pad io.Reader, lowerLength bool) ([]byte, error) {
	if f.ID == "" || strings.ContainsAny(f.ID, "\"*") {
		return nil, fmt.Errorf("dc09: bad message id %q", f.ID)
	}
	if len(f.Seq) != 4 || !allDigits(f.Seq) {
		return nil, fmt.Errorf("dc09: sequence %q is not four digits", f.Seq)
	}
	for _, s := range []string{f.Receiver, f.Line, f.Account} {
		if strings.ContainsAny(s, "[]\"#\r\n") {
			return nil, fmt.Errorf("dc09: field %q contains a reserved character", s)
		}
	}
	if strings.ContainsAny(f.Data, "[]\r\n") {
		return nil, fmt.Errorf("dc09: data %q contains a reserved character", f.Data)
	}
	for _, x := range f.Extended {
		if strings.ContainsAny(x, "[]\r\n") {
			return nil, fmt.Errorf("dc09: extended block %q contains a reserved character", x)
		}
	}
	encrypted := key != nil
	if encrypted && f.Time.IsZero() {
		return nil, errors.New("dc09: an encrypted frame needs a timestamp")
	}
	var b strings.Builder
	b.WriteByte('"')
	if encrypted {
		b.WriteByte('*')
	}
	b.WriteString(f.ID)
	b.WriteByte('"')
	b.WriteString(f.Seq)
	if f.Receiver != "" {
		b.WriteString("R" + f.Receiver)
	}
	if f.Line != "" {
		b.WriteString("L" + f.Line)
	}
	if f.AccountPrefix != 0 {
		b.WriteByte(f.AccountPrefix)
	} else {
		b.WriteByte('#')
	}
	b.WriteString(f.Account)
	b.WriteByte('[')
	var tail strings.Builder
	tail.WriteString(f.Data)
	tail.WriteByte(']')
	for _, x := range f.Extended {
		tail.WriteString("[" + x + "]")
	}
	if !f.Time.IsZero() {
		tail.WriteString("_" + FormatTimestamp(f.Time))
	}
	if encrypted {
		ct, err := encrypt(key, tail.String(), pad)
		if err != nil {
			return nil, err
		}
		b.WriteString(ct)
	} else {
		b.WriteString(tail.String())
	}
	body := b.String()
	if len(body) > 0xFFF {
		return nil, fmt.Errorf("dc09: frame body is %d bytes, more than the length field holds", len(body))
	}
	lenFmt := "%04X"
	if lowerLength {
		lenFmt = "%04x"
	}
	return []byte(fmt.Sprintf("\n%04X"+lenFmt+"%s\r", CRC16([]byte(body)), len(body), body)), nil
}

// encrypt pads "|"+tail in front with random bytes (never '|') to a multiple of 16 — at least one pad
// byte — and returns the AES-CBC (zero IV) ciphertext in upper-case hex.
func encrypt(key []byte, tail string, pad io.Reader) (string, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("dc09: key: %w", err)
	}
	if pad == nil {
		pad = rand.Reader
	}
	plain := "|" + tail
	n := aes.BlockSize - len(plain)%aes.BlockSize
	p := make([]byte, n, n+len(plain))
	if _, err := io.ReadFull(pad, p); err != nil {
		return "", fmt.Errorf("dc09: pad: %w", err)
	}
	for i, c := range p {
		if c == '|' {
			p[i] = c ^ 0x01 // the receiver finds the data after the first '|'
		}
	}
	p = append(p, plain...)
	cipher.NewCBCEncrypter(blk, make([]byte, aes.BlockSize)).CryptBlocks(p, p)
	return strings.ToUpper(hex.EncodeToString(p)), nil
}

// decrypt reverses encrypt: it returns the text after the pad and its '|'.
func decrypt(key []byte, hexText string) (string, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	ct, err := hex.DecodeString(hexText)
	if err != nil {
		return "", fmt.Errorf("encrypted part is not hex: %w", err)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return "", fmt.Errorf("encrypted part is %d bytes, not a positive multiple of %d", len(ct), aes.BlockSize)
	}
	cipher.NewCBCDecrypter(blk, make([]byte, aes.BlockSize)).CryptBlocks(ct, ct)
	i := bytes.IndexByte(ct, '|')
	if i < 0 {
		return "", errors.New("no '|' after the pad: wrong key?")
	}
	return string(ct[i+1:]), nil
}

// Parse reads one frame (a leading LF and the trailing CR are optional), checks its length and CRC and,
// when it is encrypted, decrypts it with key.
func Parse(raw []byte, key []byte) (Frame, error) {
	var f Frame
	raw = bytes.TrimLeft(raw, "\n")
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if len(raw) < 9 {
		return f, fmt.Errorf("frame of %d bytes is too short", len(raw))
	}
	crc, err := strconv.ParseUint(string(raw[:4]), 16, 16)
	if err != nil {
		return f, fmt.Errorf("CRC field %q is not hex", raw[:4])
	}
	if raw[4] != '0' {
		return f, fmt.Errorf("length field %q does not start with 0", raw[4:8])
	}
	n, err := strconv.ParseUint(string(raw[4:8]), 16, 16)
	if err != nil {
		return f, fmt.Errorf("length field %q is not hex", raw[4:8])
	}
	body := raw[8:]
	if int(n) != len(body) {
		return f, fmt.Errorf("length field says %d, the body has %d bytes", n, len(body))
	}
	if got := CRC16(body); got != uint16(crc) {
		return f, fmt.Errorf("CRC field says %04X, the body has %04X", crc, got)
	}
	s := string(body)
	if len(s) < 2 || s[0] != '"' {
		return f, errors.New("no quoted message id")
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return f, errors.New("message id is not closed")
	}
	f.ID, s = s[1:1+end], s[2+end:]
	if strings.HasPrefix(f.ID, "*") {
		f.Encrypted, f.ID = true, f.ID[1:]
	}
	if f.ID == "" {
		return f, errors.New("empty message id")
	}
	if len(s) < 4 || !allDigits(s[:4]) {
		return f, errors.New("no four-digit sequence number")
	}
	f.Seq, s = s[:4], s[4:]
	open := strings.IndexByte(s, '[')
	if open < 0 {
		return f, errors.New("no data block")
	}
	head := s[:open]
	sep := strings.IndexByte(head, '#')
	if sep < 0 {
		sep = strings.LastIndexByte(head, 'A') // a NAK's "A0"
	}
	if sep < 0 {
		return f, errors.New("no account ('#' or 'A')")
	}
	f.AccountPrefix, f.Account, s = head[sep], head[sep+1:], s[open+1:]
	head = head[:sep]
	if strings.HasPrefix(head, "R") {
		f.Receiver, head = splitHex(head[1:])
	}
	if strings.HasPrefix(head, "L") {
		f.Line, head = splitHex(head[1:])
	}
	if head != "" {
		return f, fmt.Errorf("unexpected %q before the account", head)
	}
	if f.Encrypted {
		if key == nil {
			return f, errors.New("encrypted frame and no key")
		}
		s, err = decrypt(key, s)
		if err != nil {
			return f, fmt.Errorf("decrypt: %w", err)
		}
	}
	close := strings.IndexByte(s, ']')
	if close < 0 {
		return f, errors.New("data block is not closed")
	}
	f.Data, s = s[:close], s[close+1:]
	for strings.HasPrefix(s, "[") {
		c := strings.IndexByte(s, ']')
		if c < 0 {
			return f, errors.New("extended block is not closed")
		}
		f.Extended, s = append(f.Extended, s[1:c]), s[c+1:]
	}
	if strings.HasPrefix(s, "_") {
		t, err := parseTimestamp(s[1:])
		if err != nil {
			return f, fmt.Errorf("timestamp %q: %v", s[1:], err)
		}
		f.Time, s = t, ""
	}
	if s != "" {
		return f, fmt.Errorf("unexpected %q after the data", s)
	}
	if f.Encrypted && f.Time.IsZero() {
		return f, errors.New("encrypted frame without a timestamp")
	}
	return f, nil
}

// AckKind classifies a receiver's answer.
type AckKind int

const (
	Ack AckKind = iota + 1
	Nak
	Duh
)

func (k AckKind) String() string {
	switch k {
	case Ack:
		return "ACK"
	case Nak:
		return "NAK"
	case Duh:
		return "DUH"
	}
	return "?"
}

// ParseAck reads a receiver's answer: ACK, NAK or DUH. It never panics on any input.
func ParseAck(raw []byte, key []byte) (AckKind, Frame, error) {
	f, err := Parse(raw, key)
	if err != nil {
		return 0, f, err
	}
	switch f.ID {
	case IDAck:
		return Ack, f, nil
	case IDNak:
		return Nak, f, nil
	case IDDuh:
		return Duh, f, nil
	}
	return 0, f, fmt.Errorf("%q is not an answer (ACK, NAK, DUH)", f.ID)
}

func splitHex(s string) (string, string) {
	i := 0
	for i < len(s) && isHex(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// parseTimestamp reads HH:MM:SS,MM-DD-YYYY as UTC. (time.Parse would take the ",MM" as a fraction of a
// second, so the two halves are read apart.)
func parseTimestamp(s string) (time.Time, error) {
	hms, date, ok := strings.Cut(s, ",")
	if !ok || len(hms) != 8 || len(date) != 10 {
		return time.Time{}, errors.New("not HH:MM:SS,MM-DD-YYYY")
	}
	clock, err := time.Parse("15:04:05", hms)
	if err != nil {
		return time.Time{}, err
	}
	day, err := time.Parse("01-02-2006", date)
	if err != nil {
		return time.Time{}, err
	}
	return day.Add(time.Duration(clock.Hour())*time.Hour + time.Duration(clock.Minute())*time.Minute + time.Duration(clock.Second())*time.Second), nil
}
