package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/skjold-alarm/skjold/cluster/pki"
)

// testPKI makes a cluster CA and certificates for ids in a temporary
// directory. The certificates name no host the tests dial (host names are
// not checked).
func testPKI(t testing.TB, ids ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	specs := make([]pki.NodeSpec, len(ids))
	for i, id := range ids {
		specs[i] = pki.NodeSpec{ID: id, Hosts: []string{id + ".skjold.test"}}
	}
	if err := pki.Init(dir, specs); err != nil {
		t.Fatal(err)
	}
	return dir
}

func tlsFor(t testing.TB, dir, id string) *tls.Config {
	t.Helper()
	c, err := pki.LoadDir(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testResults is the ResultCodec of the tests: it carries testSM's results
// (uint64 counts and error values) and nil.
type testResults struct{}

func (testResults) Encode(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return []byte("n"), nil
	case uint64:
		return []byte("u" + strconv.FormatUint(v, 10)), nil
	case error:
		return []byte("e" + v.Error()), nil
	}
	return nil, fmt.Errorf("testResults: cannot encode %T", v)
}

func (testResults) Decode(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, errors.New("testResults: empty")
	}
	switch b[0] {
	case 'n':
		return nil, nil
	case 'u':
		return strconv.ParseUint(string(b[1:]), 10, 64)
	case 'e':
		return errors.New(string(b[1:])), nil
	}
	return nil, fmt.Errorf("testResults: bad tag %q", b[0])
}

// startTLSCluster is startCluster with mutual TLS from a fresh cluster CA
// (which also has certificates for n4..n6 to join later) and testResults.
func startTLSCluster(t *testing.T, size int, mod func(*Config)) ([]*testMember, string) {
	t.Helper()
	var ids []string
	for i := 1; i <= size+3; i++ {
		ids = append(ids, fmt.Sprintf("n%d", i))
	}
	dir := testPKI(t, ids...)
	ms := startCluster(t, size, func(c *Config) {
		c.TLS = tlsFor(t, dir, c.NodeID)
		c.Results = testResults{}
		if mod != nil {
			mod(c)
		}
	})
	return ms, dir
}

func followersOf(t *testing.T, ms []*testMember) (leader *testMember, followers []*testMember) {
	t.Helper()
	leader = leaderOf(t, ms)
	for _, m := range ms {
		if m != leader {
			followers = append(followers, m)
		}
	}
	return leader, followers
}

func TestOpenRefusesPlainOffLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "[::]:0"} {
		cfg := testConfig(t, "n1", t.TempDir(), addr, true)
		_, err := Open(cfg, newTestSM())
		if err == nil || !strings.Contains(err.Error(), "skjold cluster init") || !strings.Contains(err.Error(), "TLS") {
			t.Errorf("Open on %s without TLS: %v", addr, err)
		}
	}
	// A TLS configuration that does not check clients is refused too.
	dir := testPKI(t, "n1")
	cfg := testConfig(t, "n1", t.TempDir(), "", true)
	cfg.TLS = tlsFor(t, dir, "n1")
	cfg.TLS.ClientAuth = tls.VerifyClientCertIfGiven
	if _, err := Open(cfg, newTestSM()); err == nil || !strings.Contains(err.Error(), "client certificates") {
		t.Errorf("Open with optional client certificates: %v", err)
	}
	cfg = testConfig(t, "n1", t.TempDir(), "", true)
	cfg.Join = []string{"127.0.0.1:1"}
	if _, err := Open(cfg, newTestSM()); err == nil || !strings.Contains(err.Error(), "exclusive") {
		t.Errorf("Open with Bootstrap and Join: %v", err)
	}
}

