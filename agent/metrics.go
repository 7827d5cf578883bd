package agent

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/plugins/host"
)

// metrics are the node's Prometheus series. Counters of the state machine are read from it at scrape
// time, so the hot path pays nothing for them.
type metrics struct {
	reg             *prometheus.Registry
	proposals       prometheus.Counter
	proposalErrors  prometheus.Counter
	driverRejected  *prometheus.CounterVec
	deliveries      *prometheus.CounterVec
	deliveryLatency *prometheus.HistogramVec
	commands        *prometheus.CounterVec
}

func newMetrics(n *Node) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		proposals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skjold_proposals_total", Help: "Entries proposed to the replicated log by this node."}),
		proposalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skjold_proposal_errors_total", Help: "Proposals that were not committed."}),
		driverRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skjold_driver_batches_rejected_total", Help: "Driver batches refused because an observation was invalid."}, []string{"driver"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skjold_hook_deliveries_total", Help: "Outbox deliveries to hooks by result."}, []string{"hook", "result"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skjold_device_commands_total", Help: "Device commands by kind and result (sent, failed, no_driver)."}, []string{"command", "result"}),
		deliveryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "skjold_hook_delivery_seconds", Help: "Time for a hook to confirm one delivery.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"hook"}),
	}
	stat := func(name, help string, f func() float64, counter bool) prometheus.Collector {
		if counter {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
		}
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.proposals, m.proposalErrors, m.driverRejected, m.deliveries, m.deliveryLatency, m.commands,
		stat("skjold_observations_accepted_total", "Observations from bound devices applied.", func() float64 { return float64(n.machine.Stats().Accepted) }, true),
		stat("skjold_observations_dropped_total", "Observations from devices bound to no order, counted and dropped.", func() float64 { return float64(n.machine.Stats().Dropped) }, true),
		stat("skjold_observations_late_total", "Fixes older than the device's latest fix.", func() float64 { return float64(n.machine.Stats().Late) }, true),
		stat("skjold_alarm_transitions_total", "Alarm transitions applied.", func() float64 { return float64(n.machine.Stats().Changes) }, true),
		stat("skjold_applied_index", "Index of the last applied log entry.", func() float64 { return float64(n.machine.AppliedIndex()) }, false),
		stat("skjold_active_police_alarms", "Police alarms raised and not acknowledged.", func() float64 {
			var v int
			n.machine.View(func(ev *breach.Evaluator) { v = ev.ActivePolice() })
			return float64(v)
		}, false),
		stat("skjold_is_leader", "1 when this node leads the cluster.", func() float64 {
			if n.raft.IsLeader() {
				return 1
			}
			return 0
		}, false),
		stat("skjold_quorum_lost", "1 while this node has been cut off from a leader long enough to sound its siren.", func() float64 {
			if n.quorumLostSince.Load() != 0 {
				return 1
			}
			return 0
		}, false),
		pluginCollector{n},
		pluginMetricsCollector{n},
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

var (
	pluginUpDesc       = prometheus.NewDesc("skjold_plugin_up", "1 while a plugin runs and is healthy.", []string{"plugin", "kind"}, nil)
	pluginRestartsDesc = prometheus.NewDesc("skjold_plugin_restarts_total", "Times a plugin was restarted.", []string{"plugin", "kind"}, nil)
)

type pluginCollector struct{ n *Node }

func (c pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pluginUpDesc
	ch <- pluginRestartsDesc
}

func (c pluginCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.plugins == nil {
		return
	}
	for _, s := range c.n.plugins.Status() {
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(pluginUpDesc, prometheus.GaugeValue, up, s.Name, string(s.Kind))
		ch <- prometheus.MustNewConstMetric(pluginRestartsDesc, prometheus.CounterValue, float64(s.Restarts), s.Name, string(s.Kind))
	}
}

// pluginMetricPrefix is put before the name of every metric a plugin reports.
const pluginMetricPrefix = "skjold_plugin_"

// pluginScrapeTimeout bounds the whole round of Metrics calls at one scrape (each call is bounded by the
// host's MetricsTimeout too).
const pluginScrapeTimeout = 3 * time.Second

// pluginMetricsCollector exports the plugins' own metrics (the Metrics RPC) as
// skjold_plugin_<name>{plugin="<name>",kind="<kind>",<labels>}. It is an unchecked collector: the names
// are only known at scrape time. Within one scrape the first plugin (by name) to report a name fixes its
// help, type and label names; a series that disagrees, repeats one already sent, or has a name or label
// that Prometheus would refuse is left out, so one bad plugin cannot break the node's /metrics.
type pluginMetricsCollector struct{ n *Node }

func (c pluginMetricsCollector) Describe(chan<- *prometheus.Desc) {}

func (c pluginMetricsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.plugins == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), pluginScrapeTimeout)
	defer cancel()
	for _, m := range pluginMetrics(c.n.plugins.Metrics(ctx), c.n.log.Debug) {
		ch <- m
	}
}

