package shared

import (
	"context"
	"sort"
	"strings"
	"testing"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

type driverImpl struct {
	pluginpb.UnimplementedPluginServer
	pluginpb.UnimplementedDriverServer
}

type hookImpl struct {
	pluginpb.UnimplementedPluginServer
	pluginpb.UnimplementedHookServer
}

func services(t *testing.T, p plugin.GRPCPlugin) string {
	t.Helper()
	s := grpc.NewServer()
	defer s.Stop()
	if err := p.GRPCServer(nil, s); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range s.GetServiceInfo() {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func TestEveryKindServesTheBaseService(t *testing.T) {
	if got := services(t, &DriverPlugin{Impl: driverImpl{}}); got != "skjold.plugin.v1.Driver skjold.plugin.v1.Plugin" {
		t.Errorf("driver serves %q", got)
	}
	if got := services(t, &HookPlugin{Impl: hookImpl{}}); got != "skjold.plugin.v1.Hook skjold.plugin.v1.Plugin" {
		t.Errorf("hook serves %q", got)
	}
}

func TestClientPluginsAndHandshake(t *testing.T) {
	set := ClientPlugins()
	if len(set) != 2 || set[KindDriver] == nil || set[KindHook] == nil {
		t.Fatalf("plugin set %v", set)
	}
	c, err := set[KindHook].(plugin.GRPCPlugin).GRPCClient(context.Background(), nil, nil)
	if _, ok := c.(*HookClient); !ok || err != nil {
		t.Fatalf("hook client %T %v", c, err)
	}
	c, err = set[KindDriver].(plugin.GRPCPlugin).GRPCClient(context.Background(), nil, nil)
	if _, ok := c.(*DriverClient); !ok || err != nil {
		t.Fatalf("driver client %T %v", c, err)
	}
	if Handshake.ProtocolVersion != 1 || Handshake.MagicCookieKey != "SKJOLD_PLUGIN" || Handshake.MagicCookieValue == "" {
		t.Fatalf("handshake %+v", Handshake)
	}
}
