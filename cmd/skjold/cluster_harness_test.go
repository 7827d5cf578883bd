package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	capHook "github.com/skjold-alarm/skjold/plugins/hooks/cap"
)

// The cluster tests run three real `skjold agent` processes with mutual TLS on loopback, each behind a
// TCP proxy the test controls (to cut a node off), with the CAP hook on every node posting to one
// receiver in the test.

// capReceiver is the dispatch side: it records every CAP alert by identifier (the idempotency key).
type capReceiver struct {
	srv  *http.Server
	url  string
	mu   sync.Mutex
	got  map[string][]string // identifier → bodies received
	at   map[string]time.Time
	dev  map[string]time.Time // device → when the first alert about it arrived
	wake chan struct{}
}

var (
	capDevice = regexp.MustCompile(`<valueName>device</valueName>\s*<value>([^<]*)</value>`)
)

func newCAPReceiver(t testing.TB) *capReceiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &capReceiver{got: map[string][]string{}, at: map[string]time.Time{}, dev: map[string]time.Time{}, wake: make(chan struct{}, 1), url: "http://" + l.Addr().String() + "/cap"}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var a struct {
			Identifier string `xml:"identifier"`
		}
		if err := xml.Unmarshal(body, &a); err != nil || a.Identifier == "" {
			http.Error(w, "not a CAP alert", http.StatusBadRequest)
			return
		}
		now := time.Now()
		r.mu.Lock()
		if _, ok := r.at[a.Identifier]; !ok {
			r.at[a.Identifier] = now
		}
		if m := capDevice.FindSubmatch(body); m != nil {
			if _, ok := r.dev[string(m[1])]; !ok {
				r.dev[string(m[1])] = now
			}
		}
		r.got[a.Identifier] = append(r.got[a.Identifier], string(body))
		r.mu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	})}
	go r.srv.Serve(l)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

// received returns when the identifier first arrived.
func (r *capReceiver) received(id string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[id]
	return at, ok
}

// deviceAlerted returns when the first alert about a device arrived.
func (r *capReceiver) deviceAlerted(dev string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.dev[dev]
	return at, ok
}

// tcpProxy fronts one node's cluster port. Every node listens on an address of its own (127.0.0.11,
// .12, ...) and dials from it, so a proxy can tell which node a connection comes from: cutting a node
// off closes and refuses every connection to it (its own proxy) and from it (the other proxies).
type tcpProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool            // refuse everything
	deny   map[string]bool // refuse connections from these node addresses
	conns  map[net.Conn]proxied
}

type proxied struct {
	from string   // the dialling node's IP
	peer net.Conn // the other end of the pipe
}

func newProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target, deny: map[string]bool{}, conns: map[net.Conn]proxied{}}
	go p.serve()
	t.Cleanup(func() { l.Close(); p.setCut(true) })
	return p
}

func (p *tcpProxy) addr() string { return p.l.Addr().String() }

func remoteIP(c net.Conn) string {
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	return host
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *tcpProxy) pipe(c net.Conn) {
	from := remoteIP(c)
	p.mu.Lock()
	refused := p.cut || p.deny[from]
	p.mu.Unlock()
	if refused {
		c.Close()
		return
	}
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.deny[from] {
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c] = proxied{from: from, peer: u}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() { io.Copy(c, u); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// closeLocked closes the proxied connections that match.
func (p *tcpProxy) closeLocked(match func(proxied) bool) {
	for c, pc := range p.conns {
		if match(pc) {
			c.Close()
			pc.peer.Close()
		}
	}
}

// setCut cuts every connection to the node, or heals that.
func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		p.closeLocked(func(proxied) bool { return true })
	}
}

// setDeny cuts the connections from the node at ip, or heals that.
func (p *tcpProxy) setDeny(ip string, deny bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deny[ip] = deny
	if deny {
		p.closeLocked(func(pc proxied) bool { return pc.from == ip })
	}
}

// partition cuts node i off from the others both ways, or heals it. The load (post) leaves a cut-off
// node alone, as clients that cannot get through would.
func (c *testCluster) partition(i int, cut bool) {
	c.mu.Lock()
	c.nodes[i].cut = cut
	c.mu.Unlock()
	ip, _, _ := net.SplitHostPort(c.nodes[i].raft)
	for j, n := range c.nodes {
		if j == i {
			n.proxy.setCut(cut)
		} else {
			n.proxy.setDeny(ip, cut)
		}
	}
}