// TestTLSRefusesStrangers checks that nothing reaches raft or the cluster
// RPC of a TLS node without a certificate of its cluster CA.
func TestTLSRefusesStrangers(t *testing.T) {
	dir := testPKI(t, "n1", "n2")
	cfg := testConfig(t, "n1", t.TempDir(), "", true)
	cfg.TLS = tlsFor(t, dir, "n1")
	var served atomic.Int64
	cfg.Handler = func(ctx context.Context, method string, body []byte) ([]byte, error) {
		served.Add(1)
		return body, nil
	}
	n1 := openTestNode(t, cfg, newTestSM())
	waitIsLeader(t, n1)
	addr := n1.Addr()

	// raft's own plain TCP transport.
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var resp raft.AppendEntriesResponse
	err = plain.AppendEntries("n1", raft.ServerAddress(addr), &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("x"), Addr: []byte("127.0.0.1:1")},
		Term:      99,
	}, &resp)
	if err == nil {
		t.Fatalf("plain raft AppendEntries answered: %+v", resp)
	}

	// Raw bytes, with the raft protocol byte first: the reply is at most a
	// TLS alert.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append([]byte{protoRaft}, "\x00\x00\x00\x10raft-shaped-bytes"...)); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if len(got) > 0 && got[0] != 0x15 { // TLS alert record
		t.Fatalf("plain client got %q", got)
	}

	// A plain node calling the TLS node.
	pcfg := testConfig(t, "p", t.TempDir(), "", false)
	pn := openTestNode(t, pcfg, newTestSM())
	if _, err := pn.Call(ctxTimeout(t, 5*time.Second), addr, "echo", []byte("x")); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("plain Call: %v", err)
	}

	// A node of another cluster CA, dialling as client: its handshake fails.
	foreign := testPKI(t, "n1", "evil")
	evil := tlsFor(t, foreign, "evil")
	if tc, err := tls.Dial("tcp", addr, evil); err == nil {
		tc.Close()
		t.Fatal("foreign-CA client completed the TLS handshake")
	}
	// Even one that trusts this cluster's CA, but presents a foreign
	// certificate: the server refuses it (in TLS 1.3 the refusal arrives
	// after the client's side of the handshake).
	sneaky := evil.Clone()
	sneaky.RootCAs = cfg.TLS.RootCAs
	sneaky.VerifyConnection = nil
	if tc, err := tls.Dial("tcp", addr, sneaky); err == nil {
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = tc.Write([]byte{protoRPC})
		_, err = tc.Read(make([]byte, 1))
		tc.Close()
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("foreign client certificate: read %v", err)
		}
	}
	// A whole foreign node.
	ecfg := testConfig(t, "evil", t.TempDir(), "", false)
	ecfg.TLS = evil
	en := openTestNode(t, ecfg, newTestSM())
	if _, err := en.Call(ctxTimeout(t, 5*time.Second), addr, "echo", []byte("x")); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("foreign node Call: %v", err)
	}

	if r, g, s := n1.net.raftConns.Load(), n1.net.rpcConns.Load(), served.Load(); r != 0 || g != 0 || s != 0 {
		t.Fatalf("strangers got through: %d raft and %d rpc connections, %d calls served", r, g, s)
	}

	// A member of the cluster gets through.
	n2cfg := testConfig(t, "n2", t.TempDir(), "", false)
	n2cfg.TLS = tlsFor(t, dir, "n2")
	n2 := openTestNode(t, n2cfg, newTestSM())
	out, err := n2.Call(ctxTimeout(t, 5*time.Second), addr, "echo", []byte("hello"))
	if err != nil || string(out) != "hello" {
		t.Fatalf("member Call: %q, %v", out, err)
	}
	if g := n1.net.rpcConns.Load(); g != 1 {
		t.Fatalf("%d rpc connections, want 1", g)
	}
}

