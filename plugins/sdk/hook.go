package sdk

import (
	"context"

	hclog "github.com/hashicorp/go-hclog"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

// hookServer serves a Hook over gRPC.
type hookServer struct {
	*base
	pluginpb.UnimplementedHookServer
	h   Hook
	log hclog.Logger
}

func newHookServer(h Hook, log hclog.Logger) *hookServer {
	s := &hookServer{h: h, log: log}
	s.base = &base{kind: shared.KindHook, info: h.Info, schema: h.ConfigSchema, conf: h.Configure, health: h.Health}
	return s
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
