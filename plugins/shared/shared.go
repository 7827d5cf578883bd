// Package shared holds what both ends of a Skjold plugin connection must agree on: the go-plugin handshake,
// the names of the plugin kinds, and the go-plugin glue that puts the generated gRPC services on the wire.
// The SDK (plugin side) and the host (node side) both import it, so they cannot drift apart.
package shared

import (
	"context"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// ProtocolVersion is the version of plugins/proto/skjold.proto. It is both the go-plugin handshake
// version and the protocol_version a plugin reports in InfoResponse.
const ProtocolVersion = 1

// Plugin kinds. They are also the names in the go-plugin PluginSet.
const (
	KindDriver = "driver"
	KindHook   = "hook"
)

// Handshake is the go-plugin handshake for every Skjold plugin, whatever its kind. The magic cookie only
// keeps a plugin binary from being started by hand by mistake; it is not a secret.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "SKJOLD_PLUGIN",
	MagicCookieValue: "7f1c2e0a-skjold-plugin-v1-omvendt-voldsalarm",
}

// DriverServer is what a driver serves: the base service and the driver service.
type DriverServer interface {
	pluginpb.PluginServer
	pluginpb.DriverServer
}

// HookServer is what a hook serves: the base service and the hook service.
type HookServer interface {
	pluginpb.PluginServer
	pluginpb.HookServer
}

// DriverClient is the host's handle on a driver.
type DriverClient struct {
	Base   pluginpb.PluginClient
	Driver pluginpb.DriverClient
	// Done ends when the plugin process has exited (go-plugin's client context).
	Done context.Context
}

// HookClient is the host's handle on a hook.
type HookClient struct {
	Base pluginpb.PluginClient
	Hook pluginpb.HookClient
	// Done ends when the plugin process has exited (go-plugin's client context).
	Done context.Context
	// Broker is the connection's go-plugin broker: the host serves HostCallbacks on it.
	Broker *plugin.GRPCBroker
}

// BrokerUser is implemented by a HookServer that wants the plugin side's go-plugin broker (to dial the
// host's HostCallbacks service). HookPlugin.GRPCServer hands it over before serving.
type BrokerUser interface {
	SetBroker(*plugin.GRPCBroker)
}

// DriverPlugin is the go-plugin GRPCPlugin of a driver. Impl is set on the plugin side only.
type DriverPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl DriverServer
}

// GRPCServer registers the base and the driver service.
func (p *DriverPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterPluginServer(s, p.Impl)
	pluginpb.RegisterDriverServer(s, p.Impl)
	return nil
}

// GRPCClient returns a *DriverClient.
func (p *DriverPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &DriverClient{Base: pluginpb.NewPluginClient(c), Driver: pluginpb.NewDriverClient(c), Done: ctx}, nil
}

// HookPlugin is the go-plugin GRPCPlugin of a hook. Impl is set on the plugin side only.
type HookPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl HookServer
}

// GRPCServer registers the base and the hook service, and hands the broker to an Impl that is a
// BrokerUser.
func (p *HookPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	if u, ok := p.Impl.(BrokerUser); ok {
		u.SetBroker(b)
	}
	pluginpb.RegisterPluginServer(s, p.Impl)
	pluginpb.RegisterHookServer(s, p.Impl)
	return nil
}

// GRPCClient returns a *HookClient.
func (p *HookPlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &HookClient{Base: pluginpb.NewPluginClient(c), Hook: pluginpb.NewHookClient(c), Done: ctx, Broker: b}, nil
}

// ClientPlugins is the PluginSet the host offers: one entry per kind, dispensed by the kind's name.
func ClientPlugins() plugin.PluginSet {
	return plugin.PluginSet{
		KindDriver: &DriverPlugin{},
		KindHook:   &HookPlugin{},
	}
}

// Compile-time checks.
var (
	_ plugin.GRPCPlugin = (*DriverPlugin)(nil)
	_ plugin.GRPCPlugin = (*HookPlugin)(nil)
)