// freeAddrOn is a free port on one loopback address.
func freeAddrOn(t testing.TB, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// clusterNode is one node of a test cluster.
type clusterNode struct {
	id, api, raft, dir, cfg string
	proxy                   *tcpProxy
	cut                     bool       // cut off by partition
	proc                    *agentProc // nil while stopped
}

type testCluster struct {
	t     testing.TB
	mu    sync.Mutex // guards the nodes' proc: the load runs beside the test
	nodes []*clusterNode
	cap   *capReceiver
	tls   string
}

// clusterExtra is more configuration for one node (hooks, drivers).
type clusterExtra func(i int, n *clusterNode) string

// startCluster makes the certificates with `skjold cluster init`, bootstraps the first node and joins the
// others to it through their configs.
func startCluster(t testing.TB, size int, extra clusterExtra) *testCluster {
	t.Helper()
	c := &testCluster{t: t, cap: newCAPReceiver(t), tls: filepath.Join(t.TempDir(), "tls")}
	var specs []string
	for i := range size {
		n := &clusterNode{id: fmt.Sprintf("n%d", i+1), api: freeAddr(t), raft: freeAddrOn(t, fmt.Sprintf("127.0.0.%d", 11+i)), dir: t.TempDir()}
		n.proxy = newProxy(t, n.raft)
		c.nodes = append(c.nodes, n)
		specs = append(specs, "--node", n.id+"=127.0.0.1,localhost")
	}
	out, err := exec.Command(filepath.Join(binDir, "skjold"), append([]string{"cluster", "init", "--dir", c.tls}, specs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("skjold cluster init: %v\n%s", err, out)
	}
	capPath, capSum := pin(t, "skjold-hook-cap")
	for i, n := range c.nodes {
		join := ""
		if i > 0 {
			join = fmt.Sprintf("join = [%q]", c.nodes[0].proxy.addr())
		}
		more := ""
		if extra != nil {
			more = extra(i, n)
		}
		cfg := fmt.Sprintf(`
node_id  = %q
data_dir = %q
api  { listen = %q }
raft {
  listen            = %q
  advertise         = %q
  bootstrap         = %v
  %s
  quorum_loss_after = "2s"
  tls {
    ca   = %q
    cert = %q
    key  = %q
  }
}
hook "cap" {
  path   = %q
  sha256 = %q
  config {
    url        = %q
    sender     = "skjold@district-test"   # the same on every node: one sender, whoever delivers
    allow_http = true
    timeout_s  = 2
  }
}
%s
`, n.id, filepath.Join(n.dir, "data"), n.api, n.raft, n.proxy.addr(), i == 0, join,
			filepath.Join(c.tls, "ca.crt"), filepath.Join(c.tls, n.id+".crt"), filepath.Join(c.tls, n.id+".key"),
			capPath, capSum, c.cap.url, more)
		n.cfg = filepath.Join(n.dir, "skjold.hcl")
		if err := os.WriteFile(n.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		c.start(i)
	}
	c.waitMembers(size)
	return c
}

func (c *testCluster) start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	p := startAgent(c.t, n.cfg, n.api)
	c.mu.Lock()
	n.proc = p
	c.mu.Unlock()
}

// kill SIGKILLs node i.
func (c *testCluster) kill(i int) {
	c.t.Helper()
	n := c.nodes[i]
	p := c.proc(i)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	c.mu.Lock()
	n.proc = nil
	c.mu.Unlock()
}

func (c *testCluster) proc(i int) *agentProc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].proc
}

// stop shuts node i down cleanly (SIGTERM).
func (c *testCluster) stop(i int) {
	c.t.Helper()
	n := c.nodes[i]
	p := c.proc(i)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s did not stop within 30 s of SIGTERM", n.id)
	}
	c.mu.Lock()
	n.proc = nil
	c.mu.Unlock()
}

func (c *testCluster) live() []*clusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*clusterNode
	for _, n := range c.nodes {
		if n.proc != nil {
			out = append(out, n)
		}
	}
	return out
}

type clusterHealth struct {
	Status    string   `json:"status"`
	Node      string   `json:"node"`
	Leader    string   `json:"leader"`
	RaftState string   `json:"raft_state"`
	Problems  []string `json:"problems"`
}

func getJSON(url string, out any) (int, error) {
	cl := http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}

