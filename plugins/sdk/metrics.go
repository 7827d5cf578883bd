package sdk

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// A plugin's metrics: counters and gauges kept in the plugin process and read by the host (the Metrics
// RPC of the base service, served by the SDK for every kind), which exports them on the node's /metrics
// with a plugin and a kind label; the label names "plugin" and "kind" are therefore reserved. Names are Prometheus names without the
// node's prefix, e.g. "frames_total" becomes skjold_plugin_frames_total{plugin="gt06",...}.

// MetricKind is a counter (only goes up) or a gauge.
type MetricKind string

const (
	CounterKind MetricKind = "counter"
	GaugeKind   MetricKind = "gauge"
)

// MetricValue is one series.
type MetricValue struct {
	Name   string
	Help   string
	Kind   MetricKind
	Labels map[string]string
	Value  float64
}

type series struct {
	labels []string
	value  float64
}

// Metric is a family of series with the same name and label names.
type Metric struct {
	name, help string
	kind       MetricKind
	labelNames []string
	mu         sync.Mutex
	series     map[string]*series
}

var registry = struct {
	mu      sync.Mutex
	metrics map[string]*Metric
}{metrics: map[string]*Metric{}}

func register(kind MetricKind, name, help string, labelNames []string) *Metric {
	if !validName(name) {
		panic(fmt.Sprintf("sdk: metric name %q is not a Prometheus name ([a-zA-Z_][a-zA-Z0-9_]*)", name))
	}
	for _, l := range labelNames {
		if !validName(l) || strings.HasPrefix(l, "__") {
			panic(fmt.Sprintf("sdk: metric %q: label name %q is not a Prometheus label name", name, l))
		}
		if l == "plugin" || l == "kind" {
			panic(fmt.Sprintf("sdk: metric %q: label name %q is reserved (the node sets it)", name, l))
		}
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if m, ok := registry.metrics[name]; ok {
		if m.kind != kind || strings.Join(m.labelNames, ",") != strings.Join(labelNames, ",") {
			panic(fmt.Sprintf("sdk: metric %q registered twice with different kind or labels", name))
		}
		return m
	}
	m := &Metric{name: name, help: help, kind: kind, labelNames: labelNames, series: map[string]*series{}}
	registry.metrics[name] = m
	return m
}

// NewCounter registers (or returns the existing) counter family.
func NewCounter(name, help string, labelNames ...string) *Metric {
	return register(CounterKind, name, help, labelNames)
}

// NewGauge registers (or returns the existing) gauge family.
func NewGauge(name, help string, labelNames ...string) *Metric {
	return register(GaugeKind, name, help, labelNames)
}

func (m *Metric) get(labelValues []string) *series {
	if len(labelValues) != len(m.labelNames) {
		panic(fmt.Sprintf("sdk: metric %q takes %d label values, got %d", m.name, len(m.labelNames), len(labelValues)))
	}
	key := strings.Join(labelValues, "\x00")
	s, ok := m.series[key]
	if !ok {
		s = &series{labels: append([]string(nil), labelValues...)}
		m.series[key] = s
	}
	return s
}

// Inc adds one to the series with these label values.
func (m *Metric) Inc(labelValues ...string) { m.Add(1, labelValues...) }

// Add adds v (a counter must not go down).
func (m *Metric) Add(v float64, labelValues ...string) {
	if m.kind == CounterKind && v < 0 {
		panic(fmt.Sprintf("sdk: counter %q cannot decrease", m.name))
	}
	m.mu.Lock()
	m.get(labelValues).value += v
	m.mu.Unlock()
}

// Set sets a gauge.
func (m *Metric) Set(v float64, labelValues ...string) {
	if m.kind != GaugeKind {
		panic(fmt.Sprintf("sdk: %q is not a gauge", m.name))
	}
	m.mu.Lock()
	m.get(labelValues).value = v
	m.mu.Unlock()
}

// Value reads one series (for tests).
func (m *Metric) Value(labelValues ...string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.get(labelValues).value
}

// Metrics returns every series of the process, sorted by name and labels.
func Metrics() []MetricValue {
	registry.mu.Lock()
	names := make([]string, 0, len(registry.metrics))
	for n := range registry.metrics {
		names = append(names, n)
	}
	ms := make([]*Metric, 0, len(names))
	sort.Strings(names)
	for _, n := range names {
		ms = append(ms, registry.metrics[n])
	}
	registry.mu.Unlock()
	var out []MetricValue
	for _, m := range ms {
		m.mu.Lock()
		keys := make([]string, 0, len(m.series))
		for k := range m.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s := m.series[k]
			labels := make(map[string]string, len(m.labelNames))
			for i, ln := range m.labelNames {
				labels[ln] = s.labels[i]
			}
			out = append(out, MetricValue{Name: m.name, Help: m.help, Kind: m.kind, Labels: labels, Value: s.value})
		}
		m.mu.Unlock()
	}
	return out
}

// metricsResponse is Metrics() on the wire.
func metricsResponse() *pluginpb.MetricsResponse {
	vals := Metrics()
	out := make([]*pluginpb.Metric, 0, len(vals))
	for _, v := range vals {
		out = append(out, &pluginpb.Metric{Name: v.Name, Help: v.Help, Kind: string(v.Kind), Labels: v.Labels, Value: v.Value})
	}
	return &pluginpb.MetricsResponse{Metrics: out}
}

// validName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
