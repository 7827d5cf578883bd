package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
)

func TestParseConfig(t *testing.T) {
	src := `
node_id  = "n1"
data_dir = "/tmp/x"
api  { listen = "127.0.0.1:9000" }
raft {
  listen    = "127.0.0.1:9001"
  bootstrap = false
}
evaluator {
  no_signal_after = "2m"
  battery_low_pct = 15
  hysteresis_m    = 25
  exit_fixes      = 3
}
driver "gt06" {
  sha256 = "abc"
  config {
    listen = "127.0.0.1:5023"
    tags   = [{ device = "x", path = [[10.7, 59.9]] }]
  }
}
hook "siren" {
  path   = "/opt/siren"
  sha256 = "def"
  config { port = "/dev/ttyUSB0" }
}
`
	c, err := ParseConfig("t.hcl", []byte(src), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != "n1" || c.APIListen != "127.0.0.1:9000" || c.RaftBind != "127.0.0.1:9001" || c.Bootstrap {
		t.Fatalf("%+v", c)
	}
	e := c.Evaluator
	if e.NoSignalAfter != 2*time.Minute || e.BatteryLowPct != 15 || e.BatteryRestorePct != 20 || e.HysteresisM != 25 || e.ExitFixes != 3 {
		t.Fatalf("evaluator %+v", e)
	}
	if len(c.Drivers) != 1 || string(c.Drivers[0].Config) != `{"listen":"127.0.0.1:5023","tags":[{"device":"x","path":[[10.7,59.9]]}]}` {
		t.Fatalf("driver config %s", c.Drivers[0].Config)
	}
	if len(c.Hooks) != 1 || c.Hooks[0].Path != "/opt/siren" || string(c.Hooks[0].Config) != `{"port":"/dev/ttyUSB0"}` {
		t.Fatalf("hooks %+v", c.Hooks)
	}
}

func TestConfigErrorsNameTheProblem(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`evaluator { no_signal_after = "soon" }`, "evaluator.no_signal_after"},
		{`evaluator { exit_fixes = 0 }`, "evaluator.exit_fixes"},
		{`driver "a" {}` + "\n" + `driver "a" {}`, `driver "a" is declared twice`},
		{`colour = "red"`, "colour"},
		{`api { listen = }`, "t.hcl:1"},
	} {
		_, err := ParseConfig("t.hcl", []byte(c.src), DefaultConfig())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.src, err, c.want)
		}
	}
}

func TestHookRoutes(t *testing.T) {
	src := `
hook "desk" {
  route {
    classes = ["technical"]
  }
}
hook "cad" {
  route {
    classes      = ["police"]
    kinds        = ["breach", "dynamic_breach"]
    min_severity = "major"
  }
}
hook "siren" {}
`
	c, err := ParseConfig("t.hcl", []byte(src), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]*Route{}
	for _, h := range c.Hooks {
		routes[h.Name] = h.Route
	}
	breach := &alarm.Alarm{Kind: alarm.Breach, Class: alarm.Police, Severity: alarm.Critical, OrderID: "o"}
	battery := &alarm.Alarm{Kind: alarm.BatteryLow, Class: alarm.Technical, Severity: alarm.Minor, OrderID: "o"}
	warning := &alarm.Alarm{Kind: alarm.Warning, Class: alarm.Police, Severity: alarm.Major, OrderID: "o"}
	for _, c := range []struct {
		hook  string
		a     *alarm.Alarm
		match bool
	}{
		{"desk", battery, true}, {"desk", breach, false},
		{"cad", breach, true}, {"cad", warning, false}, {"cad", battery, false},
		{"siren", breach, true}, {"siren", battery, true},
	} {
		if got := routes[c.hook].Matches(c.a); got != c.match {
			t.Errorf("%s gets %s: %v, want %v", c.hook, c.a.Kind, got, c.match)
		}
	}
	for _, bad := range []string{
		`hook "x" { route { classes = ["army"] } }`,
		`hook "x" { route { kinds = ["burglary"] } }`,
		`hook "x" { route { min_severity = "huge" } }`,
		`driver "x" { route {} }`,
	} {
		if _, err := ParseConfig("t.hcl", []byte(bad), DefaultConfig()); err == nil || !strings.Contains(err.Error(), "route") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
