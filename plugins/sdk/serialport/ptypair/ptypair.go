// Package ptypair makes a pseudo-terminal that stands in for a serial device: a plugin opens Path as its
// serial port (through serialport.Open, termios and all), and the other end, Master, reads what the plugin
// wrote and writes what the device would answer. It serves tests, device simulators and the dev stand-in
// for hardware that is not attached (e.g. a siren relay board).
package ptypair

import (
	"fmt"
	"os"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Pair is an open pseudo-terminal.
type Pair struct {
	// Master is the device's side. It supports deadlines (SetReadDeadline), so a reader can wait for
	// bytes with a bound instead of sleeping.
	Master *os.File
	// Path is the terminal's path (/dev/pts/N): give it to the plugin as its port.
	Path string
	// slave is held open so that the master never reads EIO while the plugin has the port closed (between
	// a crash and its restart, or while it reopens).
	slave *os.File
}

// Open creates a pair with the terminal in raw mode.
func Open() (*Pair, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("pseudo-terminal: %w", err)
	}
	if err := makeRaw(s); err != nil {
		m.Close()
		s.Close()
		return nil, fmt.Errorf("pseudo-terminal %s: raw mode: %w", s.Name(), err)
	}
	// creack/pty leaves the master in blocking mode, where deadlines do not work. A non-blocking duplicate
	// wrapped by os.NewFile goes through the runtime poller.
	// F_DUPFD_CLOEXEC: a plain dup would be inherited by every process started later (plugins), which
	// would keep the master open after Close.
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		m.Close()
		s.Close()
		return nil, fmt.Errorf("pseudo-terminal: dup: %w", err)
	}
	m.Close()
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		s.Close()
		return nil, fmt.Errorf("pseudo-terminal: non-blocking: %w", err)
	}
	return &Pair{Master: os.NewFile(uintptr(fd), "/dev/ptmx"), Path: s.Name(), slave: s}, nil
}

func makeRaw(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Close closes both ends. A plugin writing to Path afterwards gets an I/O error, as after an unplug.
func (p *Pair) Close() error {
	err1 := p.Master.Close()
	err2 := p.slave.Close()
	if err1 != nil {
		return err1
	}
	return err2
}
