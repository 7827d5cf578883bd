package agent

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/skjold-alarm/skjold/plugins/host"
)

// The evaluator's device commands travel through the outbox to the driver that last heard the device:
// a simulated offender walking into a warning buffer makes its tag vibrate and report faster, and the
// protected person's unit is warned when the offender comes near.
func TestDeviceCommandsReachTheDriver(t *testing.T) {
	sum, err := host.FileSHA256(simBinary)
	if err != nil {
		t.Fatal(err)
	}
	simCfg, _ := json.Marshal(map[string]any{"seed": 1, "tags": []map[string]any{
		// 400 m south of the home, walking in at 20 m/s, reporting every 50 ms.
		{"device": "864717003283581", "path": [][]float64{{10.755, 59.9065}, {10.755, 59.9125}}, "speed_mps": 20, "interval_s": 0.05},
		{"device": "unit-0017", "path": [][]float64{{10.7553, 59.9115}}, "interval_s": 0.05},
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
	order := strings.Replace(apiOrder, `"radius_m": 500, "warning_m": 1000`, `"radius_m": 100, "warning_m": 250`, 1)
	if r := call(t, n, "POST", "/v1/orders", order); r.status != 201 {
		t.Fatalf("order: %d %s", r.status, r.body)
	}
	var body string
	waitFor(t, "commands at the sim driver", func() bool {
		body = scrape(t, n)
		return sample(body, `skjold_plugin_sim_commands_total{command="vibrate",kind="driver",plugin="sim"}`) >= 1 &&
			sample(body, `skjold_plugin_sim_commands_total{command="report_interval",kind="driver",plugin="sim"}`) >= 1 &&
			sample(body, `skjold_plugin_sim_commands_total{command="warn",kind="driver",plugin="sim"}`) >= 1
	})
	for _, kind := range []string{"vibrate", "report_interval", "warn"} {
		if got := sample(body, fmt.Sprintf(`skjold_device_commands_total{command=%q,result="sent"}`, kind)); got < 1 {
			t.Errorf("node counted %v %s commands sent", got, kind)
		}
	}
}
