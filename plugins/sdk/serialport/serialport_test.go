package serialport

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

func pair(t *testing.T) *ptypair.Pair {
	t.Helper()
	p, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func byID(t *testing.T, target string) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "usb-FTDI_FT232R_A1B2C3-if00-port0")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func readN(t *testing.T, f *os.File, n int) []byte {
	t.Helper()
	_ = f.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenResolvesStableNameAndMovesBytesBothWays(t *testing.T) {
	p := pair(t)
	link := byID(t, p.Path)
	port, err := Open(Config{Name: link, Baud: 115200, ReadTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if port.Name() != link || port.Device() != p.Path {
		t.Fatalf("Name %q Device %q, want %q and %q", port.Name(), port.Device(), link, p.Path)
	}
	// Raw mode: bytes that a cooked terminal would translate (\n, \r, 0x03, 0x7F) pass unchanged.
	out := []byte{0x0A, 0x0D, 0x03, 0x7F, 0x00, 0xA0}
	if _, err := port.Write(out); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, p.Master, len(out)); !bytes.Equal(got, out) {
		t.Fatalf("device got % X, want % X", got, out)
	}
	in := []byte("AT+CMGL=4\r\n\x1a")
	if _, err := p.Master.Write(in); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, len(in))
	buf := make([]byte, 64)
	for len(got) < len(in) {
		n, err := port.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, in) {
		t.Fatalf("port read % X, want % X", got, in)
	}
}

func TestReadTimeoutIsNotAFailure(t *testing.T) {
	p := pair(t)
	port, err := Open(Config{Name: p.Path, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	start := time.Now()
	n, err := port.Read(make([]byte, 8))
	if n != 0 || !errors.Is(err, ErrTimeout) {
		t.Fatalf("Read = %d, %v; want 0, ErrTimeout", n, err)
	}
	if el := time.Since(start); el < 80*time.Millisecond {
		t.Fatalf("timed out after %s, before the 100 ms timeout", el)
	}
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() {
		t.Fatal("ErrTimeout does not report Timeout()")
	}
}

func TestOpenErrorsNameThePort(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "usb-gone-if00")
	_, err := Open(Config{Name: missing})
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v; want one naming %s and matching fs.ErrNotExist", err, missing)
	}
	p := pair(t)
	if _, err := Open(Config{Name: p.Path, Baud: 1234}); err == nil || !strings.Contains(err.Error(), "baud rate 1234") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Open(Config{}); err == nil {
		t.Fatal("empty name accepted")
	}
	if _, err := Open(Config{Name: "/dev/null"}); err == nil || !strings.Contains(err.Error(), "/dev/null") {
		t.Fatalf("opening a non-terminal: err = %v", err)
	}
}

func TestWriteAfterUnplugFails(t *testing.T) {
	p := pair(t)
	port, err := Open(Config{Name: p.Path})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	p.Close()
	if _, err := port.Write([]byte{1}); err == nil || !strings.Contains(err.Error(), p.Path) {
		t.Fatalf("write after unplug: err = %v", err)
	}
}

func TestReopeningFollowsTheStableName(t *testing.T) {
	p1 := pair(t)
	link := byID(t, p1.Path)
	r, err := OpenReopening(Config{Name: link}, ReopenOptions{BackoffMin: time.Hour, BackoffMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if open, gen, _ := r.State(); !open || gen != 1 {
		t.Fatalf("state open=%v gen=%d", open, gen)
	}
	if _, err := r.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	readN(t, p1.Master, 1)

	p1.Close() // unplug
	if _, err := r.Write([]byte("b")); err == nil {
		t.Fatal("write to an unplugged port succeeded")
	}
	if open, _, lastErr := r.State(); open || lastErr == nil {
		t.Fatalf("after a write error: open=%v lastErr=%v", open, lastErr)
	}

	p2 := pair(t) // replug as another pts
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p2.Path, link); err != nil {
		t.Fatal(err)
	}
	// The first reopen after an I/O error is immediate, whatever the backoff.
	if _, err := r.Write([]byte("c")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, p2.Master, 1); got[0] != 'c' {
		t.Fatalf("got %q", got)
	}
	if open, gen, _ := r.State(); !open || gen != 2 || r.Device() != p2.Path {
		t.Fatalf("state open=%v gen=%d device=%q", open, gen, r.Device())
	}
}

func TestReopeningBacksOff(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "usb-relay")
	r := NewReopening(Config{Name: link}, ReopenOptions{BackoffMin: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond})
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	defer r.Close()

	if err := r.Ensure(); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("first attempt: %v", err)
	}
	p := pair(t)
	if err := os.Symlink(p.Path, link); err != nil {
		t.Fatal(err)
	}
	// The device is back, but the backoff holds the next attempt for 100 ms.
	now = now.Add(50 * time.Millisecond)
	if err := r.Ensure(); err == nil || !strings.Contains(err.Error(), "next attempt in 50ms") {
		t.Fatalf("within backoff: %v", err)
	}
	now = now.Add(50 * time.Millisecond)
	if err := r.Ensure(); err != nil {
		t.Fatalf("after backoff: %v", err)
	}

	// Backoff doubles per consecutive failure and is capped.
	r2 := NewReopening(Config{Name: filepath.Join(dir, "never")}, ReopenOptions{BackoffMin: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond})
	t0 := time.Unix(2000, 0)
	now2 := t0
	r2.now = func() time.Time { return now2 }
	var waits []time.Duration
	for i := 0; i < 5; i++ {
		_ = r2.Ensure()
		waits = append(waits, r2.nextTry.Sub(now2))
		now2 = r2.nextTry
	}
	want := []time.Duration{100, 200, 400, 400, 400}
	for i := range want {
		if waits[i] != want[i]*time.Millisecond {
			t.Fatalf("waits = %v, want %v ms", waits, want)
		}
	}
}

func TestReopeningReadTimeoutKeepsPortOpen(t *testing.T) {
	p := pair(t)
	r, err := OpenReopening(Config{Name: p.Path, ReadTimeout: 100 * time.Millisecond}, ReopenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Read(make([]byte, 4)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	if open, gen, _ := r.State(); !open || gen != 1 {
		t.Fatalf("a timeout closed or reopened the port: open=%v gen=%d", open, gen)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

func TestEnsureNoticesAnUnplugWithoutIO(t *testing.T) {
	p1 := pair(t)
	link := byID(t, p1.Path)
	r, err := OpenReopening(Config{Name: link}, ReopenOptions{BackoffMin: time.Hour, BackoffMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p1.Close() // the device node goes away
	if err := r.Ensure(); err == nil {
		t.Fatal("Ensure found an unplugged port fine")
	}
	if open, _, lastErr := r.State(); open || lastErr == nil {
		t.Fatalf("open=%v lastErr=%v", open, lastErr)
	}

	// The name now points at another device: Ensure moves over to it.
	p2 := pair(t)
	p3 := pair(t)
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p2.Path, link); err != nil {
		t.Fatal(err)
	}
	r2, err := OpenReopening(Config{Name: link}, ReopenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p3.Path, link); err != nil {
		t.Fatal(err)
	}
	if err := r2.Ensure(); err != nil {
		t.Fatal(err)
	}
	if _, gen, _ := r2.State(); gen != 2 || r2.Device() != p3.Path {
		t.Fatalf("gen %d device %q, want 2 and %q", gen, r2.Device(), p3.Path)
	}
}
