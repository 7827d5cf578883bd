package dc09test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/plugins/hooks/dc09"
)

// The emulator checks CRC and length: a damaged frame is recorded with its error and answered DUH; a
// good one is answered as scripted, with the sequence and account of the message.
func TestEmulatorAnswers(t *testing.T) {
	r, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", r.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	rd := bufio.NewReader(c)
	good, err := dc09.Encode(dc09.Frame{ID: dc09.IDSIA, Seq: "0042", Line: "0", Account: "1234", Data: "#1234|NBA001", Time: time.Now()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte(strings.Replace(string(good), "BA001", "BA002", 1)) // CRC no longer matches

	exchange := func(frame []byte) (dc09.AckKind, dc09.Frame) {
		t.Helper()
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		line, err := rd.ReadBytes('\r')
		if err != nil {
			t.Fatal(err)
		}
		k, f, err := dc09.ParseAck(line, nil)
		if err != nil {
			t.Fatalf("answer %q: %v", line, err)
		}
		return k, f
	}
	if k, f := exchange(good); k != dc09.Ack || f.Seq != "0042" || f.Account != "1234" || f.Time.IsZero() {
		t.Fatalf("%v %+v", k, f)
	}
	if k, _ := exchange(bad); k != dc09.Duh {
		t.Fatalf("damaged frame answered %v", k)
	}
	r.Script(NAK, DUH)
	if k, f := exchange(good); k != dc09.Nak || f.Seq != "0000" {
		t.Fatalf("%v %+v", k, f)
	}
	if k, f := exchange(good); k != dc09.Duh || f.Seq != "0042" {
		t.Fatalf("%v %+v", k, f)
	}
	all := r.All()
	if len(all) != 4 || all[0].Err != nil || all[1].Err == nil || !strings.Contains(all[1].Err.Error(), "CRC") || all[0].Frame.Data != "#1234|NBA001" {
		t.Fatalf("recorded %+v", all)
	}
}
