// Package protocol encodes and decodes the Concox GT06 binary protocol: framing (short 0x7878 and long
// 0x7979 frames, CRC-ITU), a stream Decoder that resynchronises after a bad frame, and the packets the GT06
// driver uses (login 0x01, location 0x12/0x22, status 0x13, alarm 0x16, command reply 0x15, server command
// 0x80). It is pure code: no I/O, no clock, no logging.
//
// Frame layout:
//
//	short: 78 78 | len (1) | protocol | content | serial (2) | CRC (2) | 0D 0A
//	long:  79 79 | len (2) | protocol | content | serial (2) | CRC (2) | 0D 0A
//
// len counts protocol..CRC (content + 5). The CRC is CRC-ITU (CRC-16/X-25: poly 0x1021 reflected,
// init 0xFFFF, xorout 0xFFFF) over len..serial. Multi-byte fields are big-endian.
package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Protocol numbers.
const (
	Login         byte = 0x01
	Location      byte = 0x12 // GPS + LBS
	Status        byte = 0x13 // status / heartbeat
	CommandReply  byte = 0x15 // the terminal's answer to a server command (text)
	Alarm         byte = 0x16 // GPS + LBS + status
	Location22    byte = 0x22 // GPS + LBS (newer firmware)
	ServerCommand byte = 0x80
)

// Reasons a frame or packet is rejected; they label the driver's metrics.
const (
	ReasonCRC             = "crc"              // checksum mismatch
	ReasonStop            = "stop"             // no 0D 0A where the length says the frame ends
	ReasonLength          = "length"           // length field below the minimum or above MaxLength
	ReasonUnknownProtocol = "unknown_protocol" // a well-formed frame of a type this package does not decode
	ReasonTruncated       = "truncated"        // content shorter than its type requires, or a stream ended mid-frame
	ReasonInvalid         = "invalid"          // content of the right size with impossible values (date, BCD, coordinates)
	ReasonSync            = "sync"             // bytes before a start marker, skipped
)

// MinLength is the smallest length field: protocol (1) + serial (2) + CRC (2).
const MinLength = 5

// DefaultMaxLength bounds the length field of long frames (short frames cannot exceed 255).
const DefaultMaxLength = 1024

// Frame is one checked frame.
type Frame struct {
	Long     bool // 0x7979 frame with a 2-byte length
	Protocol byte
	Content  []byte
	Serial   uint16
}

// Error says why a frame or packet was rejected.
type Error struct {
	Reason string
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "gt06: " + e.Reason
	}
	return "gt06: " + e.Reason + ": " + e.Detail
}

