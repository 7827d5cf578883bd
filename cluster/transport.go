package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const (
	transportMaxPool = 3
	transportTimeout = 10 * time.Second
	// handshakeTimeout bounds the TLS handshake and the protocol byte of an
	// accepted connection.
	handshakeTimeout = 10 * time.Second
)

// The first byte a dialler writes on a connection (after the TLS handshake
// when TLS is on) says which protocol follows. Anything else is closed.
const (
	protoRaft byte = 'R' // raft's NetworkTransport
	protoRPC  byte = 'G' // the cluster RPC (gRPC, HTTP/2)
)

// network is the one listening port of a node: raft's transport and the
// cluster RPC, multiplexed by the protocol byte, over mutual TLS or (on
// loopback only) plain TCP.
type network struct {
	tls    *tls.Config // nil: plain TCP
	ln     net.Listener
	addr   net.Addr // advertised address
	logger hclog.Logger
	// dialer dials other nodes from the address the cluster port is bound to, when it is bound to one:
	// on an appliance with a separate cluster network, cluster traffic leaves through it.
	dialer net.Dialer

	raftLn *subListener
	rpcLn  *subListener

	// connections that passed the handshake, per protocol (for tests)
	raftConns, rpcConns atomic.Int64

	closeOnce sync.Once
	ctx       context.Context // cancelled by close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// checkPlainBind refuses plain TCP on anything but a loopback address.
func checkPlainBind(bind string) error {
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		return fmt.Errorf("cluster: bind address %q: %w", bind, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("cluster: bind address %s is not a loopback address and no TLS is configured: "+
		"the cluster port must use mutual TLS off this machine (create the cluster CA and node certificates with `skjold cluster init` and configure them)", bind)
}

func checkTLSConfig(c *tls.Config) error {
	if len(c.Certificates) == 0 && c.GetCertificate == nil {
		return errors.New("cluster: Config.TLS has no certificate")
	}
	if c.ClientAuth != tls.RequireAndVerifyClientCert {
		return errors.New("cluster: Config.TLS must require and verify client certificates (tls.RequireAndVerifyClientCert; use cluster/pki.Load)")
	}
	if c.MinVersion != 0 && c.MinVersion < tls.VersionTLS12 {
		return errors.New("cluster: Config.TLS allows TLS versions older than 1.2")
	}
	return nil
}

func newNetwork(cfg Config, logger hclog.Logger) (*network, error) {
	if cfg.TLS == nil {
		if err := checkPlainBind(cfg.BindAddr); err != nil {
			return nil, err
		}
	} else if err := checkTLSConfig(cfg.TLS); err != nil {
		return nil, err
	}
	var advertise net.Addr
	if cfg.Advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("cluster: advertise address %q: %w", cfg.Advertise, err)
		}
		advertise = a
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on %s: %w", cfg.BindAddr, err)
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if a, ok := advertise.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("cluster: %s is not an address other nodes can reach: set the advertised address", advertise)
	}
	nw := &network{
		ln:     ln,
		addr:   advertise,
		logger: logger,
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP != nil && !a.IP.IsUnspecified() {
		nw.dialer.LocalAddr = &net.TCPAddr{IP: a.IP}
	}
	nw.ctx, nw.cancel = context.WithCancel(context.Background())
	if cfg.TLS != nil {
		nw.tls = cfg.TLS.Clone()
	}
	nw.raftLn = newSubListener(nw, &nw.raftConns)
	nw.rpcLn = newSubListener(nw, &nw.rpcConns)
	nw.wg.Add(1)
	go nw.serve()
	return nw, nil
}

func (nw *network) serve() {
	defer nw.wg.Done()
	var delay time.Duration
	for {
		c, err := nw.ln.Accept()
		if err != nil {
			select {
			case <-nw.ctx.Done():
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Running out of file descriptors and the like: keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			nw.logger.Warn("accept failed; retrying", "error", err, "delay", delay)
			select {
			case <-time.After(delay):
			case <-nw.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		nw.wg.Add(1)
		go func() {
			defer nw.wg.Done()
			nw.route(c)
		}()
	}
}

// route completes the TLS handshake (if any), reads the protocol byte and
// hands the connection to raft or the RPC server.
func (nw *network) route(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	// Closing the network interrupts a handshake in progress.
	stop := context.AfterFunc(nw.ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn := c
	if nw.tls != nil {
		tc := tls.Server(c, nw.tls)
		if err := tc.Handshake(); err != nil {
			nw.logger.Warn("refused a cluster connection: TLS handshake failed", "remote", c.RemoteAddr(), "error", err)
			c.Close()
			return
		}
		conn = tc
	}
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		nw.logger.Debug("cluster connection closed before its protocol byte", "remote", c.RemoteAddr(), "error", err)
		conn.Close()
		return
	}
	if !stop() {
		conn.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	var sub *subListener
	switch b[0] {
	case protoRaft:
		sub = nw.raftLn
	case protoRPC:
		sub = nw.rpcLn
	default:
		nw.logger.Warn("refused a cluster connection: unknown protocol", "remote", c.RemoteAddr(), "byte", b[0])
		conn.Close()
		return
	}
	sub.deliver(conn)
}

// dial connects to a node's cluster port and selects proto on it.
func (nw *network) dial(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	c, err := nw.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := nw.handshake(ctx, c, addr, proto)
	if err != nil {
		c.Close()
		return nil, err
	}
	return conn, nil
}

// handshake runs the client side of TLS (if on) on c and writes proto.
func (nw *network) handshake(ctx context.Context, c net.Conn, addr string, proto byte) (net.Conn, error) {
	dl, ok := ctx.Deadline()
	if !ok || time.Until(dl) > handshakeTimeout {
		dl = time.Now().Add(handshakeTimeout)
	}
	_ = c.SetDeadline(dl)
	conn := c
	if nw.tls != nil {
		cfg := nw.tls
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			// A configuration that checks host names (not the one
			// cluster/pki makes) needs the dialled one.
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	if _, err := conn.Write([]byte{proto}); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return conn, nil
}

func (nw *network) close() error {
	var err error
	nw.closeOnce.Do(func() {
		nw.cancel()
		err = nw.ln.Close()
		nw.wg.Wait()
	})
	return err
}

// subListener is the net.Listener of one protocol on the shared port.
// Closing it stops only that protocol's Accept.
type subListener struct {
	nw       *network
	ch       chan net.Conn
	accepted *atomic.Int64
	once     sync.Once
	closed   chan struct{}
}

func newSubListener(nw *network, accepted *atomic.Int64) *subListener {
	return &subListener{nw: nw, ch: make(chan net.Conn), accepted: accepted, closed: make(chan struct{})}
}

func (l *subListener) deliver(c net.Conn) {
	l.accepted.Add(1)
	select {
	case l.ch <- c:
	case <-l.closed:
		c.Close()
	case <-l.nw.ctx.Done():
		c.Close()
	}
}

var errListenerClosed = errors.New("cluster: listener closed")

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, errListenerClosed
	case <-l.nw.ctx.Done():
		return nil, errListenerClosed
	}
}

func (l *subListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *subListener) Addr() net.Addr { return l.nw.addr }

// streamLayer is raft's view of the shared port.
type streamLayer struct{ *subListener }

var _ raft.StreamLayer = streamLayer{}

func (s streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.nw.dial(ctx, string(address), protoRaft)
}

// newRaftTransport builds raft's NetworkTransport on the shared port.
func (nw *network) newRaftTransport(logger hclog.Logger) *raft.NetworkTransport {
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  streamLayer{nw.raftLn},
		MaxPool: transportMaxPool,
		Timeout: transportTimeout,
		Logger:  logger,
	})
}
