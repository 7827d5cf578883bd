package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The cluster RPC is gRPC on the shared cluster port (protocol byte 'G'),
// without protobuf: every method is unary, takes and returns raw bytes, and
// is named "/skjold.cluster.v1/<method>". Errors travel as gRPC statuses
// whose trailer says which of this package's errors they are (see
// rpcStatus), so that errors.Is/As work on the caller's side.

// Handler serves the cluster RPC methods that are not the cluster's own
// (Config.Handler). It must honour ctx, which carries the caller's deadline
// and is cancelled on Shutdown. An error wrapping ErrUnknownMethod says the
// method does not exist; one wrapping ErrNotLeader (ideally a
// *NotLeaderError) says only the leader serves it; any other error reaches
// the caller as a *RemoteError with the error's message.
type Handler func(ctx context.Context, method string, body []byte) ([]byte, error)

// ResultCodec carries a state machine result (what StateMachine.ApplyEntries
// returned for an entry) from the leader to the node that forwarded the
// proposal. Decode should return the same types the state machine returns,
// so that Propose's result does not depend on where the leader is.
type ResultCodec interface {
	Encode(result any) ([]byte, error)
	Decode(data []byte) (any, error)
}

// ReservedMethodPrefix starts the names of the cluster's own RPC methods;
// Config.Handler never sees them.
const ReservedMethodPrefix = "cluster."

// The cluster's own RPC methods.
const (
	methodPropose   = "cluster.propose"   // body: entry; reply: encoded result
	methodReadIndex = "cluster.readindex" // reply: 8-byte applied index after VerifyLeader
	methodJoin      = "cluster.join"      // body: JSON {id, addr}
	methodRemove    = "cluster.remove"    // body: server id
	methodTransfer  = "cluster.transfer"  // body: target server id, empty for any
	methodStatus    = "cluster.status"    // reply: JSON nodeStatus
)

const (
	rpcService = "skjold.cluster.v1"
	// maxMessage bounds one request or reply (a proposal, a result).
	maxMessage = 64 << 20
)

var (
	// ErrUnknownMethod is returned by Call when the remote node serves no
	// such method.
	ErrUnknownMethod = errors.New("cluster: unknown method")
	// ErrUnreachable is returned by Call when the remote node could not be
	// reached or the connection failed during the call.
	ErrUnreachable = errors.New("cluster: node unreachable")
	// ErrResult is returned by Propose when the entry was applied but its
	// result could not be encoded or decoded (see Config.Results).
	ErrResult = errors.New("cluster: entry applied, but its result could not be passed back")
	// ErrUnknownMember: the server id is not in the cluster configuration.
	ErrUnknownMember = errors.New("cluster: no such member")
	// ErrMemberConflict: the id is a member at another address, the address
	// belongs to another member, or the member cannot do what was asked.
	ErrMemberConflict = errors.New("cluster: member conflict")
)

// Trailer keys of errors crossing the wire.
const (
	mdKind       = "skjold-error"
	mdLeaderID   = "skjold-leader-id"
	mdLeaderAddr = "skjold-leader-addr"
)

// Error kinds on the wire.
const (
	kindError          = "error"
	kindNotLeader      = "not-leader"
	kindUnknownMethod  = "unknown-method"
	kindLeadershipLost = "leadership-lost"
	kindShutdown       = "shutdown"
	kindUnknownMember  = "unknown-member"
	kindMemberConflict = "member-conflict"
	kindResult         = "result"
	kindDeadline       = "deadline"
	kindCanceled       = "canceled"
)

// RemoteError is an error returned by the method on the remote node. It
// unwraps to this package's error it stands for (ErrNotLeader as a
// *NotLeaderError naming the leader, ErrLeadershipLost, ErrShutdown,
// ErrUnknownMethod, ErrUnknownMember, ErrMemberConflict, ErrResult,
// context.DeadlineExceeded, context.Canceled), or to nothing for an
// application error, whose text is Message.
type RemoteError struct {
	Addr, Method string
	Message      string
	kind         string
	inner        error
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("cluster: %s on %s: %s", e.Method, e.Addr, strings.TrimPrefix(e.Message, "cluster: "))
}

func (e *RemoteError) Unwrap() error { return e.inner }

