package lcus

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

type vectors struct {
	Vectors []struct {
		Channel int    `json:"channel"`
		On      bool   `json:"on"`
		Hex     string `json:"hex"`
	} `json:"vectors"`
	Invalid []struct {
		Hex   string `json:"hex"`
		Error string `json:"error"`
	} `json:"invalid"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	raw, err := os.ReadFile("../testdata/lcus.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) == 0 || len(v.Invalid) == 0 {
		t.Fatal("no vectors in lcus.json")
	}
	return v
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeVectors(t *testing.T) {
	for _, v := range loadVectors(t).Vectors {
		got, err := Encode(v.Channel, v.On)
		if err != nil {
			t.Fatalf("Encode(%d, %v): %v", v.Channel, v.On, err)
		}
		if want := mustHex(t, v.Hex); !bytes.Equal(got, want) {
			t.Errorf("Encode(%d, %v) = % X, want % X", v.Channel, v.On, got, want)
		}
	}
}

func TestSpecVectorsLiteral(t *testing.T) {
	// The two vectors of the board's documentation, independent of the JSON file.
	on, _ := Encode(1, true)
	off, _ := Encode(1, false)
	if !bytes.Equal(on, []byte{0xA0, 0x01, 0x01, 0xA2}) || !bytes.Equal(off, []byte{0xA0, 0x01, 0x00, 0xA1}) {
		t.Fatalf("channel 1: on % X, off % X", on, off)
	}
}

func TestDecodeVectors(t *testing.T) {
	v := loadVectors(t)
	for _, x := range v.Vectors {
		f, err := Decode(mustHex(t, x.Hex))
		if err != nil {
			t.Fatalf("Decode(%s): %v", x.Hex, err)
		}
		if int(f.Channel) != x.Channel || f.On != x.On {
			t.Errorf("Decode(%s) = %+v, want channel %d on %v", x.Hex, f, x.Channel, x.On)
		}
	}
	for _, x := range v.Invalid {
		_, err := Decode(mustHex(t, x.Hex))
		if err == nil || !strings.Contains(err.Error(), x.Error) {
			t.Errorf("Decode(%s) error = %v, want one mentioning %q", x.Hex, err, x.Error)
		}
	}
}

func TestEncodeRejectsBadChannel(t *testing.T) {
	for _, ch := range []int{0, 9, -1, 256} {
		if _, err := Encode(ch, true); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("Encode(%d) error = %v", ch, err)
		}
	}
}

func TestScanResynchronises(t *testing.T) {
	on1, _ := Encode(1, true)
	off3, _ := Encode(3, false)
	data := append([]byte{0x00, 0xA0, 0xA0}, on1...) // garbage, including false headers
	data = append(data, 0xA0, 0x01, 0x01, 0xA3)      // bad checksum
	data = append(data, off3...)
	data = append(data, 0xA0, 0x01) // truncated
	frames, skipped := Scan(data)
	want := []Frame{{1, true}, {3, false}}
	if len(frames) != 2 || frames[0] != want[0] || frames[1] != want[1] {
		t.Fatalf("frames = %v, want %v", frames, want)
	}
	if skipped != 3+4+2 {
		t.Fatalf("skipped = %d, want 9", skipped)
	}
}

func TestDecoderOverOneByteReads(t *testing.T) {
	on1, _ := Encode(1, true)
	off1, _ := Encode(1, false)
	stream := append(append([]byte{0x55}, on1...), off1...)
	d := NewDecoder(iotest.OneByteReader(bytes.NewReader(stream)))
	var got []Frame
	for {
		f, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f)
	}
	if len(got) != 2 || got[0].String() != "relay 1 ON" || got[1].String() != "relay 1 OFF" {
		t.Fatalf("got %v", got)
	}
	if d.Skipped() != 1 {
		t.Fatalf("skipped %d, want 1", d.Skipped())
	}
}

func TestDecoderContinuesAfterTimeout(t *testing.T) {
	on2, _ := Encode(2, true)
	// The first half of a frame, a timeout, then the rest: the frame must still come out whole.
	d := NewDecoder(&chunks{parts: [][]byte{on2[:2], nil, on2[2:]}})
	if _, err := d.Next(); !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("first Next error = %v, want timeout", err)
	}
	f, err := d.Next()
	if err != nil || f != (Frame{2, true}) {
		t.Fatalf("second Next = %v, %v", f, err)
	}
}

// chunks returns its parts one Read at a time; a nil part is a read timeout.
type chunks struct{ parts [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	part := c.parts[0]
	c.parts = c.parts[1:]
	if part == nil {
		return 0, iotest.ErrTimeout
	}
	return copy(p, part), nil
}

func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f).Vectors {
		f.Add(mustHex(f, v.Hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		re, err := Encode(int(fr.Channel), fr.On)
		if err != nil {
			t.Fatalf("decoded %v but cannot encode it: %v", fr, err)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("Decode(% X) = %v, which encodes to % X", b, fr, re)
		}
	})
}

func FuzzScan(f *testing.F) {
	f.Add([]byte{0xA0, 0x01, 0x01, 0xA2, 0xA0, 0x01, 0x00, 0xA1})
	f.Add([]byte{0xA0, 0xA0, 0x01, 0x01, 0xA2})
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, skipped := Scan(data)
		if len(frames)*FrameLen+skipped != len(data) {
			t.Fatalf("%d frames and %d skipped bytes do not account for %d bytes", len(frames), skipped, len(data))
		}
		// The streaming decoder must agree with Scan.
		d := NewDecoder(bytes.NewReader(data))
		var got []Frame
		for {
			fr, err := d.Next()
			if err != nil {
				break
			}
			got = append(got, fr)
		}
		if len(got) != len(frames) || d.Skipped() != skipped {
			t.Fatalf("decoder: %d frames, %d skipped; Scan: %d frames, %d skipped", len(got), d.Skipped(), len(frames), skipped)
		}
		for i := range got {
			if got[i] != frames[i] {
				t.Fatalf("frame %d: decoder %v, Scan %v", i, got[i], frames[i])
			}
		}
		// Frames appended to arbitrary data are always found at the end.
		tail, _ := Encode(5, true)
		frames2, _ := Scan(append(append([]byte{}, data...), append([]byte{0, 0, 0}, tail...)...))
		if len(frames2) == 0 || frames2[len(frames2)-1] != (Frame{5, true}) {
			t.Fatalf("a valid frame after % X was not found", data)
		}
	})
}
