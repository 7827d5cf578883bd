// Package lcus encodes and decodes the frames of LCUS-type USB relay boards (CH340 serial adapter,
// 9600 8N1): four bytes, [0xA0][channel][0x01 on | 0x00 off][checksum], where the checksum is the low byte
// of 0xA0 + channel + operation. Channel 1 on is A0 01 01 A2, off is A0 01 00 A1.
//
// The decoder exists for stand-ins and tests: a pseudo-terminal that plays the board can print what the
// siren hook switched.
package lcus

import (
	"bufio"
	"fmt"
	"io"
)

// Frame constants.
const (
	Header     = 0xA0
	FrameLen   = 4
	MinChannel = 1
	MaxChannel = 8
	opOff      = 0x00
	opOn       = 0x01
)

// Frame is one relay command.
type Frame struct {
	Channel uint8
	On      bool
}

func (f Frame) String() string {
	state := "OFF"
	if f.On {
		state = "ON"
	}
	return fmt.Sprintf("relay %d %s", f.Channel, state)
}

// Encode returns the frame that switches channel on or off.
func Encode(channel int, on bool) ([]byte, error) {
	if channel < MinChannel || channel > MaxChannel {
		return nil, fmt.Errorf("lcus: channel %d is out of range [%d, %d]", channel, MinChannel, MaxChannel)
	}
	return Frame{Channel: uint8(channel), On: on}.bytes(), nil
}

func (f Frame) bytes() []byte {
	op := byte(opOff)
	if f.On {
		op = opOn
	}
	return []byte{Header, f.Channel, op, checksum(f.Channel, op)}
}

func checksum(ch, op byte) byte { return byte(Header + int(ch) + int(op)) }

// Decode parses exactly one frame.
func Decode(b []byte) (Frame, error) {
	if len(b) != FrameLen {
		return Frame{}, fmt.Errorf("lcus: frame is %d bytes, want %d", len(b), FrameLen)
	}
	if b[0] != Header {
		return Frame{}, fmt.Errorf("lcus: header is 0x%02X, want 0x%02X", b[0], Header)
	}
	if b[1] < MinChannel || b[1] > MaxChannel {
		return Frame{}, fmt.Errorf("lcus: channel %d is out of range [%d, %d]", b[1], MinChannel, MaxChannel)
	}
	if b[2] != opOn && b[2] != opOff {
		return Frame{}, fmt.Errorf("lcus: operation 0x%02X is neither on (0x01) nor off (0x00)", b[2])
	}
	if want := checksum(b[1], b[2]); b[3] != want {
		return Frame{}, fmt.Errorf("lcus: checksum is 0x%02X, want 0x%02X", b[3], want)
	}
	return Frame{Channel: b[1], On: b[2] == opOn}, nil
}

// Scan finds the frames in data, skipping bytes that do not start a valid frame. It returns the frames in
// order and how many bytes it skipped (including an incomplete frame at the end).
func Scan(data []byte) (frames []Frame, skipped int) {
	i := 0
	for i+FrameLen <= len(data) {
		if f, err := Decode(data[i : i+FrameLen]); err == nil {
			frames = append(frames, f)
			i += FrameLen
			continue
		}
		i++
		skipped++
	}
	return frames, skipped + len(data) - i
}

// Decoder reads frames from a byte stream, e.g. the master side of a pseudo-terminal standing in for a
// relay board. It resynchronises on garbage.
type Decoder struct {
	r       *bufio.Reader
	win     []byte
	skipped int
}

// NewDecoder reads from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64), win: make([]byte, 0, FrameLen)}
}

// Next returns the next valid frame. It returns the reader's error (io.EOF, a deadline) as it comes; the
// bytes read so far are kept, so Next may be called again after a timeout.
func (d *Decoder) Next() (Frame, error) {
	for {
		b, err := d.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				d.skipped += len(d.win)
				d.win = d.win[:0]
			}
			return Frame{}, err
		}
		d.win = append(d.win, b)
		if len(d.win) < FrameLen {
			continue
		}
		if f, err := Decode(d.win); err == nil {
			d.win = d.win[:0]
			return f, nil
		}
		copy(d.win, d.win[1:])
		d.win = d.win[:FrameLen-1]
		d.skipped++
	}
}

// Skipped is the number of bytes dropped so far because they did not start a valid frame.
func (d *Decoder) Skipped() int { return d.skipped }
