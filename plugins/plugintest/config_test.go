package plugintest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, src, want, err string
	}{
		{"a.json", `{"port": "/dev/ttyUSB0", "baud": 9600}`, `{"port": "/dev/ttyUSB0", "baud": 9600}`, ""},
		{"b.hcl", "config {\n  port = \"/dev/ttyUSB0\"\n  baud = 9600\n  tags = [{device = \"d1\", path = [[10.7, 59.9]]}]\n}\n",
			`{"baud":9600,"port":"/dev/ttyUSB0","tags":[{"device":"d1","path":[[10.7,59.9]]}]}`, ""},
		{"c.hcl", "port = \"/dev/ttyUSB0\"\n", `{"port":"/dev/ttyUSB0"}`, ""},
		{"d.json", `[1]`, "", "not a JSON object"},
		{"e.hcl", "config {\n port = \n}\n", "", "e.hcl"},
		{"f.hcl", "driver \"x\" {\n}\n", "", `unexpected block "driver"`},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, []byte(c.src), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := LoadConfig(path)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%s: %s %v, want %s", c.name, got, err, c.want)
		}
	}
}

func TestReportString(t *testing.T) {
	r := Report{Path: "/x", Plugin: "p", Kind: "driver", Version: "1", Checks: []Check{
		{"info", Pass, "ok"}, {"rejects_unknown_field", Fail, "accepted"}, {"devices", Skip, "none"}}}
	s := r.String()
	for _, want := range []string{"plugin p (driver 1) /x\n", "PASS  info                   ok\n",
		"FAIL  rejects_unknown_field  accepted\n", "SKIP  devices                none\n", "1 passed, 1 failed, 1 skipped: NOT conformant\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	r.Checks = r.Checks[:1]
	if r.Failed() || !strings.HasSuffix(r.String(), ": conformant\n") {
		t.Errorf("%s", r)
	}
}