func errorf(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Reason returns the rejection reason of err, or "" when err is not an *Error.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// CRC computes CRC-ITU (CRC-16/X-25) of b.
func CRC(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x8408
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

// Encode builds the frame's bytes. A short frame whose content does not fit one length byte is an error.
func Encode(f Frame) ([]byte, error) {
	n := len(f.Content) + MinLength
	var out []byte
	if f.Long {
		if n > 0xFFFF {
			return nil, fmt.Errorf("gt06: content of %d bytes does not fit a long frame", len(f.Content))
		}
		out = append(out, 0x79, 0x79, byte(n>>8), byte(n))
	} else {
		if n > 0xFF {
			return nil, fmt.Errorf("gt06: content of %d bytes does not fit a short frame", len(f.Content))
		}
		out = append(out, 0x78, 0x78, byte(n))
	}
	out = append(out, f.Protocol)
	out = append(out, f.Content...)
	out = binary.BigEndian.AppendUint16(out, f.Serial)
	out = binary.BigEndian.AppendUint16(out, CRC(out[2:]))
	return append(out, 0x0D, 0x0A), nil
}

// Ack is the server's answer to a terminal packet: 78 78 05 <protocol> <serial> <CRC> 0D 0A.
func Ack(protocol byte, serial uint16) []byte {
	b, _ := Encode(Frame{Protocol: protocol, Serial: serial}) // an empty short frame always fits
	return b
}

// Decoder splits a byte stream into frames. Feed it what was read with Write, then call Next until it
// returns ErrNeedMore. A bad frame is returned as an *Error once and skipped: the decoder drops its two
// start bytes and searches for the next start marker, so one corrupted frame costs only itself. The buffer
// never holds more than one maximal frame plus what the last Write added.
type Decoder struct {
	// MaxLength bounds the length field of long frames; 0 means DefaultMaxLength.
	MaxLength int
	buf       []byte
}

// ErrNeedMore is returned by Next when the buffer holds no complete frame.
var ErrNeedMore = errors.New("gt06: need more bytes")

// Write appends p to the buffer. It never fails.
func (d *Decoder) Write(p []byte) (int, error) {
	d.buf = append(d.buf, p...)
	return len(p), nil
}

// Buffered is the number of bytes held for an incomplete frame.
func (d *Decoder) Buffered() int { return len(d.buf) }

func (d *Decoder) maxLength() int {
	if d.MaxLength <= 0 {
		return DefaultMaxLength
	}
	return d.MaxLength
}

func isStart(a, b byte) bool { return a == b && (a == 0x78 || a == 0x79) }

func (d *Decoder) drop(n int) {
	d.buf = d.buf[:copy(d.buf, d.buf[n:])]
}

// Next returns the next frame, an *Error for a bad frame (already skipped), or ErrNeedMore. Every call
// that does not return ErrNeedMore consumes at least one byte, so a loop over Next ends.
func (d *Decoder) Next() (Frame, error) {
	start := -1
	for i := 0; i+1 < len(d.buf); i++ {
		if isStart(d.buf[i], d.buf[i+1]) {
			start = i
			break
		}
	}
	if start < 0 {
		// Keep a last byte that may begin a start marker.
		keep := 0
		if n := len(d.buf); n > 0 && (d.buf[n-1] == 0x78 || d.buf[n-1] == 0x79) {
			keep = 1
		}
		if skipped := len(d.buf) - keep; skipped > 0 {
			d.drop(skipped)
			return Frame{}, errorf(ReasonSync, "%d bytes without a start marker", skipped)
		}
		return Frame{}, ErrNeedMore
	}
	if start > 0 {
		d.drop(start)
		return Frame{}, errorf(ReasonSync, "%d bytes before a start marker", start)
	}
	long := d.buf[0] == 0x79
	hdr := 3
	if long {
		hdr = 4
	}
	if len(d.buf) < hdr {
		return Frame{}, ErrNeedMore
	}
	var n int
	if long {
		n = int(binary.BigEndian.Uint16(d.buf[2:4]))
		if n > d.maxLength() {
			d.drop(2)
			return Frame{}, errorf(ReasonLength, "length %d above the limit %d", n, d.maxLength())
		}
	} else {
		n = int(d.buf[2])
	}
	if n < MinLength {
		d.drop(2)
		return Frame{}, errorf(ReasonLength, "length %d below the minimum %d", n, MinLength)
	}
	total := hdr + n + 2
	if len(d.buf) < total {
		return Frame{}, ErrNeedMore
	}
	if d.buf[total-2] != 0x0D || d.buf[total-1] != 0x0A {
		err := errorf(ReasonStop, "bytes % X where the frame should end", d.buf[total-2:total])
		d.drop(2)
		return Frame{}, err
	}
	body := d.buf[2 : hdr+n-2] // length..serial
	want := binary.BigEndian.Uint16(d.buf[hdr+n-2 : hdr+n])
	if got := CRC(body); got != want {
		d.drop(2)
		return Frame{}, errorf(ReasonCRC, "frame says %04X, computed %04X", want, got)
	}
	f := Frame{
		Long:     long,
		Protocol: d.buf[hdr],
		Content:  append([]byte(nil), d.buf[hdr+1:hdr+n-4]...),
		Serial:   binary.BigEndian.Uint16(d.buf[hdr+n-4 : hdr+n-2]),
	}
	d.drop(total)
	return f, nil
}

// End reports what is left when the stream ends: an *Error with ReasonTruncated when the buffer holds the
// beginning of a frame, nil otherwise. The buffer is emptied.
func (d *Decoder) End() error {
	n := len(d.buf)
	d.buf = d.buf[:0]
	if n >= 2 {
		return errorf(ReasonTruncated, "stream ended %d bytes into a frame", n)
	}
	return nil
}
