package modem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skjold-alarm/skjold/plugins/sdk/serialport"
)

// ATError is a final result code other than OK: ERROR, +CME ERROR: <text> or +CMS ERROR: <n>.
type ATError struct {
	Command string
	Result  string // the whole final line, e.g. "+CMS ERROR: 500"
}

func (e *ATError) Error() string { return fmt.Sprintf("%s: %s", e.Command, e.Result) }

// CMS reports whether the error is a +CMS ERROR (a message service failure).
func (e *ATError) CMS() bool { return strings.HasPrefix(e.Result, "+CMS ERROR") }

// ErrATTimeout is returned when a command got no final result code in time.
var ErrATTimeout = errors.New("no final result code in time")

// URC is an unsolicited result code: one line (and, for +CMT/+CDS, the PDU line after it).
type URC struct {
	Line string
	PDU  string
}

// promptLine stands for the "> " prompt of AT+CMGS in the response stream (it ends without a newline).
const promptLine = "\x00prompt"

// atConn speaks AT commands over a port. One goroutine reads lines and routes them: unsolicited result
// codes go to urcs, everything else to the command waiting for its answer. One command runs at a time.
type atConn struct {
	port io.ReadWriter
	urcs chan URC
	lost chan error // an I/O error on the port (buffered, the latest wins)
	resp chan string

	mu     sync.Mutex   // one command at a time
	expect atomic.Value // string: the information prefix of the running command, e.g. "+CREG:"

	dropped atomic.Int64 // URCs dropped because nobody read them
	// log is told each command and its result; secret commands are passed already masked.
	log func(cmd string, lines []string, err error)
}

func newATConn(port io.ReadWriter, log func(string, []string, error)) *atConn {
	s := &atConn{port: port, urcs: make(chan URC, 256), lost: make(chan error, 1), resp: make(chan string, 256), log: log}
	s.expect.Store("")
	return s
}

func isFinal(line string) bool {
	return line == "OK" || line == "ERROR" || strings.HasPrefix(line, "+CME ERROR") || strings.HasPrefix(line, "+CMS ERROR")
}

// isURC reports whether a line is unsolicited, given the information prefix the running command expects.
func isURC(line, expect string) bool {
	if expect != "" && strings.HasPrefix(line, expect) {
		return false
	}
	for _, p := range []string{"+CMTI:", "+CDSI:", "+CMT:", "+CDS:", "+CREG:", "+CGREG:", "+CEREG:", "RING", "+CLIP:", "+CUSD:", "^"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// readLoop reads the port until stop is closed.
func (s *atConn) readLoop(stop <-chan struct{}) {
	buf := make([]byte, 512)
	var line []byte
	var pendingURC *URC // a +CMT/+CDS header waiting for its PDU line
	emit := func(l string) {
		if pendingURC != nil {
			pendingURC.PDU = l
			s.urc(*pendingURC)
			pendingURC = nil
			return
		}
		if isURC(l, s.expect.Load().(string)) {
			if strings.HasPrefix(l, "+CMT:") || strings.HasPrefix(l, "+CDS:") {
				pendingURC = &URC{Line: l}
				return
			}
			s.urc(URC{Line: l})
			return
		}
		select {
		case s.resp <- l:
		default: // nobody waits and the buffer is full: stale lines, drop
		}
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, err := s.port.Read(buf)
		for _, c := range buf[:n] {
			if c == '\r' || c == '\n' {
				if len(line) > 0 {
					emit(string(line))
					line = line[:0]
				}
				continue
			}
			line = append(line, c)
		}
		if l := string(line); l == "> " || l == ">" {
			line = line[:0]
			emit(promptLine)
		}
		if err != nil && !errors.Is(err, serialport.ErrTimeout) {
			line = line[:0]
			pendingURC = nil
			select {
			case <-s.lost:
			default:
			}
			s.lost <- err
			select { // the port is closed or reopening with backoff: do not spin
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func (s *atConn) urc(u URC) {
	select {
	case s.urcs <- u:
	default:
		s.dropped.Add(1)
	}
}

func (s *atConn) drain() {
	for {
		select {
		case <-s.resp:
		default:
			return
		}
	}
}

// exec runs one command and returns its information lines. logAs is what is logged instead of cmd ("" to
// log cmd itself): used for the PIN.
func (s *atConn) exec(ctx context.Context, cmd, expect, logAs string, timeout time.Duration) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines, err := s.execLocked(ctx, cmd, expect, timeout)
	if logAs == "" {
		logAs = cmd
	}
	s.log(logAs, lines, err)
	return lines, err
}

func (s *atConn) execLocked(ctx context.Context, cmd, expect string, timeout time.Duration) ([]string, error) {
	s.drain()
	s.expect.Store(expect)
	defer s.expect.Store("")
	if _, err := s.port.Write([]byte(cmd + "\r")); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return s.collect(ctx, cmd, timeout, false)
}

// collect gathers lines up to the final result code (or the prompt, when prompt is set).
func (s *atConn) collect(ctx context.Context, cmd string, timeout time.Duration, prompt bool) ([]string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var lines []string
	for {
		select {
		case l := <-s.resp:
			switch {
			case l == cmd: // echo (before ATE0)
			case l == promptLine:
				if prompt {
					return lines, nil
				}
			case isFinal(l):
				if l == "OK" {
					if prompt {
						return lines, &ATError{Command: cmd, Result: "OK without a prompt"}
					}
					return lines, nil
				}
				return lines, &ATError{Command: cmd, Result: l}
			default:
				lines = append(lines, l)
			}
		case <-t.C:
			return lines, fmt.Errorf("%s: %w (%s)", cmd, ErrATTimeout, timeout)
		case <-ctx.Done():
			return lines, ctx.Err()
		}
	}
}

// sendPDU runs AT+CMGS=<tpduLen>, waits for the prompt, writes the PDU and Ctrl-Z, and returns the message
// reference from +CMGS: <mr>.
func (s *atConn) sendPDU(ctx context.Context, p SubmitPDU, promptTimeout, timeout time.Duration) (uint8, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := fmt.Sprintf("AT+CMGS=%d", p.TPDULen)
	mr, lines, err := s.sendLocked(ctx, cmd, p, promptTimeout, timeout)
	s.log(cmd+" "+p.Hex, lines, err)
	return mr, err
}

func (s *atConn) sendLocked(ctx context.Context, cmd string, p SubmitPDU, promptTimeout, timeout time.Duration) (uint8, []string, error) {
	s.drain()
	s.expect.Store("+CMGS:")
	defer s.expect.Store("")
	if _, err := s.port.Write([]byte(cmd + "\r")); err != nil {
		return 0, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if lines, err := s.collect(ctx, cmd, promptTimeout, true); err != nil {
		if errors.Is(err, ErrATTimeout) {
			_, _ = s.port.Write([]byte{0x1B}) // ESC cancels a half-entered message
		}
		return 0, lines, err
	}
	if _, err := s.port.Write([]byte(p.Hex + "\x1A")); err != nil {
		return 0, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	lines, err := s.collect(ctx, cmd, timeout, false)
	if err != nil {
		return 0, lines, err
	}
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "+CMGS:"); ok {
			var mr int
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &mr); err == nil && mr >= 0 && mr <= 255 {
				return uint8(mr), lines, nil
			}
		}
	}
	return 0, lines, &ATError{Command: cmd, Result: "OK without +CMGS: <mr>"}
}
