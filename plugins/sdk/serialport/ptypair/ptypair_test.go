package ptypair

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestBytesBothWaysRawAndDeadlines(t *testing.T) {
	p, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// The device side times out instead of blocking forever.
	_ = p.Master.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := p.Master.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with nothing written: %v, want a deadline error", err)
	}

	f, err := os.OpenFile(p.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := []byte{0xA0, 0x01, 0x01, 0xA2, '\n', 0x03}
	if _, err := f.Write(out); err != nil {
		t.Fatal(err)
	}
	_ = p.Master.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(out))
	if _, err := io.ReadFull(p.Master, got); err != nil || !bytes.Equal(got, out) {
		t.Fatalf("master read % X (%v), want % X unchanged (raw mode)", got, err, out)
	}
	in := []byte("OK\r\n")
	if _, err := p.Master.Write(in); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(in))
	if _, err := io.ReadFull(f, back); err != nil || !bytes.Equal(back, in) {
		t.Fatalf("terminal read %q (%v), want %q", back, err, in)
	}
}

func TestMasterIsNotInheritedByChildren(t *testing.T) {
	p, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	// A child started while the pair is open must not hold the master: otherwise closing the pair would
	// not look like an unplug to a plugin.
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	f, err := os.OpenFile(p.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.Close()
	if _, err := f.Write([]byte{1}); err == nil {
		t.Fatal("writing to the terminal after Close succeeded: the master is still open somewhere")
	}
}
