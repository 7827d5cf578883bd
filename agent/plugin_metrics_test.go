package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skjold-alarm/skjold/plugins/host"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// simBinary and capBinary are the simulator driver and the CAP hook, built once by TestMain.
var simBinary, capBinary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "skjold-agent-plugins-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		simBinary = filepath.Join(dir, "skjold-driver-sim")
		capBinary = filepath.Join(dir, "skjold-hook-cap")
		for bin, pkg := range map[string]string{
			simBinary: "github.com/skjold-alarm/skjold/drivers/sim/cmd/skjold-driver-sim",
			capBinary: "github.com/skjold-alarm/skjold/plugins/hooks/cap/cmd/skjold-hook-cap",
		} {
			cmd := exec.Command(goBin, "build", "-o", bin, pkg)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "go build %s: %v\n", pkg, err)
				return 1
			}
		}
		return m.Run()
	}())
}

func scrape(t *testing.T, n *Node) string {
	t.Helper()
	res, err := http.Get("http://" + n.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", res.StatusCode, b)
	}
	return string(b)
}

// sample returns the value of the series with exactly this name and these labels (in Prometheus' sorted
// order), or -1.
func sample(body, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

func TestPluginMetricsOnNodeMetrics(t *testing.T) {
	sum, err := host.FileSHA256(simBinary)
	if err != nil {
		t.Fatal(err)
	}
	simCfg, _ := json.Marshal(map[string]any{"seed": 1, "tags": []map[string]any{
		{"device": "864717003283581", "path": [][]float64{{10.745, 59.905}, {10.75, 59.91}}, "interval_s": 0.05},
	}})
	cfg := DefaultConfig()
	cfg.NodeID = "test-1"
	cfg.DataDir = t.TempDir()
	cfg.APIListen = "127.0.0.1:0"
	cfg.RaftBind = "127.0.0.1:0"
	cfg.Drivers = []PluginConfig{{Name: "sim", Path: simBinary, SHA256: sum, Config: simCfg}}
	n, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	waitFor(t, "leadership", func() bool { return n.raft.IsLeader() })

	acked := `skjold_plugin_sim_batches_total{kind="driver",plugin="sim",result="acked"}`
	var body string
	waitFor(t, "acked batches on /metrics", func() bool {
		body = scrape(t, n)
		return sample(body, acked) >= 2
	})
	waitFor(t, "the sim driver up", func() bool { return n.plugins.Status()[0].Up })
	for i := 0; i < 2; i++ {
		if err := n.plugins.Command(context.Background(), "sim", &pluginpb.DeviceCommand{
			Id: fmt.Sprint("c", i), Device: "864717003283581", Kind: "vibrate"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.plugins.Command(context.Background(), "sim", &pluginpb.DeviceCommand{
		Id: "c9", Device: "864717003283581", Kind: "warn"}); err != nil {
		t.Fatal(err)
	}
	body = scrape(t, n)
	for series, want := range map[string]float64{
		`skjold_plugin_sim_commands_total{command="vibrate",kind="driver",plugin="sim"}`: 2,
		`skjold_plugin_sim_commands_total{command="warn",kind="driver",plugin="sim"}`:    1,
		`skjold_plugin_sim_tags{kind="driver",plugin="sim"}`:                             1,
		`skjold_plugin_up{kind="driver",plugin="sim"}`:                                   1,
	} {
		if got := sample(body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if sample(body, `skjold_plugin_sim_batches_total{kind="driver",plugin="sim",result="sent"}`) < sample(body, acked) {
		t.Error("fewer batches sent than acked")
	}
	for _, line := range []string{
		"# TYPE skjold_plugin_sim_batches_total counter",
		"# TYPE skjold_plugin_sim_tags gauge",
		"# HELP skjold_plugin_sim_commands_total Device commands accepted, by command kind.",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("missing %q", line)
		}
	}
	// The node's own series are still there: one registry, no descriptor clash.
	if !strings.Contains(body, "skjold_applied_index ") {
		t.Error("the node's own metrics are missing")
	}
}

// One plugin's odd metrics must never break the scrape: conflicting kinds, label sets, duplicates,
// reserved and invalid names are left out, and the rest is exported consistently.
func TestPluginMetricsConflictsAreLeftOut(t *testing.T) {
	m := func(name, kind, help string, v float64, labels ...string) *pluginpb.Metric {
		l := map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			l[labels[i]] = labels[i+1]
		}
		return &pluginpb.Metric{Name: name, Kind: kind, Help: help, Value: v, Labels: l}
	}
	all := []host.PluginMetrics{
		{Name: "a", Kind: host.KindDriver, Metrics: []*pluginpb.Metric{
			m("frames_total", "counter", "Frames.", 5, "result", "ok"),
			m("frames_total", "counter", "Frames.", 6, "result", "ok"), // duplicate series
			m("up", "gauge", "", 1), // the node's own skjold_plugin_up
			m("bad-name", "gauge", "", 1),
			m("x_total", "counter", "", 1, "plugin", "spoof"), // reserved label
			m("y", "histogram", "", 1),
		}},
		{Name: "b", Kind: host.KindHook, Metrics: []*pluginpb.Metric{
			m("frames_total", "counter", "Other help.", 7, "result", "ok"), // same family, other plugin: kept
			m("frames_total", "gauge", "", 8, "result", "bad"),             // other kind: left out
			m("frames_total", "counter", "", 9, "port", "x"),               // other label names: left out
		}},
		{Name: "c", Kind: host.KindDriver, Err: fmt.Errorf("deadline exceeded")},
	}
	var dropped []string
	ms := pluginMetrics(all, func(_ string, args ...any) { dropped = append(dropped, fmt.Sprint(args...)) })
	reg := prometheus.NewRegistry()
	reg.MustRegister(constCollector(ms))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	if len(fams) != 1 || fams[0].GetName() != "skjold_plugin_frames_total" || fams[0].GetHelp() != "Frames." {
		t.Fatalf("families %v", fams)
	}
	got := map[string]float64{}
	for _, s := range fams[0].GetMetric() {
		lbl := map[string]string{}
		for _, l := range s.GetLabel() {
			lbl[l.GetName()] = l.GetValue()
		}
		got[lbl["plugin"]+"/"+lbl["kind"]+"/"+lbl["result"]] = s.GetCounter().GetValue()
	}
	if len(got) != 2 || got["a/driver/ok"] != 5 || got["b/hook/ok"] != 7 {
		t.Fatalf("series %v", got)
	}
	if len(dropped) != 8 {
		t.Fatalf("dropped %d: %v", len(dropped), dropped)
	}
}

type constCollector []prometheus.Metric

func (c constCollector) Describe(chan<- *prometheus.Desc) {}
func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}
