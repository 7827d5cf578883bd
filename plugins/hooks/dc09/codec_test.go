package dc09

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

type vector struct {
	Frame       string `json:"frame"`
	CRC         string `json:"crc"`
	LengthField string `json:"length_field"`
	Description string `json:"description"`
	KeyHex      string `json:"aes_key_hex"`
	PadHex      string `json:"padding_bytes_hex"`
}

// testdata/vectors.json is a copy of the "dc09" vectors of the project's shared protocol vectors
// (each with the source it was taken from).
func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 8 {
		t.Fatalf("only %d vectors", len(vs))
	}
	return vs
}

// Every vector parses (CRC and length checked), and encoding the parsed frame again gives the same
// bytes: the unencrypted ones directly, the encrypted one with its key and its pad bytes.
func TestVectorsByteForByte(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Description, func(t *testing.T) {
			raw := []byte(v.Frame)
			if got := CRC16(raw[9 : len(raw)-1]); !strings.EqualFold(hex4(got), v.CRC) {
				t.Fatalf("CRC of the body = %04X, vector says %s", got, v.CRC)
			}
			var key []byte
			if v.KeyHex != "" {
				key = mustHex(t, v.KeyHex)
			}
			f, err := Parse(raw, key)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if (key != nil) != f.Encrypted {
				t.Fatalf("encrypted = %v", f.Encrypted)
			}
			lower := v.LengthField != strings.ToUpper(v.LengthField)
			var pad *bytes.Reader
			if v.PadHex != "" {
				pad = bytes.NewReader(mustHex(t, v.PadHex))
			}
			var out []byte
			if pad != nil {
				out, err = encode(f, key, pad, lower)
			} else {
				out, err = encode(f, key, nil, lower)
			}
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if string(out) != v.Frame {
				t.Fatalf("encoded\n%q\nwant\n%q", out, v.Frame)
			}
		})
	}
}

func hex4(v uint16) string { return strings.ToUpper(hex.EncodeToString([]byte{byte(v >> 8), byte(v)})) }

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The parsed fields of the vectors, so that Parse is checked on its own and not only by round trip.
func TestParseVectorFields(t *testing.T) {
	vs := loadVectors(t)
	f, err := Parse([]byte(vs[0].Frame), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != IDSIA || f.Seq != "0001" || f.Receiver != "F3" || f.Line != "77" || f.Account != "1234" || f.Data != "#1234|NRR|Atest" || !f.Time.IsZero() {
		t.Fatalf("%+v", f)
	}
	k, f, err := ParseAck([]byte(vs[2].Frame), nil)
	if err != nil || k != Nak || f.Seq != "0000" || f.Receiver != "0" || f.Line != "0" || f.Account != "0" || f.AccountPrefix != 'A' {
		t.Fatalf("NAK: %v %+v %v", k, f, err)
	}
	if want := time.Date(2025, 9, 24, 16, 20, 1, 0, time.UTC); !f.Time.Equal(want) {
		t.Fatalf("NAK time %v, want %v", f.Time, want)
	}
	var enc vector
	for _, v := range vs {
		if v.KeyHex != "" {
			enc = v
		}
	}
	k, f, err = ParseAck([]byte(enc.Frame), mustHex(t, enc.KeyHex))
	if err != nil || k != Ack || !f.Encrypted || f.Seq != "0001" || f.Receiver != "5678" || f.Line != "1234" || f.Account != "080027E62A64" {
		t.Fatalf("encrypted ACK: %v %+v %v", k, f, err)
	}
	if want := time.Date(2015, 4, 14, 16, 8, 12, 0, time.UTC); !f.Time.Equal(want) {
		t.Fatalf("encrypted ACK time %v, want %v", f.Time, want)
	}
	// The wrong key (the source's negative case) must not give a valid answer.
	if _, _, err := ParseAck([]byte(enc.Frame), mustHex(t, "ABCDABCDABCDABCDABCDABCDABCDABCE")); err == nil {
		t.Fatal("decrypted with the wrong key")
	}
	if _, _, err := ParseAck([]byte(enc.Frame), nil); err == nil {
		t.Fatal("parsed an encrypted frame without a key")
	}
}

func TestCRC16KnownValues(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint16
	}{
		{"", 0x0000},
		{"123456789", 0xBB3D}, // the CRC-16/ARC check value
		{"A", 0x30C0},
		{`"SIA-DCS"0001L0#1234[]`, 0x96ED},
	} {
		if got := CRC16([]byte(c.in)); got != c.want {
			t.Errorf("CRC16(%q) = %04X, want %04X", c.in, got, c.want)
		}
	}
}

