package host

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// PluginMetrics are one running plugin's own metrics, as it answered the Metrics call.
type PluginMetrics struct {
	Name    string
	Kind    Kind
	Metrics []*pluginpb.Metric
	// Err is why the plugin's metrics could not be read (a timeout, a broken connection); nil for a
	// plugin that answered, or that does not implement Metrics (it has none).
	Err error
}

// Metrics asks every running plugin for its metrics, all at once, each call bounded by MetricsTimeout.
// Plugins that are down are left out; the result is sorted by name.
func (m *Manager) Metrics(ctx context.Context) []PluginMetrics {
	type job struct {
		p  *managed
		cn *conn
	}
	var jobs []job
	for _, n := range m.names {
		p := m.plugins[n]
		if cn, _ := p.current(); cn != nil {
			jobs = append(jobs, job{p, cn})
		}
	}
	out := make([]PluginMetrics, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pm := PluginMetrics{Name: j.p.spec.Name, Kind: j.p.spec.Kind}
			cctx, cancel := context.WithTimeout(ctx, m.opts.MetricsTimeout)
			defer cancel()
			r, err := j.cn.base.Metrics(cctx, &pluginpb.MetricsRequest{})
			switch {
			case status.Code(err) == codes.Unimplemented:
			case err != nil:
				pm.Err = err
			default:
				pm.Metrics = r.GetMetrics()
			}
			out[i] = pm
		}()
	}
	wg.Wait()
	return out
}
