package cap

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/plugins/plugintest"
)

// The built binary passes the conformance kit (the same run as `skjold plugin test`) against a local
// HTTPS receiver, and what it posted there is CAP.
func TestBinaryPassesConformanceKit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "skjold-hook-cap")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "build", "-o", bin, "./cmd/skjold-hook-cap").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := newPKI(t, "test-ca")
	rc := newReceiver(t, p, false)
	cfg, _ := json.Marshal(map[string]any{"url": rc.URL + "/cap", "ca_file": p.caFile, "timeout_s": 5})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := plugintest.Run(ctx, plugintest.Options{Path: bin, Config: cfg, PluginOutput: logWriter{t}})
	t.Logf("\n%s", rep)
	if rep.Failed() {
		t.Fatalf("conformance kit: %+v", rep.Failures())
	}
	results := map[string]plugintest.Result{}
	for _, c := range rep.Checks {
		results[c.Name] = c.Result
	}
	for _, name := range []string{plugintest.CheckDeliver, plugintest.CheckDuplicate, "rejects_wrong_type:url", "metrics"} {
		if results[name] != plugintest.Pass {
			t.Errorf("check %s: %q, want PASS", name, results[name])
		}
	}
	reqs := rc.requests()
	if len(reqs) < 2 {
		t.Fatalf("the receiver got %d POSTs", len(reqs))
	}
	al, err := ParseAlert(reqs[0].Body)
	if err != nil || al.Identifier != "alm-plugintest:1" || al.MsgType != MsgAlert {
		t.Fatalf("first POST: %v %+v", err, al)
	}
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
