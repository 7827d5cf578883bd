package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPluginTestCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sim.hcl")
	os.WriteFile(cfg, []byte(`config {
  seed = 1
  tags = [{ device = "864717003283581", path = [[10.745, 59.905], [10.75, 59.91]], interval_s = 0.05 }]
}
`), 0o600)
	sim := filepath.Join(binDir, "skjold-driver-sim")
	skjold := filepath.Join(binDir, "skjold")

	out, err := exec.Command(skjold, "plugin", "test", sim, "--config", cfg, "--kind", "driver").CombinedOutput()
	if err != nil {
		t.Fatalf("plugin test: %v\n%s", err, out)
	}
	for _, want := range []string{"plugin sim (driver ", "PASS  observations_valid", "PASS  crash_restart", ": conformant\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}

	// Without its config the simulator cannot be configured: the run fails and says what to do.
	out, err = exec.Command(skjold, "plugin", "test", sim).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("plugin test without config: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "FAIL  configure") || !strings.Contains(string(out), "--config") ||
		!strings.Contains(string(out), "check(s) failed") {
		t.Errorf("output\n%s", out)
	}

	// Tested as the wrong kind, the info check fails.
	out, err = exec.Command(skjold, "plugin", "test", sim, "--config", cfg, "--kind", "hook").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `FAIL  info`) || !strings.Contains(string(out), "tested as a hook") {
		t.Errorf("--kind hook: %v\n%s", err, out)
	}
}
