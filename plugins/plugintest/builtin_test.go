package plugintest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/drivers/modem/modemtest"
	"github.com/skjold-alarm/skjold/plugins/plugintest"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

// builtin is one plugin shipped with Skjold. Every one must pass the kit; adding a plugin is one entry.
type builtin struct {
	name   string // also the test name
	pkg    string // its main package, built by TestMain
	config string // its config block as JSON
	// setup, when set, prepares what the plugin needs (a pseudo-terminal, a listener) and returns the
	// config to use, given config; cleanups go through t.Cleanup.
	setup func(t *testing.T, config string) string
	// mustPass are checks that must not merely be skipped for this plugin.
	mustPass []string
}

var builtins = []builtin{
	{name: "sim", pkg: "github.com/skjold-alarm/skjold/drivers/sim/cmd/skjold-driver-sim",
		config: `{"seed": 1, "tags": [
			{"device": "864717003283581", "path": [[10.745, 59.905], [10.7505, 59.9105]], "speed_mps": 8, "interval_s": 0.05},
			{"device": "unit-0017", "path": [[10.76, 59.92]], "interval_s": 0.05}]}`,
		mustPass: []string{plugintest.CheckObservations, plugintest.CheckAcks, plugintest.CheckCommand, plugintest.CheckMetrics,
			"rejects_wrong_type:tags", "rejects_wrong_type:seed"}},
	{name: "siren", pkg: "github.com/skjold-alarm/skjold/plugins/hooks/siren/cmd/skjold-hook-siren",
		config: `{"port": "PTY"}`, setup: ptyPort,
		mustPass: []string{plugintest.CheckDeliver, plugintest.CheckDuplicate, "rejects_wrong_type:port"}},
	{name: "gt06", pkg: "github.com/skjold-alarm/skjold/drivers/gt06/cmd/skjold-driver-gt06",
		config: `{"listen": "127.0.0.1:0"}`, mustPass: []string{plugintest.CheckMetrics, "rejects_wrong_type:listen"}},
	{name: "serialrx", pkg: "github.com/skjold-alarm/skjold/drivers/serialrx/cmd/skjold-driver-serialrx",
		config: `{"port": "PTY"}`, setup: ptyPort, mustPass: []string{plugintest.CheckMetrics, "rejects_wrong_type:port"}},
	{name: "modem", pkg: "github.com/skjold-alarm/skjold/drivers/modem/cmd/skjold-driver-modem",
		config: `{"port": "PTY", "devices": {"+4791234567": "tk103-0001"}, "poll_s": 1}`, setup: modemPort,
		mustPass: []string{plugintest.CheckMetrics, "rejects_wrong_type:port"}},
}

// modemPort is ptyPort with a modem emulator answering the AT dialogue on the other end.
func modemPort(t *testing.T, config string) string {
	p, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	em := modemtest.Start(p.Master, "")
	t.Cleanup(func() { em.Stop(); p.Close() })
	return strings.ReplaceAll(config, `"PTY"`, fmt.Sprintf("%q", p.Path))
}

// ptyPort replaces "PTY" in the config with a pseudo-terminal that stands in for a serial device.
func ptyPort(t *testing.T, config string) string {
	p, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return strings.ReplaceAll(config, `"PTY"`, fmt.Sprintf("%q", p.Path))
}

var bins = map[string]string{}

const (
	brokenPkg = "./testdata/broken"
	beaconPkg = "./testdata/beacon" // the vendor guide's example driver
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "skjold-plugintest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		pkgs := []string{brokenPkg, beaconPkg}
		for _, b := range builtins {
			pkgs = append(pkgs, b.pkg)
		}
		for i, pkg := range pkgs {
			out := filepath.Join(dir, fmt.Sprintf("plugin-%d", i))
			cmd := exec.Command(goBin, "build", "-o", out, pkg)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "go build %s: %v\n", pkg, err)
				return 1
			}
			bins[pkg] = out
		}
		return m.Run()
	}())
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func run(t *testing.T, path, config string) plugintest.Report {
	t.Helper()
	return runWith(t, plugintest.Options{Path: path, Config: json.RawMessage(config)})
}

func runWith(t *testing.T, opts plugintest.Options) plugintest.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts.PluginOutput = logWriter{t}
	return plugintest.Run(ctx, opts)
}

