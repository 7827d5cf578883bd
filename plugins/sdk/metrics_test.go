package sdk

import (
	"context"
	"strings"
	"testing"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

func TestMetricsServedOverGRPC(t *testing.T) {
	frames := NewCounter("test_frames_total", "Frames by result.", "result")
	conns := NewGauge("test_connections", "Open connections.")
	okBefore, badBefore := frames.Value("ok"), frames.Value("bad_crc") // the registry is process-wide
	frames.Inc("ok")
	frames.Add(2, "ok")
	frames.Inc("bad_crc")
	conns.Set(3)

	h := startDriver(t)
	r, err := h.base.Metrics(context.Background(), &pluginpb.MetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*pluginpb.Metric{}
	for _, m := range r.GetMetrics() {
		if strings.HasPrefix(m.GetName(), "test_") {
			got[m.GetName()+"/"+m.GetLabels()["result"]] = m
		}
	}
	want := []struct {
		key, kind, help string
		v               float64
	}{
		{"test_frames_total/ok", "counter", "Frames by result.", okBefore + 3},
		{"test_frames_total/bad_crc", "counter", "Frames by result.", badBefore + 1},
		{"test_connections/", "gauge", "Open connections.", 3},
	}
	if len(got) != len(want) {
		t.Fatalf("series: %v", got)
	}
	for _, w := range want {
		m := got[w.key]
		if m == nil || m.GetKind() != w.kind || m.GetHelp() != w.help || m.GetValue() != w.v {
			t.Errorf("%s: %v", w.key, m)
		}
	}
}

func TestMetricNamesChecked(t *testing.T) {
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"bad-name", nil},
		{"9lives", nil},
		{"", nil},
		{"ok_total", []string{"plugin"}},
		{"ok_total", []string{"kind"}},
		{"ok_total", []string{"__x"}},
		{"ok_total", []string{"a-b"}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%q %v: no panic", c.name, c.labels)
				}
			}()
			NewCounter(c.name, "", c.labels...)
		}()
	}
}
