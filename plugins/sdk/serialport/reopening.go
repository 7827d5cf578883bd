package serialport

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// ReopenOptions tunes a Reopening port.
type ReopenOptions struct {
	// BackoffMin is the wait after the first failed open; it doubles with every further failure up to
	// BackoffMax. Defaults: 100 ms and 5 s. The first reopen after a read or write error is immediate.
	BackoffMin, BackoffMax time.Duration
}

// Reopening is a Port that closes itself after a read or write error (a USB adapter unplugged) and opens
// the port again, by its configured name, on the next use or call to Ensure — at once the first time, then
// with exponential backoff while opening fails. Each successful open increments Generation, so a user can
// re-send state the device lost while it was away.
type Reopening struct {
	cfg  Config
	opts ReopenOptions
	now  func() time.Time

	mu       sync.Mutex
	port     Port
	gen      uint64
	lastErr  error
	failures int
	nextTry  time.Time
	closed   bool
}

// NewReopening returns a Reopening for cfg without opening it yet.
func NewReopening(cfg Config, opts ReopenOptions) *Reopening {
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 100 * time.Millisecond
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = 5 * time.Second
		if opts.BackoffMax < opts.BackoffMin {
			opts.BackoffMax = opts.BackoffMin
		}
	}
	return &Reopening{cfg: cfg, opts: opts, now: time.Now}
}

// OpenReopening opens the port at once and fails if it cannot be opened.
func OpenReopening(cfg Config, opts ReopenOptions) (*Reopening, error) {
	r := NewReopening(cfg, opts)
	if err := r.Ensure(); err != nil {
		return nil, err
	}
	return r, nil
}

// Name is the configured name.
func (r *Reopening) Name() string { return r.cfg.Name }

// Device is the device node of the open port, or "" while it is not open.
func (r *Reopening) Device() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.port == nil {
		return ""
	}
	return r.port.Device()
}

// State reports whether the port is open, how many times it was opened, and the last error.
func (r *Reopening) State() (open bool, generation uint64, lastErr error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.port != nil, r.gen, r.lastErr
}

// Ensure checks that an open port's device is still there — its stable name still resolves to the
// device that was opened, which catches a USB adapter unplugged while nothing was written — and opens the
// port if it is not open and the backoff allows another attempt now.
func (r *Reopening) Ensure() error {
	r.mu.Lock()
	p := r.port
	r.mu.Unlock()
	if p != nil {
		if dev, err := filepath.EvalSymlinks(r.cfg.Name); err != nil {
			r.fail(p, fmt.Errorf("serial port %s: device gone: %w", r.cfg.Name, unwrapPath(err)))
		} else if dev != p.Device() {
			r.fail(p, fmt.Errorf("serial port %s: now %s, was %s", r.cfg.Name, dev, p.Device()))
		}
	}
	_, err := r.get()
	return err
}

func (r *Reopening) get() (Port, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("serial port %s: %w", r.cfg.Name, ErrClosed)
	}
	if r.port != nil {
		return r.port, nil
	}
	now := r.now()
	if now.Before(r.nextTry) {
		return nil, fmt.Errorf("%w (next attempt in %s)", r.lastErr, r.nextTry.Sub(now).Round(time.Millisecond))
	}
	p, err := Open(r.cfg)
	if err != nil {
		r.failures++
		d := r.opts.BackoffMin
		for i := 1; i < r.failures && d < r.opts.BackoffMax; i++ {
			d *= 2
		}
		if d > r.opts.BackoffMax {
			d = r.opts.BackoffMax
		}
		r.nextTry = now.Add(d)
		r.lastErr = err
		return nil, err
	}
	r.failures = 0
	r.gen++
	r.port = p
	r.lastErr = nil
	return p, nil
}

// fail closes p after an I/O error, unless another caller already replaced it.
func (r *Reopening) fail(p Port, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.port != p {
		return
	}
	_ = p.Close()
	r.port = nil
	r.lastErr = err
	r.nextTry = time.Time{}
}

// Read reads from the port, opening it first if needed. ErrTimeout does not close the port.
func (r *Reopening) Read(b []byte) (int, error) {
	p, err := r.get()
	if err != nil {
		return 0, err
	}
	n, err := p.Read(b)
	if err != nil && !errors.Is(err, ErrTimeout) {
		r.fail(p, err)
	}
	return n, err
}

// Write writes to the port, opening it first if needed. After an error the port is closed and reopened
// on the next use.
func (r *Reopening) Write(b []byte) (int, error) {
	p, err := r.get()
	if err != nil {
		return 0, err
	}
	n, err := p.Write(b)
	if err != nil {
		r.fail(p, err)
	}
	return n, err
}

// Close closes the port for good.
func (r *Reopening) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.port == nil {
		return nil
	}
	err := r.port.Close()
	r.port = nil
	return err
}

var _ Port = (*Reopening)(nil)