// pluginFamily is what the first series of a name fixed.
type pluginFamily struct {
	help   string
	kind   string
	labels string // sorted label names, comma-joined
}

// pluginMetrics converts the plugins' answers into const metrics; drop is told why a series was left out.
func pluginMetrics(all []host.PluginMetrics, drop func(msg string, args ...any)) []prometheus.Metric {
	families := map[string]pluginFamily{}
	seen := map[string]bool{}
	var out []prometheus.Metric
	for _, pm := range all {
		if pm.Err != nil {
			drop("plugin metrics not read", "plugin", pm.Name, "err", pm.Err)
			continue
		}
		for _, m := range pm.Metrics {
			name := pluginMetricPrefix + m.GetName()
			skip := func(why string) { drop("plugin metric left out", "plugin", pm.Name, "metric", name, "why", why) }
			if !validMetricName(m.GetName()) || reservedPluginMetric[name] {
				skip("invalid or reserved name")
				continue
			}
			var vt prometheus.ValueType
			switch m.GetKind() {
			case "counter":
				vt = prometheus.CounterValue
			case "gauge":
				vt = prometheus.GaugeValue
			default:
				skip(fmt.Sprintf("kind %q is not counter or gauge", m.GetKind()))
				continue
			}
			names := make([]string, 0, len(m.GetLabels()))
			bad := false
			for k := range m.GetLabels() {
				if !validLabelName(k) || k == "plugin" || k == "kind" {
					bad = true
				}
				names = append(names, k)
			}
			if bad {
				skip("invalid or reserved label name")
				continue
			}
			sort.Strings(names)
			fam := pluginFamily{help: m.GetHelp(), kind: m.GetKind(), labels: strings.Join(names, ",")}
			if prev, ok := families[name]; !ok {
				families[name] = fam
			} else if prev.kind != fam.kind || prev.labels != fam.labels {
				skip("kind or label names differ from an earlier series of the same name")
				continue
			} else {
				fam.help = prev.help
			}
			labelNames := append([]string{"plugin", "kind"}, names...)
			values := []string{pm.Name, string(pm.Kind)}
			for _, k := range names {
				values = append(values, m.GetLabels()[k])
			}
			key := name + "\x00" + strings.Join(values, "\x00")
			if seen[key] {
				skip("duplicate series")
				continue
			}
			help := fam.help
			if help == "" {
				help = "Reported by the plugin."
			}
			cm, err := prometheus.NewConstMetric(prometheus.NewDesc(name, help, labelNames, nil), vt, m.GetValue(), values...)
			if err != nil {
				skip(err.Error())
				continue
			}
			seen[key] = true
			out = append(out, cm)
		}
	}
	return out
}

// reservedPluginMetric are the node's own skjold_plugin_* series; a plugin cannot report them.
var reservedPluginMetric = map[string]bool{"skjold_plugin_up": true, "skjold_plugin_restarts_total": true}

func validMetricName(s string) bool { return validName(s, true) }
func validLabelName(s string) bool  { return validName(s, false) && !strings.HasPrefix(s, "__") }

func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', colon && r == ':':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