func TestCall(t *testing.T) {
	dir := testPKI(t, "n1", "n2")
	var (
		mu       sync.Mutex
		callers  []string
		deadline time.Duration
		arrived  = make(chan struct{}, 64)
		release  = make(chan struct{})
	)
	handler := func(ctx context.Context, method string, body []byte) ([]byte, error) {
		switch method {
		case "echo":
			mu.Lock()
			callers = append(callers, CallerID(ctx))
			mu.Unlock()
			return append([]byte("echo:"), body...), nil
		case "fail":
			return nil, errors.New("boom: " + string(body))
		case "leader-only":
			return nil, &NotLeaderError{LeaderID: "nX", LeaderAddr: "127.0.0.1:9"}
		case "wait":
			dl, ok := ctx.Deadline()
			mu.Lock()
			if ok {
				deadline = time.Until(dl)
			}
			mu.Unlock()
			<-ctx.Done()
			return nil, ctx.Err()
		case "gather":
			arrived <- struct{}{}
			select {
			case <-release:
				return body, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case "empty":
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s", ErrUnknownMethod, method)
	}
	cfg1 := testConfig(t, "n1", t.TempDir(), "", true)
	cfg1.TLS = tlsFor(t, dir, "n1")
	cfg1.Handler = handler
	n1 := openTestNode(t, cfg1, newTestSM())
	cfg2 := testConfig(t, "n2", t.TempDir(), "", false)
	cfg2.TLS = tlsFor(t, dir, "n2")
	n2 := openTestNode(t, cfg2, newTestSM())
	ctx := ctxTimeout(t, 20*time.Second)
	addr := n1.Addr()

	out, err := n2.Call(ctx, addr, "echo", []byte("hi"))
	if err != nil || string(out) != "echo:hi" {
		t.Fatalf("echo: %q %v", out, err)
	}
	mu.Lock()
	if len(callers) != 1 || callers[0] != "n2" {
		t.Fatalf("CallerID = %v, want n2", callers)
	}
	mu.Unlock()
	if out, err := n2.Call(ctx, addr, "empty", nil); err != nil || len(out) != 0 {
		t.Fatalf("empty: %q %v", out, err)
	}

	_, err = n2.Call(ctx, addr, "fail", []byte("x"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "boom: x" || re.Method != "fail" || re.Addr != addr || errors.Unwrap(err) != nil {
		t.Fatalf("fail: %#v", err)
	}
	if !strings.Contains(err.Error(), "boom: x") {
		t.Fatalf("fail: message %q", err)
	}

	_, err = n2.Call(ctx, addr, "leader-only", nil)
	var nle *NotLeaderError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nle) || nle.LeaderID != "nX" || nle.LeaderAddr != "127.0.0.1:9" {
		t.Fatalf("leader-only: %v", err)
	}

	for _, m := range []string{"nope", "cluster.nope"} {
		if _, err := n2.Call(ctx, addr, m, nil); !errors.Is(err, ErrUnknownMethod) {
			t.Fatalf("%s: %v", m, err)
		}
	}
	// n2 has no Handler at all.
	if _, err := n1.Call(ctx, n2.Addr(), "echo", nil); !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("Call on a node without Handler: %v", err)
	}
	if _, err := n2.Call(ctx, addr, "a/b", nil); err == nil {
		t.Fatal("invalid method name accepted")
	}

	// The deadline reaches the handler, and its expiry comes back as one.
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = n2.Call(wctx, addr, "wait", nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait: %v", err)
	}
	mu.Lock()
	if deadline <= 0 || deadline > 300*time.Millisecond {
		t.Fatalf("handler saw deadline %v", deadline)
	}
	mu.Unlock()

	// Many concurrent calls on one connection: every one is in the handler
	// at the same time before any returns.
	const calls = 32
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := []byte(strconv.Itoa(i))
			out, err := n2.Call(ctx, addr, "gather", want)
			if err == nil && !bytes.Equal(out, want) {
				err = fmt.Errorf("got %q, want %q", out, want)
			}
			errs <- err
		}()
	}
	for i := 0; i < calls; i++ {
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatalf("only %d of %d calls reached the handler", i, calls)
		}
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := n1.net.rpcConns.Load(); c != 1 {
		t.Fatalf("%d connections for all calls, want 1", c)
	}

	if err := n2.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Call(ctx, addr, "echo", nil); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Call after Shutdown: %v", err)
	}
}