func remoteError(addr, method, msg string, md metadata.MD) *RemoteError {
	e := &RemoteError{Addr: addr, Method: method, Message: msg, kind: first(md, mdKind)}
	switch e.kind {
	case kindNotLeader:
		e.inner = &NotLeaderError{LeaderID: first(md, mdLeaderID), LeaderAddr: first(md, mdLeaderAddr)}
	case kindUnknownMethod:
		e.inner = ErrUnknownMethod
	case kindLeadershipLost:
		e.inner = ErrLeadershipLost
	case kindShutdown:
		e.inner = ErrShutdown
	case kindUnknownMember:
		e.inner = ErrUnknownMember
	case kindMemberConflict:
		e.inner = ErrMemberConflict
	case kindResult:
		e.inner = ErrResult
	case kindDeadline:
		e.inner = context.DeadlineExceeded
	case kindCanceled:
		e.inner = context.Canceled
	}
	return e
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// rpcStatus turns a handler's error into a gRPC status and the trailer
// that identifies it. Order matters: an error that is both "leadership
// lost" and "shut down" (the node stopped while committing) is the former.
func rpcStatus(err error) (*status.Status, metadata.MD) {
	md := metadata.MD{}
	var code codes.Code
	var nle *NotLeaderError
	kind := kindError
	switch {
	case errors.As(err, &nle):
		kind, code = kindNotLeader, codes.FailedPrecondition
		md.Set(mdLeaderID, nle.LeaderID)
		md.Set(mdLeaderAddr, nle.LeaderAddr)
	case errors.Is(err, ErrNotLeader):
		kind, code = kindNotLeader, codes.FailedPrecondition
	case errors.Is(err, ErrUnknownMethod):
		kind, code = kindUnknownMethod, codes.Unimplemented
	case errors.Is(err, ErrLeadershipLost):
		kind, code = kindLeadershipLost, codes.Aborted
	case errors.Is(err, ErrShutdown):
		kind, code = kindShutdown, codes.Unavailable
	case errors.Is(err, ErrUnknownMember):
		kind, code = kindUnknownMember, codes.NotFound
	case errors.Is(err, ErrMemberConflict):
		kind, code = kindMemberConflict, codes.FailedPrecondition
	case errors.Is(err, ErrResult):
		kind, code = kindResult, codes.Internal
	case errors.Is(err, context.DeadlineExceeded):
		kind, code = kindDeadline, codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		kind, code = kindCanceled, codes.Canceled
	default:
		code = codes.Unknown
	}
	md.Set(mdKind, kind)
	return status.New(code, err.Error()), md
}

// callError is a call that failed outside the remote method: the node
// could not be reached or the connection broke.
type callError struct {
	addr, method string
	sent         bool // the request may have reached the node
	err          error
}

func (e *callError) Error() string {
	if e.sent {
		return fmt.Sprintf("cluster: %s on %s: connection failed during the call (the outcome is unknown): %v", e.method, e.addr, e.err)
	}
	return fmt.Sprintf("cluster: %s on %s: node unreachable: %v", e.method, e.addr, e.err)
}

func (e *callError) Is(target error) bool { return target == ErrUnreachable }

// rawCodec passes []byte messages through.
type rawCodec struct{}

func (rawCodec) Name() string { return "skjold-raw" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("cluster: rpc message of type %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("cluster: rpc message of type %T", v)
	}
	*b = append([]byte(nil), data...)
	return nil
}

// muxCreds are gRPC's transport credentials for the shared port: on the
// client, the TLS handshake (if any) and the protocol byte; on the server
// the network mux already did both, and only the peer's identity is passed
// on.
type muxCreds struct{ nw *network }

func (c muxCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, err := c.nw.handshake(ctx, raw, authority, protoRPC)
	if err != nil {
		return nil, nil, err
	}
	return conn, authInfo(conn), nil
}

func (c muxCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, authInfo(conn), nil
}

func (c muxCreds) Info() credentials.ProtocolInfo {
	if c.nw.tls != nil {
		return credentials.ProtocolInfo{SecurityProtocol: "tls"}
	}
	return credentials.ProtocolInfo{SecurityProtocol: "plain"}
}

func (c muxCreds) Clone() credentials.TransportCredentials { return c }
func (c muxCreds) OverrideServerName(string) error         { return nil }

type plainAuth struct{ credentials.CommonAuthInfo }

func (plainAuth) AuthType() string { return "plain" }

func authInfo(conn net.Conn) credentials.AuthInfo {
	if tc, ok := conn.(*tls.Conn); ok {
		return credentials.TLSInfo{
			State:          tc.ConnectionState(),
			CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
		}
	}
	return plainAuth{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}
}

// CallerID returns, inside a Handler, the node id (certificate common name)
// of the node that made the call; empty on plain TCP.
func CallerID(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
		return ti.State.PeerCertificates[0].Subject.CommonName
	}
	return ""
}

