// Command envplugin is a test hook that reports its whole environment in its Health message, so a test
// can check that the host's environment does not reach plugins.
package main

import (
	"context"
	"os"
	"sort"
	"strings"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

type envHook struct{}

func (envHook) Info() sdk.Info                                   { return sdk.Info{Name: "env", Version: "test"} }
func (envHook) ConfigSchema() []*pluginpb.ConfigField            { return nil }
func (envHook) Configure([]byte, string) []*pluginpb.ConfigError { return nil }
func (envHook) Deliver(context.Context, *pluginpb.AlarmEvent) (*pluginpb.Receipt, error) {
	return &pluginpb.Receipt{Delivered: true, Reference: "env"}, nil
}

func (envHook) Health() (bool, string) {
	env := os.Environ()
	names := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	sort.Strings(names)
	return true, "env: " + strings.Join(names, ",")
}

func main() { sdk.ServeHook(envHook{}) }
