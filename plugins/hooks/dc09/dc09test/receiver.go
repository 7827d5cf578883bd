// Package dc09test is a DC-09 receiver emulator for tests and for trying the hook by hand: it listens on
// TCP and UDP, checks each frame's CRC and length, decrypts it with the key, records it and answers as
// scripted (ACK by default; NAK, DUH or nothing). A frame it cannot read is answered with DUH.
package dc09test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/skjold-alarm/skjold/plugins/hooks/dc09"
)

// Answer is what the receiver does with one message.
type Answer int

const (
	ACK Answer = iota
	NAK
	DUH
	Silent   // no answer
	StaleACK // an ACK for the previous sequence number (a late answer to an older message)
)

func (a Answer) String() string {
	return [...]string{"ACK", "NAK", "DUH", "none", "stale ACK"}[a]
}

// Received is one frame that arrived.
type Received struct {
	Transport string // "tcp" or "udp"
	Raw       []byte
	Frame     dc09.Frame
	Err       error  // the frame could not be read (answered DUH)
	Answer    Answer // what the receiver did
}

// Receiver is a running emulator.
type Receiver struct {
	key []byte
	tcp net.Listener
	udp net.PacketConn
	got chan Received

	mu     sync.Mutex
	script []Answer
	all    []Received
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// Start listens on addr (e.g. "127.0.0.1:0") for TCP and on a UDP port of the same host (the same port
// number when addr names one). key decrypts encrypted frames and encrypts ACKs to them.
func Start(addr string, key []byte) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	port := ln.Addr().(*net.TCPAddr).Port
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		pc, err = net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	r := &Receiver{key: key, tcp: ln, udp: pc, got: make(chan Received, 4096), conns: map[net.Conn]bool{}}
	r.wg.Add(2)
	go r.acceptLoop()
	go r.udpLoop()
	return r, nil
}

// TCPAddr and UDPAddr are where the receiver listens.
func (r *Receiver) TCPAddr() string { return r.tcp.Addr().String() }
func (r *Receiver) UDPAddr() string { return r.udp.LocalAddr().String() }

// Script queues answers for the next messages, in order; once it is used up every message gets ACK.
func (r *Receiver) Script(a ...Answer) {
	r.mu.Lock()
	r.script = append(r.script, a...)
	r.mu.Unlock()
}

// Next waits for the next frame.
func (r *Receiver) Next(ctx context.Context) (Received, error) {
	select {
	case g := <-r.got:
		return g, nil
	case <-ctx.Done():
		return Received{}, ctx.Err()
	}
}

// NextWithin is Next with a timeout.
func (r *Receiver) NextWithin(d time.Duration) (Received, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return r.Next(ctx)
}

// All returns every frame received so far.
func (r *Receiver) All() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.all...)
}

// DropConnections closes every open TCP connection (the receiver restarted).
func (r *Receiver) DropConnections() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.Close()
	}
}

// Close stops the receiver.
func (r *Receiver) Close() {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.tcp.Close()
	r.udp.Close()
	r.wg.Wait()
}

func (r *Receiver) acceptLoop() {
	defer r.wg.Done()
	for {
		c, err := r.tcp.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			c.Close()
			return
		}
		r.conns[c] = true
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serveConn(c)
	}
}

func (r *Receiver) serveConn(c net.Conn) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		c.Close()
	}()
	rd := bufio.NewReaderSize(c, dc09.MaxFrame+16)
	for {
		raw, err := rd.ReadSlice('\r')
		if err != nil {
			return
		}
		if ans := r.handle("tcp", append([]byte(nil), raw...)); ans != nil {
			if _, err := c.Write(ans); err != nil {
				return
			}
		}
	}
}

func (r *Receiver) udpLoop() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := r.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		if ans := r.handle("udp", append([]byte(nil), buf[:n]...)); ans != nil {
			_, _ = r.udp.WriteTo(ans, from)
		}
	}
}

// handle records one frame and returns the answer to send (nil: none).
func (r *Receiver) handle(transport string, raw []byte) []byte {
	f, err := dc09.Parse(raw, r.key)
	rec := Received{Transport: transport, Raw: raw, Frame: f, Err: err}
	r.mu.Lock()
	ans := ACK
	if len(r.script) > 0 {
		ans, r.script = r.script[0], r.script[1:]
	}
	if err != nil {
		ans = DUH
	}
	rec.Answer = ans
	r.all = append(r.all, rec)
	r.mu.Unlock()
	select {
	case r.got <- rec:
	default:
	}
	out, err := answer(ans, f, r.key)
	if err != nil {
		return nil
	}
	return out
}

// answer builds the receiver's reply to f.
func answer(a Answer, f dc09.Frame, key []byte) ([]byte, error) {
	now := time.Now()
	switch a {
	case ACK:
		var k []byte
		if f.Encrypted {
			k = key
		}
		return dc09.Encode(dc09.Frame{ID: dc09.IDAck, Seq: f.Seq, Receiver: f.Receiver, Line: f.Line, Account: f.Account, Time: now}, k, nil)
	case NAK:
		return dc09.Encode(dc09.Frame{ID: dc09.IDNak, Seq: "0000", Receiver: "0", Line: "0", AccountPrefix: 'A', Account: "0", Time: now}, nil, nil)
	case DUH:
		seq := f.Seq
		if seq == "" {
			seq = "0000"
		}
		return dc09.Encode(dc09.Frame{ID: dc09.IDDuh, Seq: seq, Receiver: f.Receiver, Line: f.Line, Account: f.Account}, nil, nil)
	case Silent:
		return nil, errors.New("silent")
	case StaleACK:
		n, _ := strconv.Atoi(f.Seq)
		return dc09.Encode(dc09.Frame{ID: dc09.IDAck, Seq: dc09.SeqString((n+9997)%9999 + 1), Receiver: f.Receiver, Line: f.Line, Account: f.Account, Time: now}, nil, nil)
	}
	return nil, fmt.Errorf("unknown answer %d", a)
}
