package sdk

import (
	"context"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

// hookServer serves a Hook over gRPC.
type hookServer struct {
	*base
	pluginpb.UnimplementedHookServer
	h   Hook
	log hclog.Logger
	cb  *callbacks
}

func newHookServer(h Hook, log hclog.Logger) *hookServer {
	s := &hookServer{h: h, log: log, cb: newCallbacks(log)}
	s.base = &base{kind: shared.KindHook, info: h.Info, schema: h.ConfigSchema, conf: h.Configure, health: h.Health}
	if u, ok := h.(HostUser); ok {
		u.SetHost(s.cb)
	}
	return s
}

// SetBroker receives the plugin side's go-plugin broker (shared.BrokerUser).
func (s *hookServer) SetBroker(b *plugin.GRPCBroker) { s.cb.setBroker(b) }

// Configure connects the callbacks to the broker id the host names, then configures the hook.
func (s *hookServer) Configure(ctx context.Context, req *pluginpb.ConfigureRequest) (*pluginpb.ConfigureResponse, error) {
	s.cb.connect(req.GetCallbackBrokerId())
	return s.base.Configure(ctx, req)
}

func (s *hookServer) Deliver(ctx context.Context, ev *pluginpb.AlarmEvent) (*pluginpb.Receipt, error) {
	if !s.isConfigured() {
		return &pluginpb.Receipt{Delivered: false, Error: "not configured"}, nil
	}
	r, err := s.h.Deliver(ctx, ev)
	if err != nil {
		ref := ""
		if r != nil {
			ref = r.GetReference()
		}
		return &pluginpb.Receipt{Delivered: false, Reference: ref, Error: err.Error()}, nil
	}
	if r == nil {
		r = &pluginpb.Receipt{Delivered: true}
	}
	return r, nil
}

var _ shared.BrokerUser = (*hookServer)(nil)