// eventually polls cond until it holds or the deadline passes.
func (c *testCluster) eventually(what string, d time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			for _, n := range c.live() {
				c.t.Logf("%s stderr (tail):\n%s", n.id, tail(n.proc.stderr.String(), 3000))
			}
			c.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// leader is the index of the node that leads, as the live nodes agree; -1 if none.
func (c *testCluster) leader() int {
	for i, n := range c.nodes {
		if c.proc(i) == nil {
			continue
		}
		var h clusterHealth
		if _, err := getJSON("http://"+n.api+"/v1/health", &h); err == nil && h.RaftState == "Leader" {
			return i
		}
	}
	return -1
}

func (c *testCluster) waitLeader() int {
	c.t.Helper()
	l := -1
	c.eventually("a leader", 30*time.Second, func() bool { l = c.leader(); return l >= 0 })
	return l
}

type membersBody struct {
	Members []struct {
		ID     string `json:"id"`
		Voter  bool   `json:"voter"`
		Leader bool   `json:"leader"`
	} `json:"members"`
}

func (c *testCluster) waitMembers(want int) {
	c.t.Helper()
	c.eventually(fmt.Sprintf("%d voters", want), 60*time.Second, func() bool {
		l := c.leader()
		if l < 0 {
			return false
		}
		var m membersBody
		if _, err := getJSON("http://"+c.nodes[l].api+"/v1/cluster/members", &m); err != nil {
			return false
		}
		voters := 0
		for _, x := range m.Members {
			if x.Voter {
				voters++
			}
		}
		return voters == want
	})
}

// post sends a body to the first live node that commits it, starting at node i; false if none did.
func (c *testCluster) post(i int, path, body string) bool {
	cl := http.Client{Timeout: 5 * time.Second}
	for k := range c.nodes {
		j := (i + k) % len(c.nodes)
		n := c.nodes[j]
		c.mu.Lock()
		skip := n.proc == nil || n.cut
		c.mu.Unlock()
		if skip {
			continue
		}
		resp, err := cl.Post("http://"+n.api+path, "application/json", strings.NewReader(body))
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return true
		}
	}
	return false
}

type stateHash struct {
	Node         string `json:"node"`
	AppliedIndex uint64 `json:"applied_index"`
	StateHash    string `json:"state_hash"`
}

// waitConverged waits until every live node reports the same applied index, then requires the same
// state hash at it. Ticks keep the index moving, so equal indexes are caught between two of them.
func (c *testCluster) waitConverged() {
	c.t.Helper()
	var last []stateHash
	c.eventually("every node at the same applied index", 60*time.Second, func() bool {
		last = last[:0]
		for _, n := range c.live() {
			var h stateHash
			if code, err := getJSON("http://"+n.api+"/v1/state/hash", &h); err != nil || code != 200 {
				return false
			}
			last = append(last, h)
		}
		for _, h := range last[1:] {
			if h.AppliedIndex != last[0].AppliedIndex {
				return false
			}
		}
		return true
	})
	for _, h := range last[1:] {
		if h.StateHash != last[0].StateHash {
			c.t.Fatalf("state differs at index %d: %s has %s, %s has %s", h.AppliedIndex, last[0].Node, last[0].StateHash, h.Node, h.StateHash)
		}
	}
}

// committedTransitions lists the idempotency keys (CAP identifiers) of every transition of every alarm
// the cluster holds, read linearizably from a live node.
func (c *testCluster) committedTransitions() []string {
	c.t.Helper()
	n := c.live()[0]
	var list struct{ Alarms []alarm.Alarm }
	if code, err := getJSON("http://"+n.api+"/v1/alarms?state=all&consistency=linearizable", &list); err != nil || code != 200 {
		c.t.Fatalf("list alarms: %d %v", code, err)
	}
	var keys []string
	for _, s := range list.Alarms {
		var a alarm.Alarm
		if code, err := getJSON("http://"+n.api+"/v1/alarms/"+s.ID, &a); err != nil || code != 200 {
			c.t.Fatalf("alarm %s: %d %v", s.ID, code, err)
		}
		for _, tr := range a.Transitions {
			keys = append(keys, capHook.CAPID(fmt.Sprintf("%s:%d", a.ID, tr.Seq)))
		}
	}
	sort.Strings(keys)
	return keys
}

// checkDelivered waits until the CAP receiver has every committed transition, and checks that copies
// delivered more than once are the same alert.
func (c *testCluster) checkDelivered() int {
	c.t.Helper()
	keys := c.committedTransitions()
	if len(keys) == 0 {
		c.t.Fatal("no alarm transitions were committed")
	}
	var missing []string
	c.eventually("every committed transition at the CAP receiver", 60*time.Second, func() bool {
		missing = missing[:0]
		for _, k := range keys {
			if _, ok := c.cap.received(k); !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			c.t.Logf("%d of %d transitions not yet delivered, e.g. %s", len(missing), len(keys), missing[0])
			select {
			case <-c.cap.wake:
			case <-time.After(time.Second):
			}
		}
		return len(missing) == 0
	})
	c.cap.mu.Lock()
	defer c.cap.mu.Unlock()
	dups := 0
	for id, bodies := range c.cap.got {
		for _, b := range bodies[1:] {
			dups++
			if !bytes.Equal([]byte(b), []byte(bodies[0])) {
				c.t.Fatalf("alert %s was delivered twice with different content:\n%s\n---\n%s", id, bodies[0], b)
			}
		}
	}
	c.t.Logf("%d committed transitions, all delivered; %d duplicate deliveries, identical", len(keys), dups)
	return len(keys)
}