func TestLengthFieldAndFraming(t *testing.T) {
	f := Frame{ID: IDSIA, Seq: "0042", Line: "0", Account: "ABC123", Data: strings.Repeat("x", 300)}
	out, err := Encode(f, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := out[9 : len(out)-1]
	if out[0] != '\n' || out[len(out)-1] != '\r' {
		t.Fatalf("framing %q", out)
	}
	if got, want := string(out[5:9]), "0144"; got != want || len(body) != 0x144 {
		t.Fatalf("length field %q, want %q (body %d)", got, want, len(body))
	}
	if string(out[1:5]) != hex4(CRC16(body)) {
		t.Fatalf("CRC field %q", out[1:5])
	}
	// A corrupted byte or a wrong length is refused.
	bad := bytes.Clone(out)
	bad[20] ^= 1
	if _, err := Parse(bad, nil); err == nil || !strings.Contains(err.Error(), "CRC") {
		t.Fatalf("corrupted frame: %v", err)
	}
	if _, err := Parse(append(bytes.Clone(out[:len(out)-1]), 'x', '\r'), nil); err == nil || !strings.Contains(err.Error(), "length") {
		t.Fatalf("long frame: %v", err)
	}
	// Too long for the length field.
	f.Data = strings.Repeat("x", 0x1000)
	if _, err := Encode(f, nil, nil); err == nil {
		t.Fatal("encoded a body longer than 0FFF")
	}
}

func TestTimestampFormat(t *testing.T) {
	oslo, _ := time.LoadLocation("Europe/Oslo")
	if oslo == nil {
		oslo = time.FixedZone("CET", 3600)
	}
	ts := time.Date(2026, 1, 2, 4, 5, 6, 0, oslo) // written in UTC
	want := "03:05:06,01-02-2026"
	if got := FormatTimestamp(ts); got != want {
		t.Fatalf("FormatTimestamp = %q, want %q", got, want)
	}
	out, err := Encode(Frame{ID: IDNull, Seq: "0001", Line: "0", Account: "123", Time: ts}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(out, []byte("[]_"+want+"\r")) {
		t.Fatalf("frame %q does not end with the timestamp", out)
	}
	f, err := Parse(out, nil)
	if err != nil || !f.Time.Equal(ts) {
		t.Fatalf("parsed %v %v", f.Time, err)
	}
}

func TestEncryptionRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, n := range []int{16, 24, 32} {
		key := bytes.Repeat([]byte{0x5A}, n)
		key[0] = byte(n)
		for _, data := range []string{"", "#1234|Nri1/BA042|Aalm-00000003", "#1234|1130 01 042", strings.Repeat("y", 37)} {
			f := Frame{ID: IDSIA, Seq: "0007", Receiver: "12", Line: "3", Account: "1234", Data: data, Time: ts}
			out, err := Encode(f, key, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := string(out)
			if !strings.Contains(s, `"*SIA-DCS"0007R12L3#1234[`) {
				t.Fatalf("header of %q", s)
			}
			ct := s[strings.IndexByte(s, '[')+1 : len(s)-1]
			if ct != strings.ToUpper(ct) || len(ct)%32 != 0 {
				t.Fatalf("ciphertext %q is not upper-case hex of whole blocks", ct)
			}
			if strings.Contains(s, data) && data != "" {
				t.Fatalf("plain data visible in %q", s)
			}
			// The pad: the plaintext is pad + "|" + data + "]" + "_" + timestamp, 1–16 pad bytes.
			plain := decryptRaw(t, key, ct)
			tail := "|" + data + "]_" + FormatTimestamp(ts)
			padLen := len(plain) - len(tail)
			if !strings.HasSuffix(plain, tail) || padLen < 1 || padLen > 16 || strings.Contains(plain[:padLen], "|") {
				t.Fatalf("AES-%d plaintext %q: pad %d", n*8, plain, padLen)
			}
			g, err := Parse(out, key)
			if err != nil {
				t.Fatalf("AES-%d: %v", n*8, err)
			}
			if g.Data != data || !g.Time.Equal(ts) || !g.Encrypted || g.Account != "1234" {
				t.Fatalf("AES-%d round trip %+v", n*8, g)
			}
			other := bytes.Clone(key)
			other[n-1] ^= 0xFF
			if h, err := Parse(out, other); err == nil && h.Data == data {
				t.Fatalf("AES-%d: decrypted with another key", n*8)
			}
		}
	}
	if _, err := Encode(Frame{ID: IDSIA, Seq: "0001", Account: "123"}, bytes.Repeat([]byte{1}, 16), nil); err == nil {
		t.Fatal("encrypted frame without a timestamp accepted")
	}
	if _, err := Encode(Frame{ID: IDSIA, Seq: "0001", Account: "123", Time: ts}, []byte("short"), nil); err == nil {
		t.Fatal("5-byte key accepted")
	}
}

// A pad source full of '|' must not produce a '|' in the pad.
func TestPadNeverContainsBar(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 16)
	out, err := Encode(Frame{ID: IDSIA, Seq: "0001", Account: "123", Data: "#123|NBA001", Time: time.Now()}, key, bytes.NewReader(bytes.Repeat([]byte{'|'}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(out, key)
	if err != nil || f.Data != "#123|NBA001" {
		t.Fatalf("%+v %v", f, err)
	}
}

// decryptRaw returns the whole plaintext, pad included.
func decryptRaw(t *testing.T, key []byte, ct string) string {
	t.Helper()
	b := mustHex(t, ct)
	blk, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	cipher.NewCBCDecrypter(blk, make([]byte, aes.BlockSize)).CryptBlocks(b, b)
	return string(b)
}

func FuzzParseAck(f *testing.F) {
	key := bytes.Repeat([]byte{0xAB, 0xCD}, 8)
	for _, v := range []string{
		"\nA62A0012\"ACK\"0001L0#7099[]\r",
		"\n3C830025\"NAK\"0000R0L0A0[]_16:09:09,04-14-2015\r",
		"\nE34C0062\"*ACK\"0001R5678L1234#080027E62A64[14F088FF5DCB19D1908069507EAB97C7CDB20F1C6EFA550BB59864D54B2DFA1C\r",
	} {
		f.Add([]byte(v))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		kind, fr, err := ParseAck(raw, key)
		if err == nil {
			if kind != Ack && kind != Nak && kind != Duh {
				t.Fatalf("no error and kind %v", kind)
			}
			if len(fr.Seq) != 4 {
				t.Fatalf("accepted sequence %q", fr.Seq)
			}
		}
	})
}
