package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testSM is a small in-memory state machine: it counts applied entries,
// keeps "set k v" pairs and a hash chained over (index, data) of every
// applied entry. It survives a Node's Shutdown (the same value is handed to
// the next Open), which stands in for the durable state a real one keeps.
type testSM struct {
	mu       sync.Mutex
	applied  uint64
	count    uint64
	hash     [32]byte
	kv       map[string]string
	seen     map[uint64]int // applications per index, not part of the state
	byData   map[string]int // applications per entry payload, not part of the state
	restores int
}

type testSMState struct {
	Applied uint64            `json:"applied"`
	Count   uint64            `json:"count"`
	Hash    string            `json:"hash"`
	KV      map[string]string `json:"kv"`
}

func newTestSM() *testSM {
	return &testSM{kv: map[string]string{}, seen: map[uint64]int{}, byData: map[string]int{}}
}

func (s *testSM) ApplyEntries(entries []Entry) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]any, len(entries))
	for i, e := range entries {
		if e.Index <= s.applied {
			continue
		}
		s.seen[e.Index]++
		s.byData[string(e.Data)]++
		h := sha256.New()
		h.Write(s.hash[:])
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], e.Index)
		h.Write(b[:])
		h.Write(e.Data)
		h.Sum(s.hash[:0])
		s.count++
		s.applied = e.Index
		switch d := string(e.Data); {
		case d == "fail":
			out[i] = errors.New("rejected")
		case strings.HasPrefix(d, "set "):
			k, v, _ := strings.Cut(strings.TrimPrefix(d, "set "), " ")
			s.kv[k] = v
			out[i] = s.count
		default:
			out[i] = s.count
		}
	}
	return out
}

func (s *testSM) AppliedIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

func (s *testSM) state() testSMState {
	kv := make(map[string]string, len(s.kv))
	for k, v := range s.kv {
		kv[k] = v
	}
	return testSMState{Applied: s.applied, Count: s.count, Hash: hex.EncodeToString(s.hash[:]), KV: kv}
}

func (s *testSM) Snapshot() (StateSnapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &testSnap{st: s.state()}, nil
}

func (s *testSM) Restore(r io.Reader) error {
	var st testSMState
	if err := json.NewDecoder(r).Decode(&st); err != nil {
		return err
	}
	h, err := hex.DecodeString(st.Hash)
	if err != nil || len(h) != 32 {
		return errors.New("bad hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied, s.count = st.Applied, st.Count
	copy(s.hash[:], h)
	s.kv = st.KV
	if s.kv == nil {
		s.kv = map[string]string{}
	}
	s.restores++
	return nil
}

func (s *testSM) Hash() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return hex.EncodeToString(s.hash[:])
}

func (s *testSM) Count() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

func (s *testSM) Get(k string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kv[k]
}

func (s *testSM) Restores() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restores
}

// applications is how many times an entry with this payload was applied.
func (s *testSM) applications(data string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byData[data]
}

// maxApplications is the highest number of times any index was applied.
func (s *testSM) maxApplications() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := 0
	for _, c := range s.seen {
		m = max(m, c)
	}
	return m
}

type testSnap struct{ st testSMState }

func (t *testSnap) WriteTo(w io.Writer) (int64, error) {
	b, err := json.Marshal(t.st)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

func (t *testSnap) Release() {}

// testLogger logs to stderr at debug level with CLUSTER_TEST_LOG set, and
// otherwise keeps warnings in memory and prints them if the test fails.
func testLogger(t testing.TB) hclog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Debug, Output: os.Stderr})
	}
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			buf.mu.Lock()
			defer buf.mu.Unlock()
			fmt.Fprintf(os.Stderr, "--- log of %s:\n%s", t.Name(), buf.b.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: buf})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// testConfig returns a config with short timeouts for loopback tests.
func testConfig(t testing.TB, id, dir, addr string, bootstrap bool) Config {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return Config{
		NodeID:             id,
		Dir:                dir,
		BindAddr:           addr,
		Bootstrap:          bootstrap,
		Logger:             testLogger(t),
		HeartbeatTimeout:   100 * time.Millisecond,
		ElectionTimeout:    100 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
		LogRetention:       -1,
	}
}

func openTestNode(t testing.TB, cfg Config, sm StateMachine) *Node {
	t.Helper()
	n, err := Open(cfg, sm)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg.NodeID, err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitLeader(t testing.TB, n *Node) {
	t.Helper()
	if err := n.WaitLeader(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("WaitLeader(%s): %v", n.ID(), err)
	}
}

// waitIsLeader waits until n itself is the leader, via its LeaderCh.
func waitIsLeader(t testing.TB, n *Node) {
	t.Helper()
	ch := n.LeaderCh()
	ctx := ctxTimeout(t, 10*time.Second)
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				t.Fatalf("%s: leader channel closed", n.ID())
			}
			if v && n.IsLeader() {
				return
			}
		case <-ctx.Done():
			t.Fatalf("%s did not become leader (state %s)", n.ID(), n.State())
		}
	}
}

func mustApply(t testing.TB, n *Node, data string) any {
	t.Helper()
	res, err := n.Apply(ctxTimeout(t, 10*time.Second), []byte(data))
	if err != nil {
		t.Fatalf("Apply(%q) on %s: %v", data, n.ID(), err)
	}
	return res
}
