package modbus

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

type vectors struct {
	Vectors []struct {
		Slave int    `json:"slave"`
		Coil  int    `json:"coil"`
		On    bool   `json:"on"`
		Hex   string `json:"hex"`
	} `json:"vectors"`
	Exceptions []struct {
		Hex   string `json:"hex"`
		Slave uint8  `json:"slave"`
		Code  uint8  `json:"code"`
	} `json:"exceptions"`
	Invalid []struct {
		Hex   string `json:"hex"`
		Error string `json:"error"`
	} `json:"invalid"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	raw, err := os.ReadFile("../testdata/modbus.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) == 0 || len(v.Invalid) == 0 || len(v.Exceptions) == 0 {
		t.Fatal("no vectors in modbus.json")
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

func TestSpecVectorsLiteral(t *testing.T) {
	on, _ := Encode(1, 0, true)
	off, _ := Encode(1, 0, false)
	if !bytes.Equal(on, []byte{0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A}) ||
		!bytes.Equal(off, []byte{0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xCD, 0xCA}) {
		t.Fatalf("slave 1 coil 0: on % X, off % X", on, off)
	}
	// The CRC-16/MODBUS check value ("123456789" gives 0x4B37).
	if c := CRC([]byte("123456789")); c != 0x4B37 {
		t.Fatalf("CRC check value 0x%04X, want 0x4B37", c)
	}
}

func TestEncodeDecodeVectors(t *testing.T) {
	for _, v := range loadVectors(t).Vectors {
		want := mustHex(t, v.Hex)
		got, err := Encode(v.Slave, v.Coil, v.On)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Encode(%d, %d, %v) = % X, %v; want % X", v.Slave, v.Coil, v.On, got, err, want)
		}
		f, err := Decode(want)
		if err != nil || int(f.Slave) != v.Slave || int(f.Coil) != v.Coil || f.On != v.On {
			t.Errorf("Decode(%s) = %+v, %v", v.Hex, f, err)
		}
	}
}

func TestDecodeExceptionsAndInvalid(t *testing.T) {
	v := loadVectors(t)
	for _, x := range v.Exceptions {
		_, err := Decode(mustHex(t, x.Hex))
		var ex *ExceptionError
		if !errors.As(err, &ex) || ex.Slave != x.Slave || ex.Code != x.Code || ex.Function != 0x85 {
			t.Errorf("Decode(%s) = %v, want exception %d from slave %d", x.Hex, err, x.Code, x.Slave)
		}
	}
	for _, x := range v.Invalid {
		_, err := Decode(mustHex(t, x.Hex))
		if err == nil || !strings.Contains(err.Error(), x.Error) {
			t.Errorf("Decode(%s) = %v, want an error mentioning %q", x.Hex, err, x.Error)
		}
	}
}

func TestEncodeRange(t *testing.T) {
	for _, c := range []struct{ slave, coil int }{{0, 0}, {248, 0}, {1, -1}, {1, 65536}} {
		if _, err := Encode(c.slave, c.coil, true); err == nil {
			t.Errorf("Encode(%d, %d) accepted", c.slave, c.coil)
		}
	}
	b, err := Encode(247, 65535, true)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := Decode(b); err != nil || f != (Frame{Slave: 247, Coil: 65535, On: true}) {
		t.Fatalf("round trip %+v, %v", f, err)
	}
}

func TestCheckReply(t *testing.T) {
	req, _ := Encode(1, 0, true)
	stale, _ := Encode(1, 0, false)
	exc := mustHex(t, "018502C351")
	cases := []struct {
		name    string
		got     []byte
		done    bool
		exc     bool
		explain string
	}{
		{"echo", req, true, false, ""},
		{"stale echo first", append(append([]byte{}, stale...), req...), true, false, ""},
		{"garbage first", append([]byte{0x00, 0x13}, req...), true, false, ""},
		{"partial", req[:5], false, false, "incomplete"},
		{"nothing", nil, false, false, "no reply"},
		{"wrong crc", mustHex(t, "01050000FF008C3B"), false, false, "CRC"},
		{"other state", stale, false, false, "does not echo"},
		{"exception", exc, true, true, ""},
		{"exception of another slave", mustHex(t, "028502C315"), false, false, "incomplete"},
	}
	for _, c := range cases {
		done, err := CheckReply(req, c.got)
		var ex *ExceptionError
		if done != c.done || errors.As(err, &ex) != c.exc || (c.done && !c.exc && err != nil) {
			t.Errorf("%s: CheckReply = %v, %v", c.name, done, err)
		}
		if c.explain != "" {
			if s := DescribeReply(req, c.got); !strings.Contains(s, c.explain) {
				t.Errorf("%s: DescribeReply = %q, want it to mention %q", c.name, s, c.explain)
			}
		}
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, s := range [][]byte{
		{0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A},
		{0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xCD, 0xCA},
		{0x01, 0x85, 0x02, 0xC3, 0x51},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		var ex *ExceptionError
		switch {
		case err == nil:
			if got := fr.Bytes(); !bytes.Equal(got, b) {
				t.Fatalf("Decode(% X) = %+v, which encodes to % X", b, fr, got)
			}
			if done, err := CheckReply(b, b); !done || err != nil {
				t.Fatalf("a frame is not its own echo: %v %v", done, err)
			}
		case errors.As(err, &ex):
			if len(b) != ExceptionLen || !crcOK(b) {
				t.Fatalf("exception from % X", b)
			}
		}
		if len(b) == FrameLen {
			_, _ = CheckReply(b, b[:len(b)/2])
			_ = DescribeReply(b, b)
		}
	})
}
