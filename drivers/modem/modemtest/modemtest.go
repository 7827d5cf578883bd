// Package modemtest is a GSM modem emulator for tests and dev stands: it sits on the device side of a
// pseudo-terminal (ptypair) and plays the 3GPP TS 27.005/27.007 AT dialogue byte for byte — echo until
// ATE0, OK / ERROR / +CME ERROR / +CMS ERROR, the SIM PIN, +CSQ and +CREG, a message store served by
// AT+CMGR / AT+CMGL / AT+CMGD, AT+CMGS with the "> " prompt — and sends +CMTI and +CDSI indications on
// demand. It records every command line it received, so a test can assert the exact sequence.
package modemtest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Emulator is a modem on the master side of a pseudo-terminal.
type Emulator struct {
	f    *os.File
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	wmu      sync.Mutex // one write at a time: answers and indications never interleave mid-line
	echo     bool
	pin      string
	locked   bool
	csq      int
	creg     int
	store    map[int]string // index -> PDU hex (with SMSC part)
	next     int
	mr       int
	cmsFail  int      // the next n AT+CMGS fail with +CMS ERROR: 500
	inject   []string // lines written between the information response and OK of the next command
	commands []string
	sent     []string // PDUs received through AT+CMGS
	changed  chan struct{}
	// noStoredReports refuses AT+CNMI with ds=2, as modems that only route status reports directly do.
	noStoredReports bool
}

// Start runs an emulator on f (a ptypair master). pin, when not empty, locks the SIM until AT+CPIN=<pin>.
func Start(f *os.File, pin string) *Emulator {
	e := &Emulator{f: f, stop: make(chan struct{}), done: make(chan struct{}), echo: true, pin: pin, locked: pin != "",
		csq: 20, creg: 1, store: map[int]string{}, next: 1, mr: 1, changed: make(chan struct{})}
	go e.loop()
	return e
}

// Stop ends the emulator (it does not close f).
func (e *Emulator) Stop() {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	<-e.done
}

func (e *Emulator) notify() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// Commands returns every command line received so far (for AT+CMGS, the command; the PDU is in Sent).
func (e *Emulator) Commands() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.commands...)
}

// Sent returns the PDUs received through AT+CMGS.
func (e *Emulator) Sent() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.sent...)
}

// Stored returns the indices of the stored messages.
func (e *Emulator) Stored() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []int
	for i := range e.store {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// WaitFor waits until cond (called with the commands so far) holds, or fails after timeout.
func (e *Emulator) WaitFor(timeout time.Duration, what string, cond func(cmds []string) bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		ok := cond(e.commands)
		ch := e.changed
		e.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return fmt.Errorf("timed out waiting for %s; commands: %q", what, e.Commands())
		}
	}
}

// SetSignal sets the AT+CSQ answer.
func (e *Emulator) SetSignal(csq int) { e.mu.Lock(); e.csq = csq; e.mu.Unlock() }

// SetRegistration sets the stat of the AT+CREG? answer (1 home, 2 searching, 5 roaming).
func (e *Emulator) SetRegistration(stat int) { e.mu.Lock(); e.creg = stat; e.mu.Unlock() }

// RefuseStoredReports makes AT+CNMI=2,1,0,2,0 fail (a modem that only routes status reports directly).
func (e *Emulator) RefuseStoredReports() { e.mu.Lock(); e.noStoredReports = true; e.mu.Unlock() }

// FailSends makes the next n AT+CMGS answer +CMS ERROR: 500.
func (e *Emulator) FailSends(n int) { e.mu.Lock(); e.cmsFail = n; e.mu.Unlock() }

// InjectDuringNext writes line (an unsolicited result) in the middle of the next command's answer, after
// its information lines and before its OK.
func (e *Emulator) InjectDuringNext(line string) {
	e.mu.Lock()
	e.inject = append(e.inject, line)
	e.mu.Unlock()
}

// Store puts a PDU (hex, starting with the SMSC part) in the message store without an indication, as if
// it arrived while nobody listened. It returns its index.
func (e *Emulator) Store(pdu string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := e.next
	e.next++
	e.store[i] = pdu
	return i
}

// Deliver stores a received message and sends +CMTI: "SM",<index>.
func (e *Emulator) Deliver(pdu string) int {
	i := e.Store(pdu)
	e.write(fmt.Sprintf("\r\n+CMTI: \"SM\",%d\r\n", i))
	return i
}

// StatusReport stores a status report and sends +CDSI: "SM",<index>.
func (e *Emulator) StatusReport(pdu string) int {
	i := e.Store(pdu)
	e.write(fmt.Sprintf("\r\n+CDSI: \"SM\",%d\r\n", i))
	return i
}

// Unsolicited writes a raw unsolicited line.
func (e *Emulator) Unsolicited(line string) { e.write("\r\n" + line + "\r\n") }

func (e *Emulator) write(s string) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	_, _ = e.f.Write([]byte(s))
}

