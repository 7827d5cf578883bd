package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

func (c *testCluster) cli(i int, args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(binDir, "skjold"), append([]string{"--addr", "http://" + c.nodes[i].api}, args...)...).CombinedOutput()
	return string(out), err
}

// TestClusterFromTheCLI builds a TLS cluster with `skjold cluster init` and the nodes' join lists, and
// checks what district IT and operators see: any node takes writes, reads can be linearizable, the
// cluster port refuses plain connections, and membership and leadership are managed from the CLI.
func TestClusterFromTheCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := startCluster(t, 3, nil)
	out, err := c.cli(0, "cluster", "members")
	if err != nil {
		t.Fatalf("cluster members: %v\n%s", err, out)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		if !strings.Contains(out, id+" ") {
			t.Fatalf("cluster members does not list %s:\n%s", id, out)
		}
	}
	if strings.Count(out, " leader") != 1 {
		t.Fatalf("cluster members should show one leader:\n%s", out)
	}

	// A write through a follower is forwarded; a linearizable read on another follower sees it at once.
	l := c.waitLeader()
	f1, f2 := (l+1)%3, (l+2)%3
	if code := c.proc(f1).call("POST", "/v1/orders", stormOrder(1), nil); code != 201 {
		t.Fatalf("create an order through follower %s: %d", c.nodes[f1].id, code)
	}
	var o struct{ ID string }
	if code := c.proc(f2).call("GET", "/v1/orders/ord-storm-001?consistency=linearizable", "", &o); code != 200 || o.ID != "ord-storm-001" {
		t.Fatalf("linearizable read on follower %s: %d %+v", c.nodes[f2].id, code, o)
	}
	if code := c.proc(f2).call("GET", "/v1/orders?consistency=sometimes", "", nil); code != 400 {
		t.Fatalf("an unknown consistency should be refused with 400, got %d", code)
	}

	// The cluster port speaks only TLS with a certificate from the cluster CA.
	conn, err := net.DialTimeout("tcp", c.nodes[l].raft, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	conn.Close()
	if n > 0 && buf[0] != 0x15 { // 0x15: a TLS alert is all a plain client may get back
		t.Fatalf("a plain connection to the cluster port got % X back", buf[:n])
	}

	// Leadership moves on request.
	to := c.nodes[f2].id
	if out, err := c.cli(f1, "cluster", "transfer-leadership", to); err != nil {
		t.Fatalf("transfer-leadership: %v\n%s", err, out)
	}
	c.eventually("leadership on "+to, 30*time.Second, func() bool { return c.leader() == f2 })

	// Remove a member, then let it join again from the CLI.
	gone := c.nodes[f1]
	if out, err := c.cli(f2, "cluster", "remove", gone.id); err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	c.waitMembers(2)
	if out, err := c.cli(f2, "cluster", "remove", "nobody"); err == nil || !strings.Contains(out, "400 invalid") {
		t.Fatalf("removing an unknown member should be refused as invalid:\n%s", out)
	}
	if out, err := c.cli(f2, "cluster", "join", gone.id, gone.proxy.addr()); err != nil {
		t.Fatalf("join: %v\n%s", err, out)
	}
	c.waitMembers(3)
	if out, err := c.cli(f2, "cluster", "join", "n9", "not-an-address"); err == nil || !strings.Contains(out, "addr") {
		t.Fatalf("a join without host:port should name the field:\n%s", out)
	}
	c.waitConverged()
}

// TestQuorumLossSoundsTheLocalSiren cuts a node off from both others: after quorum_loss_after it drives
// its own siren relay and reports degraded, and when the others come back the siren follows the
// replicated state again.
func TestQuorumLossSoundsTheLocalSiren(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	relay, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	sirenPath, sirenSum := pin(t, "skjold-hook-siren")
	c := startCluster(t, 3, func(i int, n *clusterNode) string {
		if i != 0 {
			return ""
		}
		return fmt.Sprintf(`
hook "siren" {
  path   = %q
  sha256 = %q
  config {
    port     = %q
    protocol = "lcus"
  }
}`, sirenPath, sirenSum, relay.Path)
	})
	c.kill(1)
	c.kill(2)
	expectRelay(t, relay, "A0 01 01 A2")
	var h clusterHealth
	c.eventually("n1 degraded for lack of quorum", 30*time.Second, func() bool {
		code, err := getJSON("http://"+c.nodes[0].api+"/v1/health", &h)
		return err == nil && code == 503 && h.Status == "degraded" &&
			slices.ContainsFunc(h.Problems, func(p string) bool { return strings.Contains(p, "no quorum") })
	})
	c.start(1)
	expectRelay(t, relay, "A0 01 00 A1")
	c.eventually("n1 healthy again", 30*time.Second, func() bool {
		code, err := getJSON("http://"+c.nodes[0].api+"/v1/health", &h)
		return err == nil && code == 200
	})
}