func validMethod(m string) bool {
	if m == "" || len(m) > 128 {
		return false
	}
	for _, r := range m {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (n *Node) newRPCServer() *grpc.Server {
	return grpc.NewServer(
		grpc.Creds(muxCreds{n.net}),
		grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(n.serveRPC),
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxSendMsgSize(maxMessage),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WaitForHandlers(true),
	)
}

// serveRPC serves every method: the cluster's own and Config.Handler's.
func (n *Node) serveRPC(_ any, ss grpc.ServerStream) error {
	full, _ := grpc.MethodFromServerStream(ss)
	var req []byte
	if err := ss.RecvMsg(&req); err != nil {
		return err
	}
	var resp []byte
	var err error
	if method, ok := strings.CutPrefix(full, "/"+rpcService+"/"); ok && validMethod(method) {
		resp, err = n.dispatch(ss.Context(), method, req)
	} else {
		err = fmt.Errorf("%w %q", ErrUnknownMethod, full)
	}
	if err != nil {
		st, md := rpcStatus(err)
		ss.SetTrailer(md)
		return st.Err()
	}
	return ss.SendMsg(&resp)
}

func (n *Node) dispatch(ctx context.Context, method string, body []byte) ([]byte, error) {
	switch method {
	case methodPropose:
		return n.servePropose(ctx, body)
	case methodReadIndex:
		return n.serveReadIndex(ctx)
	case methodJoin:
		return nil, n.serveJoin(ctx, body)
	case methodRemove:
		return nil, n.removeLocal(ctx, string(body))
	case methodTransfer:
		return nil, n.transferLocal(ctx, string(body))
	case methodStatus:
		return n.serveStatus()
	}
	if strings.HasPrefix(method, ReservedMethodPrefix) || n.cfg.Handler == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownMethod, method)
	}
	return n.cfg.Handler(ctx, method, body)
}

// Call calls method on the node at addr (its raft address) over the cluster
// RPC and returns its reply. Connections are made on first use, kept and
// shared by concurrent calls. ctx's deadline and cancellation reach the
// remote handler. Errors: a *RemoteError for an error of the remote method
// (see RemoteError for what it unwraps to), ErrUnreachable (wrapped) when
// the node could not be reached or the connection broke, ctx's error,
// ErrShutdown.
func (n *Node) Call(ctx context.Context, addr, method string, body []byte) ([]byte, error) {
	out, _, err := n.call(ctx, addr, method, body)
	return out, err
}

// call is Call, also saying whether the request may have reached the node.
func (n *Node) call(ctx context.Context, addr, method string, body []byte) (out []byte, sent bool, err error) {
	if !validMethod(method) {
		return nil, false, fmt.Errorf("cluster: invalid method name %q", method)
	}
	if n.isShutdown.Load() {
		return nil, false, ErrShutdown
	}
	cc, err := n.clientConn(addr)
	if err != nil {
		return nil, false, err
	}
	var md metadata.MD
	var p peer.Peer
	err = cc.Invoke(ctx, "/"+rpcService+"/"+method, &body, &out,
		grpc.ForceCodec(rawCodec{}), grpc.Trailer(&md), grpc.Peer(&p))
	if err == nil {
		return out, true, nil
	}
	// The request can only have reached the node over a transport: no
	// peer means it never left.
	sent = p.Addr != nil
	st := status.Convert(err)
	if len(md.Get(mdKind)) > 0 {
		return nil, true, remoteError(addr, method, st.Message(), md)
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, sent, fmt.Errorf("cluster: %s on %s: %w", method, addr, cerr)
	}
	if n.isShutdown.Load() {
		return nil, sent, ErrShutdown
	}
	// The deadline travels with the call: the remote end may see it pass
	// (and reset the stream) a moment before ctx does here.
	if st.Code() == codes.DeadlineExceeded {
		return nil, sent, fmt.Errorf("cluster: %s on %s: %w", method, addr, context.DeadlineExceeded)
	}
	return nil, sent, &callError{addr: addr, method: method, sent: sent, err: err}
}

func (n *Node) clientConn(addr string) (*grpc.ClientConn, error) {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if n.conns == nil {
		return nil, ErrShutdown
	}
	if cc := n.conns[addr]; cc != nil {
		return cc, nil
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(muxCreds{n.net}),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return n.net.dialer.DialContext(ctx, "tcp", a)
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithUserAgent("skjold-cluster"),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: rpc client for %s: %w", addr, err)
	}
	n.conns[addr] = cc
	return cc, nil
}

// closeClients closes every outgoing connection; later calls fail with
// ErrShutdown.
func (n *Node) closeClients() {
	n.connMu.Lock()
	conns := n.conns
	n.conns = nil
	n.connMu.Unlock()
	for _, cc := range conns {
		_ = cc.Close()
	}
}
