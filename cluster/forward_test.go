package cluster

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestProposeForwarded(t *testing.T) {
	ms, _ := startTLSCluster(t, 3, nil)
	leader, followers := followersOf(t, ms)
	ctx := ctxTimeout(t, 20*time.Second)

	for i, m := range append(followers, leader) {
		before := leader.sm.Count()
		res, err := m.n.Propose(ctx, fmt.Appendf(nil, "set p%d v%d", i, i))
		if err != nil {
			t.Fatalf("Propose on %s: %v", m.n.ID(), err)
		}
		// The result is the leader's count after applying: a uint64 both
		// locally and through the codec.
		if c, ok := res.(uint64); !ok || c <= before {
			t.Fatalf("Propose on %s: result %#v (count before %d)", m.n.ID(), res, before)
		}
		// Committed and applied on the leader when Propose returns.
		if got := leader.sm.Get(fmt.Sprintf("p%d", i)); got != fmt.Sprintf("v%d", i) {
			t.Fatalf("leader has p%d = %q after Propose on %s", i, got, m.n.ID())
		}
	}
	// A state machine's error value is a result, not a failure, through
	// the codec too.
	res, err := followers[0].n.Propose(ctx, []byte("fail"))
	if rerr, ok := res.(error); err != nil || !ok || rerr.Error() != "rejected" {
		t.Fatalf("Propose(fail) = %#v, %v", res, err)
	}
	// Apply stays local-only.
	if _, err := followers[0].n.Apply(ctx, []byte("x")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Apply on follower: %v", err)
	}
	waitConverged(t, leader, ms)
}

// TestPlainForwarding keeps forwarding working on plain loopback TCP, with
// the default result codec.
func TestPlainForwarding(t *testing.T) {
	ms := startCluster(t, 3, nil)
	leader, followers := followersOf(t, ms)
	ctx := ctxTimeout(t, 20*time.Second)
	f := followers[0]

	res, err := f.n.Propose(ctx, []byte("fail"))
	if rerr, ok := res.(error); err != nil || !ok || rerr.Error() != "rejected" {
		t.Fatalf("Propose(fail) = %#v, %v", res, err)
	}
	// DefaultResults cannot carry a count: the entry is applied, and the
	// caller is told its result was lost.
	if _, err := f.n.Propose(ctx, []byte("set a 1")); !errors.Is(err, ErrResult) {
		t.Fatalf("Propose(set) with DefaultResults: %v", err)
	}
	if leader.sm.Get("a") != "1" {
		t.Fatal("entry not applied on the leader")
	}
	if err := f.n.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	if f.sm.Get("a") != "1" {
		t.Fatal("entry not applied on the follower after ReadBarrier")
	}
}

func TestReadBarrier(t *testing.T) {
	ms, _ := startTLSCluster(t, 3, nil)
	ctx := ctxTimeout(t, 30*time.Second)
	check := func(round int) {
		for i := 0; i < 9; i++ {
			w, r := ms[i%3], ms[(i+1+i/3)%3]
			if w == r {
				r = ms[(i+2)%3]
			}
			k, v := fmt.Sprintf("r%d-%d", round, i), fmt.Sprint(i)
			if _, err := w.n.Propose(ctx, []byte("set "+k+" "+v)); err != nil {
				t.Fatalf("Propose on %s: %v", w.n.ID(), err)
			}
			if err := r.n.ReadBarrier(ctx); err != nil {
				t.Fatalf("ReadBarrier on %s: %v", r.n.ID(), err)
			}
			if got := r.sm.Get(k); got != v {
				t.Fatalf("%s reads %s = %q after ReadBarrier; written on %s as %q", r.n.ID(), k, got, w.n.ID(), v)
			}
		}
	}
	check(0)
	// A new leader's first read index covers what its predecessor
	// acknowledged.
	leader, followers := followersOf(t, ms)
	if err := followers[0].n.TransferLeadership(ctx, followers[1].n.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, followers[1].n.ID()+" to lead", followers[1].n.IsLeader)
	if _, err := leader.n.Propose(ctx, []byte("set after transfer")); err != nil {
		t.Fatal(err)
	}
	if err := followers[0].n.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := followers[0].sm.Get("after"); got != "transfer" {
		t.Fatalf("after transfer: %q", got)
	}
	check(1)
}

// TestProposeDuringLeaderChange proposes from one node, from several
// goroutines, while leadership moves and a leader shuts down. Every
// proposal must be applied exactly once if Propose succeeded, and at most
// once if it failed.
func TestProposeDuringLeaderChange(t *testing.T) {
	ms, _ := startTLSCluster(t, 3, nil)
	_, followers := followersOf(t, ms)
	proposer := followers[0]

	var (
		mu     sync.Mutex
		ok     []string
		failed []string
		stop   atomic.Bool
		wg     sync.WaitGroup
	)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 400 && !stop.Load(); i++ {
				data := fmt.Sprintf("set g%d-%d x", g, i)
				_, err := proposer.n.Propose(ctxTimeout(t, 10*time.Second), []byte(data))
				mu.Lock()
				if err != nil {
					failed = append(failed, data)
					t.Logf("%s: %v", data, err)
				} else {
					ok = append(ok, data)
				}
				mu.Unlock()
			}
		}()
	}
	progress := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(ok) + len(failed)
	}
	// Let some proposals through between every change.
	step := func(what string, f func()) {
		at := progress()
		waitFor(t, 10*time.Second, "proposals before "+what, func() bool { return progress() >= at+10 })
		f()
	}
	ctx := ctxTimeout(t, 30*time.Second)
	for i := 0; i < 3; i++ {
		step("transfer", func() {
			old := leaderOf(t, ms)
			if err := proposer.n.TransferLeadership(ctx, ""); err != nil {
				t.Fatalf("TransferLeadership: %v", err)
			}
			waitFor(t, 10*time.Second, "a new leader", func() bool {
				l := leaderOf(t, ms)
				return l != old
			})
		})
	}
	// Shut down a leader that is not the proposer.
	live := ms
	step("leader shutdown", func() {
		var other *testMember
		for _, m := range ms {
			if m != proposer && !m.n.IsLeader() {
				other = m
			}
		}
		if !other.n.IsLeader() {
			if err := proposer.n.TransferLeadership(ctx, other.n.ID()); err != nil {
				t.Fatalf("TransferLeadership to %s: %v", other.n.ID(), err)
			}
		}
		if err := other.n.Shutdown(); err != nil {
			t.Fatal(err)
		}
		live = nil
		for _, m := range ms {
			if m != other {
				live = append(live, m)
			}
		}
	})
	step("the end", func() { stop.Store(true) })
	wg.Wait()

	// Every live member applies everything committed.
	for _, m := range live {
		if err := m.n.ReadBarrier(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitConverged(t, leaderOf(t, live), live)
	mu.Lock()
	defer mu.Unlock()
	if len(ok) < 40 {
		t.Fatalf("only %d proposals succeeded (%d failed)", len(ok), len(failed))
	}
	for _, m := range live {
		for _, d := range ok {
			if c := m.sm.applications(d); c != 1 {
				t.Errorf("%s: successful proposal %q applied %d times", m.n.ID(), d, c)
			}
		}
		for _, d := range failed {
			if c := m.sm.applications(d); c > 1 {
				t.Errorf("%s: failed proposal %q applied %d times", m.n.ID(), d, c)
			}
		}
	}
	t.Logf("%d proposals succeeded, %d failed", len(ok), len(failed))
}
