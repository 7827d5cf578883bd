// Package serialport opens serial ports for drivers and hooks: a small Port interface over
// github.com/tarm/serial, ports named by their stable /dev/serial/by-id/... path, and a Reopening wrapper
// that survives a USB adapter being unplugged and plugged back in.
package serialport

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/tarm/serial"
)

// Config says which port to open and how. The line is always 8N1 without flow control.
type Config struct {
	// Name is the port's path. Prefer the stable /dev/serial/by-id/... name: it is resolved at every open,
	// so the port is found again after it was re-plugged under another /dev/ttyUSBn, and it is the name
	// used in every message.
	Name string
	// Baud is the line speed; 0 means 9600.
	Baud int
	// ReadTimeout bounds one Read: 0 makes Read block until a byte arrives (and Close does not interrupt
	// it); a positive value is rounded down to tenths of a second (at least 0.1 s, at most 25.5 s), after
	// which Read returns ErrTimeout.
	ReadTimeout time.Duration
}

// DefaultBaud is used when Config.Baud is 0.
const DefaultBaud = 9600

var bauds = []int{50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600,
	115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000,
	3500000, 4000000}

// ValidBaud reports whether the line speed is one the port can be set to.
func ValidBaud(b int) bool {
	for _, v := range bauds {
		if v == b {
			return true
		}
	}
	return false
}

// Port is an open serial port.
type Port interface {
	io.ReadWriteCloser
	// Name is the configured (stable) name of the port.
	Name() string
	// Device is the device node the name resolved to when the port was opened, e.g. /dev/ttyUSB0.
	Device() string
}

// ErrTimeout is returned by Read when no byte arrived within Config.ReadTimeout. It is not a failure of
// the port.
var ErrTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "serial read timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// ErrClosed is returned by operations on a port that was closed.
var ErrClosed = errors.New("serial port closed")

// Open opens the port.
func Open(cfg Config) (Port, error) {
	if cfg.Name == "" {
		return nil, errors.New("serial port: no name given")
	}
	if cfg.Baud == 0 {
		cfg.Baud = DefaultBaud
	}
	if !ValidBaud(cfg.Baud) {
		return nil, fmt.Errorf("serial port %s: unsupported baud rate %d", cfg.Name, cfg.Baud)
	}
	if cfg.ReadTimeout < 0 {
		return nil, fmt.Errorf("serial port %s: negative read timeout %s", cfg.Name, cfg.ReadTimeout)
	}
	dev, err := filepath.EvalSymlinks(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("serial port %s: %w", cfg.Name, unwrapPath(err))
	}
	sp, err := serial.OpenPort(&serial.Config{Name: dev, Baud: cfg.Baud, ReadTimeout: cfg.ReadTimeout})
	if err != nil {
		return nil, fmt.Errorf("serial port %s: open %s: %w", cfg.Name, dev, unwrapPath(err))
	}
	return &port{name: cfg.Name, dev: dev, sp: sp, vtime: vtime(cfg.ReadTimeout)}, nil
}

// unwrapPath drops the *fs.PathError wrapper (whose path is the device, not the stable name) and keeps the
// cause, so messages read "serial port /dev/serial/by-id/x: no such file or directory".
func unwrapPath(err error) error {
	var pe interface{ Unwrap() error }
	if errors.As(err, &pe) {
		if inner := pe.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// vtime is the read timeout the terminal really applies (VTIME, in tenths of a second).
func vtime(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	t := d / (100 * time.Millisecond)
	if t < 1 {
		t = 1
	} else if t > 255 {
		t = 255
	}
	return t * 100 * time.Millisecond
}

type port struct {
	name, dev string
	sp        *serial.Port
	vtime     time.Duration

	mu     sync.Mutex
	closed bool
}

func (p *port) Name() string   { return p.name }
func (p *port) Device() string { return p.dev }

func (p *port) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *port) Read(b []byte) (int, error) {
	if p.isClosed() {
		return 0, fmt.Errorf("serial port %s: %w", p.name, ErrClosed)
	}
	start := time.Now()
	n, err := p.sp.Read(b)
	if n > 0 || err == nil {
		return n, nil
	}
	if errors.Is(err, io.EOF) && p.vtime > 0 && len(b) > 0 {
		// With a read timeout the terminal returns zero bytes, which os.File reports as EOF. A zero read
		// that came before the timeout is a hang-up (the device went away).
		if time.Since(start) >= p.vtime*3/4 {
			return 0, ErrTimeout
		}
		return 0, fmt.Errorf("serial port %s: read: hang-up", p.name)
	}
	if p.isClosed() {
		return 0, fmt.Errorf("serial port %s: %w", p.name, ErrClosed)
	}
	return 0, fmt.Errorf("serial port %s: read: %w", p.name, unwrapPath(err))
}

func (p *port) Write(b []byte) (int, error) {
	if p.isClosed() {
		return 0, fmt.Errorf("serial port %s: %w", p.name, ErrClosed)
	}
	n, err := p.sp.Write(b)
	if err != nil {
		return n, fmt.Errorf("serial port %s: write: %w", p.name, unwrapPath(err))
	}
	return n, nil
}

func (p *port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	return p.sp.Close()
}