func (e *Emulator) loop() {
	defer close(e.done)
	buf := make([]byte, 1024)
	var line []byte
	var pduFor string // the AT+CMGS command whose PDU is being typed
	for {
		select {
		case <-e.stop:
			return
		default:
		}
		_ = e.f.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := e.f.Read(buf)
		for _, c := range buf[:n] {
			if pduFor != "" {
				switch c {
				case 0x1A:
					e.sendDone(pduFor, string(line))
					pduFor, line = "", line[:0]
				case 0x1B:
					e.write("\r\nOK\r\n")
					pduFor, line = "", line[:0]
				default:
					line = append(line, c)
				}
				continue
			}
			if c == '\r' {
				cmd := strings.TrimSpace(string(line))
				line = line[:0]
				if cmd == "" {
					continue
				}
				e.mu.Lock()
				echo := e.echo
				e.mu.Unlock()
				if echo {
					e.write(cmd + "\r")
				}
				if strings.HasPrefix(strings.ToUpper(cmd), "AT+CMGS=") {
					e.record(cmd)
					pduFor = cmd
					e.write("\r\n> ")
					continue
				}
				e.handle(cmd)
				continue
			}
			if c != '\n' {
				line = append(line, c)
			}
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
	}
}

func (e *Emulator) record(cmd string) {
	e.mu.Lock()
	e.commands = append(e.commands, cmd)
	e.notify()
	e.mu.Unlock()
}

// reply writes the information lines, any injected lines, then the final result.
func (e *Emulator) reply(final string, info ...string) {
	e.mu.Lock()
	inject := e.inject
	e.inject = nil
	e.mu.Unlock()
	var sb strings.Builder
	for _, l := range info {
		sb.WriteString("\r\n" + l + "\r\n")
	}
	for _, l := range inject {
		sb.WriteString("\r\n" + l + "\r\n")
	}
	sb.WriteString("\r\n" + final + "\r\n")
	e.write(sb.String())
}

func tpduLen(pdu string) int {
	b, err := hex.DecodeString(pdu)
	if err != nil || len(b) == 0 {
		return 0
	}
	return len(b) - 1 - int(b[0])
}

func (e *Emulator) handle(cmd string) {
	// Commands are recorded before they are answered (a deletion takes effect first), so a test that saw a
	// command knows the store reflects it.
	u := strings.ToUpper(cmd)
	if strings.HasPrefix(u, "AT+CMGD=") {
		i, _ := strconv.Atoi(cmd[len("AT+CMGD="):])
		e.mu.Lock()
		if !e.locked {
			delete(e.store, i)
		}
		e.mu.Unlock()
	}
	e.record(cmd)
	e.mu.Lock()
	locked := e.locked
	e.mu.Unlock()
	switch {
	case u == "AT" || u == "AT+CMEE=2" || u == "AT+CMGF=0":
		e.reply("OK")
	case strings.HasPrefix(u, "AT+CNMI="):
		e.mu.Lock()
		refuse := e.noStoredReports && u == "AT+CNMI=2,1,0,2,0"
		e.mu.Unlock()
		if refuse {
			e.reply("+CMS ERROR: 303") // operation not supported
		} else {
			e.reply("OK")
		}
	case u == "ATE0" || u == "ATE1":
		e.mu.Lock()
		e.echo = u == "ATE1"
		e.mu.Unlock()
		e.reply("OK")
	case u == "AT+CPIN?":
		if locked {
			e.reply("OK", "+CPIN: SIM PIN")
		} else {
			e.reply("OK", "+CPIN: READY")
		}
	case strings.HasPrefix(u, "AT+CPIN="):
		e.mu.Lock()
		ok := strings.Trim(cmd[len("AT+CPIN="):], `"`) == e.pin
		if ok {
			e.locked = false
		}
		e.mu.Unlock()
		if ok {
			e.reply("OK")
		} else {
			e.reply("+CME ERROR: incorrect password")
		}
	case locked && strings.HasPrefix(u, "AT+CMG"):
		e.reply("+CMS ERROR: SIM PIN required")
	case u == "AT+CSQ":
		e.mu.Lock()
		v := e.csq
		e.mu.Unlock()
		e.reply("OK", fmt.Sprintf("+CSQ: %d,99", v))
	case u == "AT+CREG?":
		e.mu.Lock()
		v := e.creg
		e.mu.Unlock()
		e.reply("OK", fmt.Sprintf("+CREG: 0,%d", v))
	case strings.HasPrefix(u, "AT+CMGR="):
		i, _ := strconv.Atoi(cmd[len("AT+CMGR="):])
		e.mu.Lock()
		pdu, ok := e.store[i]
		e.mu.Unlock()
		if !ok {
			e.reply("+CMS ERROR: 321")
			return
		}
		e.reply("OK", fmt.Sprintf("+CMGR: 0,,%d", tpduLen(pdu)), pdu)
	case u == "AT+CMGL=4":
		e.mu.Lock()
		var idx []int
		for i := range e.store {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		var info []string
		for _, i := range idx {
			info = append(info, fmt.Sprintf("+CMGL: %d,0,,%d", i, tpduLen(e.store[i])), e.store[i])
		}
		e.mu.Unlock()
		e.reply("OK", info...)
	case strings.HasPrefix(u, "AT+CMGD="):
		e.reply("OK")
	default:
		e.reply("ERROR")
	}
}

func (e *Emulator) sendDone(cmd, pdu string) {
	e.mu.Lock()
	fail := e.cmsFail > 0
	if fail {
		e.cmsFail--
	}
	n, _ := strconv.Atoi(cmd[len("AT+CMGS="):])
	bad := tpduLen(pdu) != n
	mr := e.mr
	if !fail && !bad {
		e.sent = append(e.sent, pdu)
		e.mr = (e.mr + 1) % 256
	}
	e.notify()
	e.mu.Unlock()
	switch {
	case bad:
		e.reply("+CMS ERROR: 304") // invalid PDU mode parameter
	case fail:
		e.reply("+CMS ERROR: 500")
	default:
		e.reply("OK", fmt.Sprintf("+CMGS: %d", mr))
	}
}
