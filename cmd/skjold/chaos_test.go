package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// chaosLong selects the long chaos run (make chaos): more leader kills, and every fault more than once.
var chaosLong = os.Getenv("SKJOLD_CHAOS") == "long"

// The storm's geometry: every order has the same exclusion zone; "in" is about 250 m inside it (a deep
// breach, raised on one fix), "out" about 550 m south of it.
const (
	stormInLat, stormInLon   = 59.9125, 10.7575
	stormOutLat, stormOutLon = 59.9050, 10.7575
)

func stormOrder(i int) string {
	return fmt.Sprintf(`{
  "id": "ord-storm-%03d",
  "reference": "24-%06dAST-TOSL/05",
  "basis": "straffeloven-57",
  "valid_from": "2020-01-01T00:00:00Z",
  "offender": {"device": "tag-%03d"},
  "protected": [{"device": "unit-%03d"}],
  "zones": [
    {"id": "home", "kind": "exclusion", "warning_m": 200,
     "geometry": {"type": "Polygon", "coordinates": [[[10.75,59.91],[10.76,59.91],[10.76,59.92],[10.75,59.91]]]}}
  ]
}`, i, i, i, i)
}

// storm posts one fix per tag every 100 ms of fix time: each tag is inside its zone for 8 of every 10
// fixes, so most observations breach. A batch is retried on other nodes until one commits it.
type storm struct {
	c         *testCluster
	tags      int
	stopCh    chan struct{}
	done      chan struct{}
	mu        sync.Mutex
	committed int // observations committed
	cond      *sync.Cond
	started   time.Time
}

// stormWorkers post in parallel, each for its own share of the tags, so one slow commit (a leader
// change) does not hold up every tag.
const stormWorkers = 3

func startStorm(c *testCluster, tags int) *storm {
	s := &storm{c: c, tags: tags, stopCh: make(chan struct{}), done: make(chan struct{}), started: time.Now()}
	s.cond = sync.NewCond(&s.mu)
	var wg sync.WaitGroup
	base := time.Now().UTC()
	for w := range stormWorkers {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(w, base) }()
	}
	go func() { wg.Wait(); close(s.done) }()
	return s
}

// run posts the fixes of tags w, w+stormWorkers, ...
func (s *storm) run(w int, base time.Time) {
	for tick := 0; ; tick++ {
		at := base.Add(time.Duration(tick) * 100 * time.Millisecond)
		select {
		case <-s.stopCh: // also when behind schedule, catching up
			return
		default:
		}
		if d := time.Until(at); d > 0 {
			select {
			case <-s.stopCh:
				return
			case <-time.After(d):
			}
		}
		var b strings.Builder
		b.WriteByte('[')
		n := 0
		for i := w; i < s.tags; i += stormWorkers {
			lat, lon := stormInLat, stormInLon
			if (tick+i)%10 >= 8 {
				lat, lon = stormOutLat, stormOutLon
			}
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			fmt.Fprintf(&b, `{"device":"tag-%03d","time":%q,"lat":%v,"lon":%v,"accuracy_m":5,"battery_pct":80,"strap":"closed"}`,
				i, at.Format(time.RFC3339Nano), lat, lon)
		}
		b.WriteByte(']')
		for !s.c.post(tick+w, "/v1/observations", b.String()) {
			select {
			case <-s.stopCh:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		s.mu.Lock()
		s.committed += n
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// waitMore waits until n more observations than now are committed.
func (s *storm) waitMore(t testing.TB, n int) {
	t.Helper()
	s.mu.Lock()
	want := s.committed + n
	s.mu.Unlock()
	s.waitFor(t, want)
}

func (s *storm) waitFor(t testing.TB, want int) {
	t.Helper()
	timer := time.AfterFunc(60*time.Second, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(60 * time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.committed < want {
		if time.Now().After(deadline) {
			t.Fatalf("the storm committed %d observations, waited for %d", s.committed, want)
		}
		s.cond.Wait()
	}
}

func (s *storm) stop() (committed int, rate float64) {
	select {
	case <-s.stopCh:
	default:
		close(s.stopCh)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committed, float64(s.committed) / time.Since(s.started).Seconds()
}

// TestChaos kills the leader with SIGKILL again and again, cuts a follower off and heals it, and restarts
// every node in turn, all during a storm of breaching observations; then every committed alarm
// transition must have reached the CAP receiver, and every node must hold the same state.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	kills, partitions, rolls := 2, 1, 1
	if chaosLong {
		kills, partitions, rolls = 12, 3, 2
	}
	c := startCluster(t, 3, nil)
	const tags = 150 // 1,500 observations/s, 1,200 of them breaching
	for i := range tags {
		if !c.post(i, "/v1/orders", stormOrder(i)) {
			t.Fatalf("order %d not created", i)
		}
	}
	s := startStorm(c, tags)
	defer s.stop()
	s.waitMore(t, 3000)

	for k := range kills {
		l := c.waitLeader()
		t.Logf("kill %d: SIGKILL leader %s", k+1, c.nodes[l].id)
		c.kill(l)
		c.eventually("a new leader", 30*time.Second, func() bool { nl := c.leader(); return nl >= 0 && nl != l })
		s.waitMore(t, 1500)
		c.start(l)
		s.waitMore(t, 1500)
	}
	for p := range partitions {
		l := c.waitLeader()
		f := (l + 1 + p%2) % len(c.nodes)
		t.Logf("partition %d: cut %s off", p+1, c.nodes[f].id)
		c.partition(f, true)
		s.waitMore(t, 3000)
		// Cut off both ways: the node cannot even forward a write to the leader.
		cl := http.Client{Timeout: 3 * time.Second}
		if resp, err := cl.Post("http://"+c.nodes[f].api+"/v1/observations", "application/json",
			strings.NewReader(probeObservation("tag-000", time.Now().UTC()))); err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				t.Fatalf("%s committed a write while cut off", c.nodes[f].id)
			}
		}
		c.partition(f, false)
		s.waitMore(t, 1500)
	}
	for r := range rolls {
		for i := range c.nodes {
			t.Logf("roll %d: restart %s", r+1, c.nodes[i].id)
			c.stop(i)
			s.waitMore(t, 1500)
			c.start(i)
			c.waitMembers(len(c.nodes))
			s.waitMore(t, 1500)
		}
	}
	// A follower whose disk was wiped comes back empty, asks to join, and catches up.
	{
		l := c.waitLeader()
		w := 1 // a follower, and never the bootstrap node: its config would bootstrap a new cluster
		if l == 1 {
			w = 2
		}
		t.Logf("wipe %s", c.nodes[w].id)
		c.kill(w)
		if err := os.RemoveAll(filepath.Join(c.nodes[w].dir, "data")); err != nil {
			t.Fatal(err)
		}
		s.waitMore(t, 1500)
		c.start(w)
		s.waitMore(t, 1500)
	}
	committed, rate := s.stop()
	t.Logf("storm: %d observations committed, %.0f obs/s on average (%.0f of them breaching) through %d leader kills, %d partitions, %d rolling restarts and a wiped node",
		committed, rate, rate*0.8, kills, partitions, rolls)
	c.checkDelivered()
	c.waitConverged()
}
