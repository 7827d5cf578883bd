package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skjold-alarm/skjold/core/breach"
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
		m.proposals, m.proposalErrors, m.driverRejected, m.deliveries, m.deliveryLatency,
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
		pluginCollector{n},
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
