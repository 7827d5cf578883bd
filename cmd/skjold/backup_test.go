package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/api"
)

// The backup tests run the real binary: a node serves the backup, `skjold backup` writes it, `skjold
// restore` turns it into a data directory, and a node started on that directory serves the same state.

func bkCLI(args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(binDir, "skjold"), args...).CombinedOutput()
	return string(out), err
}

func bkStopAgent(t *testing.T, p *agentProc) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("agent exit: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop")
	}
}

func bkRestoredConfig(t *testing.T, dir, dataDir, apiAddr, raftAddr string) string {
	t.Helper()
	path := filepath.Join(dir, "restored.hcl")
	cfg := fmt.Sprintf("node_id  = \"e2e-1\"\ndata_dir = %q\napi  { listen = %q }\nraft { listen = %q }\n", dataDir, apiAddr, raftAddr)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bkNoTmpLeft fails if a restore left DIR or DIR.tmp-… behind.
func bkNoTmpLeft(t *testing.T, target string) {
	t.Helper()
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("%s exists after a refused restore (%v)", target, err)
	}
	left, _ := filepath.Glob(target + ".tmp-*")
	if len(left) > 0 {
		t.Fatalf("a refused restore left %v", left)
	}
}

func TestBackupRestoreKeepsOrdersAlarmsAndStateHash(t *testing.T) {
	dir := t.TempDir()
	apiAddr := freeAddr(t)
	p := startAgent(t, writeConfig(t, dir, apiAddr, ""), apiAddr)
	if code := p.call("POST", "/v1/orders", e2eOrder, nil); code != 201 {
		t.Fatalf("create order: %d", code)
	}
	now := time.Now()
	for i, lat := range []float64{59.9105, 59.9106} {
		if code := p.call("POST", "/v1/observations", observation("864717003283581", now.Add(time.Duration(i)*time.Second), lat, 10.758), nil); code != 200 {
			t.Fatalf("observation: %d", code)
		}
	}
	var breachID string
	p.eventually("a breach alarm", func() bool {
		var list struct{ Alarms []alarm.Alarm }
		p.call("GET", "/v1/alarms", "", &list)
		for _, a := range list.Alarms {
			if a.Kind == alarm.Breach {
				breachID = a.ID
			}
		}
		return breachID != ""
	})
	if code := p.call("POST", "/v1/alarms/"+breachID+"/ack", `{"by": "operator-1"}`, nil); code != 200 {
		t.Fatalf("ack: %d", code)
	}

	// Ticks move the index every second: take the backup between two state hashes at the same index, so
	// that the orders, alarms and hash read around it are the backup's.
	backups := filepath.Join(dir, "backups")
	os.Mkdir(backups, 0o700)
	file := filepath.Join(backups, "e2e-1.tar.gz")
	var before api.StateHash
	var orders, alarms json.RawMessage
	var out string
	p.eventually("a backup between two reads at the same index", func() bool {
		var h1, h2 api.StateHash
		p.call("GET", "/v1/state/hash", "", &h1)
		p.call("GET", "/v1/orders", "", &orders)
		p.call("GET", "/v1/alarms?state=all", "", &alarms)
		var err error
		if out, err = bkCLI("backup", file, "--api", p.base); err != nil {
			t.Fatalf("skjold backup: %v\n%s", err, out)
		}
		p.call("GET", "/v1/state/hash", "", &h2)
		before = h1
		return h1.AppliedIndex == h2.AppliedIndex && h1.StateHash == h2.StateHash
	})
	if before.Node != "e2e-1" || before.AppliedIndex == 0 || len(before.StateHash) != 64 {
		t.Fatalf("state hash before: %+v", before)
	}
	if !strings.Contains(out, fmt.Sprintf("applied index: %d\n", before.AppliedIndex)) || !strings.Contains(out, "state hash:    "+before.StateHash) {
		t.Fatalf("skjold backup printed\n%s\nwant index %d, hash %s", out, before.AppliedIndex, before.StateHash)
	}
	if left, _ := filepath.Glob(filepath.Join(backups, ".*tmp*")); len(left) > 0 {
		t.Fatalf("backup left temporary files: %v", left)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	man, err := api.UnpackBackup(f, t.TempDir())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if man.Node != "e2e-1" || man.AppliedIndex != before.AppliedIndex || man.StateHash != before.StateHash || man.Format != api.BackupFormat {
		t.Fatalf("manifest %+v, state before %+v", man, before)
	}
	bkStopAgent(t, p)

	// Damaged backups are refused with a clear message and leave no data directory.
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0x20
	raftAddr := freeAddr(t)
	for name, data := range map[string][]byte{
		"flipped":   flipped,
		"truncated": good[:len(good)*2/3],
		"cut-tail":  good[:len(good)-3],
	} {
		bad := filepath.Join(dir, name+".tar.gz")
		os.WriteFile(bad, data, 0o600)
		target := filepath.Join(dir, "restored-"+name)
		out, err := bkCLI("restore", bad, "--data-dir", target, "--node-id", "e2e-1", "--raft-addr", raftAddr)
		if err == nil || !strings.Contains(out, "refusing backup "+bad) || !strings.Contains(out, "not a usable backup") {
			t.Fatalf("restore of a %s backup: %v\n%s", name, err, out)
		}
		if name != "flipped" && !strings.Contains(out, "truncated") {
			t.Fatalf("restore of a %s backup does not say it is truncated:\n%s", name, out)
		}
		bkNoTmpLeft(t, target)
	}
	// A directory that holds data is refused, by name.
	dataDir := filepath.Join(dir, "data")
	if out, err := bkCLI("restore", file, "--data-dir", dataDir, "--node-id", "e2e-1", "--raft-addr", raftAddr); err == nil ||
		!strings.Contains(out, dataDir+" already holds data") {
		t.Fatalf("restore over a data directory: %v\n%s", err, out)
	}

	// The good backup restores; a node on it serves the backup's state first, then goes on from there. The
	// node cannot apply anything before it leads, which takes at least raft's heartbeat timeout (1 s), so
	// its first answer is at the backup's index; if a slow machine misses that, restore again.
	var p2 *agentProc
	for attempt := 1; ; attempt++ {
		target := filepath.Join(dir, fmt.Sprintf("restored-%d", attempt))
		out, err := bkCLI("restore", file, "--data-dir", target, "--node-id", "e2e-1", "--raft-addr", raftAddr)
		if err != nil || !strings.Contains(out, fmt.Sprintf("applied index: %d\n", man.AppliedIndex)) || !strings.Contains(out, man.StateHash) {
			t.Fatalf("skjold restore: %v\n%s", err, out)
		}
		api2 := freeAddr(t)
		p2 = launchAgent(t, bkRestoredConfig(t, dir, target, api2, raftAddr), api2)
		var first api.StateHash
		p2.eventually("the restored node's API", func() bool {
			code, err := getJSON(p2.base+"/v1/state/hash", &first)
			return err == nil && code == 200
		})
		if first.AppliedIndex == before.AppliedIndex {
			if first != before {
				t.Fatalf("state hash after restore %+v, before %+v", first, before)
			}
			break
		}
		if first.AppliedIndex < before.AppliedIndex || attempt == 3 {
			t.Fatalf("restored node answers first at index %d, the backup is at %d", first.AppliedIndex, before.AppliedIndex)
		}
		t.Logf("attempt %d: the restored node was at index %d before its API answered; again", attempt, first.AppliedIndex)
		bkStopAgent(t, p2)
	}
	var orders2, alarms2 json.RawMessage
	p2.call("GET", "/v1/orders", "", &orders2)
	p2.call("GET", "/v1/alarms?state=all", "", &alarms2)
	if string(orders2) != string(orders) {
		t.Fatalf("orders after restore:\n%s\nbefore:\n%s", orders2, orders)
	}
	if string(alarms2) != string(alarms) {
		t.Fatalf("alarms after restore:\n%s\nbefore:\n%s", alarms2, alarms)
	}

	// It leads a cluster of one and takes new entries after the restored index.
	p2.waitHealthy()
	var a alarm.Alarm
	if code := p2.call("POST", "/v1/alarms/"+breachID+"/resolve", `{"by": "operator-2", "reason": "restored node"}`, &a); code != 200 || a.State != alarm.Resolved {
		t.Fatalf("resolve on the restored node: %d %+v", code, a)
	}
	var after api.StateHash
	p2.call("GET", "/v1/state/hash", "", &after)
	if after.AppliedIndex <= before.AppliedIndex || after.StateHash == before.StateHash {
		t.Fatalf("after a new entry: %+v, backup %+v", after, before)
	}
	var members struct{ Members []api.Member }
	if code, err := getJSON(p2.base+"/v1/cluster/members", &members); err == nil && code == 200 {
		if len(members.Members) != 1 || members.Members[0].ID != "e2e-1" || !members.Members[0].Voter || members.Members[0].Addr != raftAddr {
			t.Fatalf("members of the restored cluster: %+v", members.Members)
		}
	}
}
