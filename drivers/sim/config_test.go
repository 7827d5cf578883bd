package sim

import (
	"strings"
	"testing"
)

func TestParseConfigExample(t *testing.T) {
	cfg, errs := ParseConfig([]byte(`{"tags": [{"device": "864717003283581", "path": [[10.745, 59.905], [10.7505, 59.9105]],
		"speed_mps": 8, "interval_s": 2, "accuracy_m": 8, "battery_pct": 80, "loop": false, "start_delay_s": 0},
		{"device": "victim-1", "path": [[10.76, 59.92]]}], "seed": 7}`))
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if cfg.Seed != 7 || len(cfg.Tags) != 2 {
		t.Fatalf("cfg %+v", cfg)
	}
	a, b := cfg.Tags[0], cfg.Tags[1]
	if a.Device != "864717003283581" || a.SpeedMps != 8 || a.IntervalS != 2 || a.AccuracyM != 8 || a.BatteryPct != 80 || len(a.Path) != 2 || a.Path[1] != (LonLat{10.7505, 59.9105}) {
		t.Errorf("tag 0 %+v", a)
	}
	if b.IntervalS != DefaultIntervalS || b.AccuracyM != DefaultAccuracyM || b.BatteryPct != DefaultBatteryPct || len(b.Path) != 1 {
		t.Errorf("tag 1 defaults %+v", b)
	}
	if cfg2, _ := ParseConfig([]byte(`{"tags": [{"device": "x", "path": [[1, 2]]}]}`)); cfg2.Seed != 1 {
		t.Errorf("default seed %d", cfg2.Seed)
	}
}

func TestParseConfigErrorsHaveFieldPaths(t *testing.T) {
	cases := []struct {
		cfg, field, text string
	}{
		{`[]`, "", "JSON object"},
		{`{}`, "tags", "is required"},
		{`{"tags": {}}`, "tags", "list"},
		{`{"tags": []}`, "tags", "at least one"},
		{`{"tags": [5]}`, "tags[0]", "object"},
		{`{"tags": [{"path": [[1, 2]]}]}`, "tags[0].device", "is required"},
		{`{"tags": [{"device": "", "path": [[1, 2]]}]}`, "tags[0].device", "empty"},
		{`{"tags": [{"device": 12, "path": [[1, 2]]}]}`, "tags[0].device", "string"},
		{`{"tags": [{"device": "` + strings.Repeat("9", 65) + `", "path": [[1, 2]]}]}`, "tags[0].device", "65 bytes"},
		{`{"tags": [{"device": "a", "path": [[1, 2]]}, {"device": "a", "path": [[1, 2]]}]}`, "tags[1].device", "already the device of tags[0]"},
		{`{"tags": [{"device": "a"}]}`, "tags[0].path", "is required"},
		{`{"tags": [{"device": "a", "path": []}]}`, "tags[0].path", "at least one point"},
		{`{"tags": [{"device": "a", "path": [[10.7, 59.9], [10.7]]}]}`, "tags[0].path[1]", "[lon, lat]"},
		{`{"tags": [{"device": "a", "path": [[10.7, 59.9], ["x", 1]]}]}`, "tags[0].path[1]", "two numbers"},
		{`{"tags": [{"device": "a", "path": [[59.9, 190]]}]}`, "tags[0].path[0]", "latitude 190"},
		{`{"tags": [{"device": "a", "path": [[-181, 59]]}]}`, "tags[0].path[0]", "longitude -181"},
		{`{"tags": [{"device": "a", "path": [[1, 2]], "speed_mps": -1}]}`, "tags[0].speed_mps", "out of range"},
		{`{"tags": [{"device": "a", "path": [[1, 2], [1, 3]], "speed_mps": 0}]}`, "tags[0].speed_mps", "above 0"},
		{`{"tags": [{"device": "a", "path": [[1, 2]], "interval_s": 0}]}`, "tags[0].interval_s", "out of range"},
		{`{"tags": [{"device": "a", "path": [[1, 2]], "interval_s": "2"}]}`, "tags[0].interval_s", "number"},
		{`{"tags": [{"device": "a", "path": [[1, 2]], "battery_pct": 101}]}`, "tags[0].battery_pct", "out of range"},
		{`{"tags": [{"device": "a", "path": [[1, 2]], "battery_pct": 50.5}]}`, "tags[0].battery_pct", "whole number"},
		{`{"tags": [{"device": "a", "path": [[1, 2]], "loop": "yes"}]}`, "tags[0].loop", "true or false"},
		{`{"tags": [{"device": "a", "path": [[1, 2]], "start_delay_s": -3}]}`, "tags[0].start_delay_s", "out of range"},
		{`{"tags": [{"device": "a", "path": [[1, 2]], "accuracy_m": 1e9}]}`, "tags[0].accuracy_m", "out of range"},
		{`{"tags": [{"device": "a", "path": [[1, 2]], "colour": "red"}]}`, "tags[0].colour", "unknown attribute"},
		{`{"tags": [{"device": "a", "path": [[1, 2]]}], "seed": -1}`, "seed", "whole number"},
		{`{"tags": [{"device": "a", "path": [[1, 2]]}], "sed": 1}`, "sed", "unknown attribute"},
	}
	for _, c := range cases {
		_, errs := ParseConfig([]byte(c.cfg))
		found := false
		for _, e := range errs {
			if e.Field == c.field && strings.Contains(e.Message, c.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: errors %v, want one on %q mentioning %q", c.cfg, errs, c.field, c.text)
		}
	}
}

func TestParseConfigReportsEveryProblem(t *testing.T) {
	_, errs := ParseConfig([]byte(`{"tags": [{"device": "", "path": [[1, 200]]}, {"path": [[1, 2]], "interval_s": -1}]}`))
	want := map[string]bool{"tags[0].device": false, "tags[0].path[0]": false, "tags[1].device": false, "tags[1].interval_s": false}
	for _, e := range errs {
		if _, ok := want[e.Field]; ok {
			want[e.Field] = true
		}
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("no error on %s in %v", f, errs)
		}
	}
}
