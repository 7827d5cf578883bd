// Command broken is a hook that gets the contract wrong in several ways, so the conformance kit can be
// seen to fail it with the right checks named: it claims protocol version 2, describes a field with a
// type the schema does not allow, accepts any configuration, refuses a repeated idempotency key, has no
// Metrics, and does not exit when it is asked to.
package main

import (
	"context"
	"sync"

	plugin "github.com/hashicorp/go-plugin"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

type broken struct {
	pluginpb.UnimplementedPluginServer
	pluginpb.UnimplementedHookServer
	mu   sync.Mutex
	seen map[string]bool
}

func (*broken) Info(context.Context, *pluginpb.InfoRequest) (*pluginpb.InfoResponse, error) {
	return &pluginpb.InfoResponse{Name: "broken", Kind: shared.KindHook, Version: "0", ProtocolVersion: 2}, nil
}

func (*broken) ConfigSchema(context.Context, *pluginpb.ConfigSchemaRequest) (*pluginpb.ConfigSchemaResponse, error) {
	return &pluginpb.ConfigSchemaResponse{Fields: []*pluginpb.ConfigField{
		{Name: "url", Type: "string", Required: true},
		{Name: "retries", Type: "integer"},
	}}, nil
}

func (*broken) Configure(context.Context, *pluginpb.ConfigureRequest) (*pluginpb.ConfigureResponse, error) {
	return &pluginpb.ConfigureResponse{}, nil
}

func (*broken) Health(context.Context, *pluginpb.HealthRequest) (*pluginpb.HealthResponse, error) {
	return &pluginpb.HealthResponse{Healthy: true, Message: "fine"}, nil
}

func (b *broken) Deliver(_ context.Context, ev *pluginpb.AlarmEvent) (*pluginpb.Receipt, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[ev.GetIdempotencyKey()] {
		return &pluginpb.Receipt{Error: "duplicate"}, nil
	}
	b.seen[ev.GetIdempotencyKey()] = true
	return &pluginpb.Receipt{Delivered: true}, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins:         plugin.PluginSet{shared.KindHook: &shared.HookPlugin{Impl: &broken{seen: map[string]bool{}}}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
	select {} // asked to stop, it lingers until it is killed
}