func TestBuiltinPluginsConform(t *testing.T) {
	for _, b := range builtins {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			cfg := b.config
			if b.setup != nil {
				cfg = b.setup(t, cfg)
			}
			rep := run(t, bins[b.pkg], cfg)
			t.Logf("\n%s", rep)
			if rep.Failed() {
				t.Fatalf("%s does not pass the conformance kit: %+v", b.name, rep.Failures())
			}
			if rep.Plugin != b.name {
				t.Errorf("Info names the plugin %q, want %q", rep.Plugin, b.name)
			}
			for _, name := range append([]string{plugintest.CheckLaunch, plugintest.CheckInfo, plugintest.CheckSchema,
				plugintest.CheckUnknownField, plugintest.CheckConfigure, plugintest.CheckHealth,
				plugintest.CheckShutdown, plugintest.CheckCrash}, b.mustPass...) {
				if c, ok := rep.Check(name); !ok || c.Result != plugintest.Pass {
					t.Errorf("check %s: %+v (present %v), want PASS", name, c, ok)
				}
			}
		})
	}
}

func TestBrokenPluginFailsTheRightChecks(t *testing.T) {
	rep := run(t, bins[brokenPkg], `{"url": "https://cad.example"}`)
	t.Logf("\n%s", rep)
	want := map[string]plugintest.Result{
		plugintest.CheckLaunch:       plugintest.Pass,
		plugintest.CheckInfo:         plugintest.Fail, // protocol version 2
		plugintest.CheckSchema:       plugintest.Fail, // type "integer"
		plugintest.CheckUnknownField: plugintest.Fail, // accepts anything
		"rejects_wrong_type:url":     plugintest.Fail,
		plugintest.CheckConfigure:    plugintest.Pass,
		plugintest.CheckHealth:       plugintest.Pass,
		plugintest.CheckMetrics:      plugintest.Skip, // Unimplemented is allowed
		plugintest.CheckDeliver:      plugintest.Pass,
		plugintest.CheckDuplicate:    plugintest.Fail, // refuses a repeated key
		plugintest.CheckShutdown:     plugintest.Fail, // lingers after Serve returned
		plugintest.CheckCrash:        plugintest.Pass,
		plugintest.CheckObservations: "", // a hook has no stream
	}
	for name, res := range want {
		c, ok := rep.Check(name)
		if res == "" {
			if ok {
				t.Errorf("check %s ran for a hook", name)
			}
			continue
		}
		if !ok || c.Result != res {
			t.Errorf("check %s: %+v (present %v), want %s", name, c, ok, res)
		}
	}
	if c, _ := rep.Check(plugintest.CheckInfo); !strings.Contains(c.Detail, "protocol_version is 2") {
		t.Errorf("info detail %q does not say why", c.Detail)
	}
	if c, _ := rep.Check(plugintest.CheckSchema); !strings.Contains(c.Detail, `"retries" has type "integer"`) {
		t.Errorf("schema detail %q does not name the field", c.Detail)
	}
	if !rep.Failed() || !strings.Contains(rep.String(), "NOT conformant") {
		t.Errorf("a failing report must say so:\n%s", rep)
	}
}

// The driver of docs/vendor-guide.md (and plugins/sdk/example_test.go) is certified as it stands.
func TestVendorGuideDriverConforms(t *testing.T) {
	// It reports every ten seconds: one batch is all the kit waits for.
	rep := runWith(t, plugintest.Options{Path: bins[beaconPkg], Config: json.RawMessage(`{"device": "unit-1"}`), Batches: 1})
	t.Logf("\n%s", rep)
	if rep.Failed() {
		t.Fatalf("failures: %+v", rep.Failures())
	}
	for _, name := range []string{plugintest.CheckObservations, plugintest.CheckCommand, plugintest.CheckUnknownCommand,
		"rejects_wrong_type:device", plugintest.CheckMetrics, plugintest.CheckCrash} {
		if c, _ := rep.Check(name); c.Result != plugintest.Pass {
			t.Errorf("check %s: %+v", name, c)
		}
	}
}

func TestMissingBinaryFailsLaunch(t *testing.T) {
	rep := run(t, filepath.Join(t.TempDir(), "nope"), "{}")
	if c, ok := rep.Check(plugintest.CheckLaunch); !ok || c.Result != plugintest.Fail || len(rep.Checks) != 1 {
		t.Fatalf("report %+v", rep)
	}
}

func TestNotAPluginFailsLaunch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "true.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rep := run(t, path, "{}")
	if c, ok := rep.Check(plugintest.CheckLaunch); !ok || c.Result != plugintest.Fail || !strings.Contains(c.Detail, "handshake") {
		t.Fatalf("report %+v", rep)
	}
}