// TestPluginsWhereTheHardwareIs runs a driver and a hook only on a follower: the tag it hears breaches,
// the leader's effector sends the vibrate command back through that follower's driver, and the alarm
// reaches the hook that only the follower runs.
func TestPluginsWhereTheHardwareIs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	simPath, simSum := pin(t, "skjold-driver-sim")
	capPath, capSum := pin(t, "skjold-hook-cap")
	cad := newCAPReceiver(t)
	c := startCluster(t, 3, func(i int, n *clusterNode) string {
		if i != 2 {
			return ""
		}
		return fmt.Sprintf(`
driver "sim" {
  path   = %q
  sha256 = %q
  config {
    tags = [{ device = "tag-001", path = [[%v, %v]], interval_s = 1, accuracy_m = 5 }]
  }
}
hook "cad-n3" {
  path   = %q
  sha256 = %q
  config {
    url        = %q
    sender     = "skjold@district-test"
    allow_http = true
  }
}`, simPath, simSum, stormInLon, stormInLat, capPath, capSum, cad.url)
	})
	if l := c.waitLeader(); l == 2 {
		if out, err := c.cli(0, "cluster", "transfer-leadership", "n1"); err != nil {
			t.Fatalf("transfer-leadership: %v\n%s", err, out)
		}
		c.eventually("n1 leading", 30*time.Second, func() bool { return c.leader() == 0 })
	}
	if !c.post(0, "/v1/orders", stormOrder(1)) {
		t.Fatal("order not created")
	}
	c.eventually("the breach at the follower's hook", 30*time.Second, func() bool {
		_, ok := cad.deviceAlerted("tag-001")
		return ok
	})
	c.eventually("the vibrate command at the follower's driver", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + c.nodes[2].api + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return regexp.MustCompile(`skjold_plugin_sim_commands_total\{command="vibrate",kind="driver",plugin="sim"\} [1-9]`).Match(body)
	})
	var d struct{ Node, Driver string }
	if code := c.proc(0).call("GET", "/v1/devices/tag-001", "", &d); code != 200 || d.Node != "n3" || d.Driver != "sim" {
		t.Fatalf("the device should be heard by sim on n3: %d %+v", code, d)
	}
}

// TestRestoreAClusterFromABackup loses both nodes of a cluster, restores one from `skjold backup`, and
// lets the other come back empty and join it: both end with the backup's orders and the same state.
func TestRestoreAClusterFromABackup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := startCluster(t, 2, nil)
	for i := range 3 {
		if !c.post(i, "/v1/orders", stormOrder(i)) {
			t.Fatalf("order %d not created", i)
		}
	}
	if !c.post(1, "/v1/observations", probeObservation("tag-001", time.Now().UTC())) {
		t.Fatal("observation not committed")
	}
	backup := filepath.Join(t.TempDir(), "skjold.tar.gz")
	if out, err := c.cli(0, "backup", backup); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	c.kill(0)
	c.kill(1)
	for _, n := range c.nodes {
		if err := os.RemoveAll(filepath.Join(n.dir, "data")); err != nil {
			t.Fatal(err)
		}
	}
	n1 := c.nodes[0]
	out, err := exec.Command(filepath.Join(binDir, "skjold"), "restore", backup,
		"--data-dir", filepath.Join(n1.dir, "data"), "--node-id", n1.id, "--raft-addr", n1.proxy.addr()).CombinedOutput()
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	c.start(0)
	c.start(1) // empty, with n1 in its join list
	c.waitMembers(2)
	for i := range 3 {
		var o struct{ ID string }
		if code := c.proc(1).call("GET", fmt.Sprintf("/v1/orders/ord-storm-%03d?consistency=linearizable", i), "", &o); code != 200 {
			t.Fatalf("order %d on the node that joined the restored one: %d", i, code)
		}
	}
	var a struct{ Alarms []struct{ Device string } }
	if code := c.proc(1).call("GET", "/v1/alarms?state=all", "", &a); code != 200 || len(a.Alarms) == 0 || a.Alarms[0].Device != "tag-001" {
		t.Fatalf("the backup's alarm on the joined node: %d %+v", code, a)
	}
	c.waitConverged()
}
