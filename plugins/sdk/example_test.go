package sdk_test

import (
	"context"
	"time"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

// beacon is a complete driver: one fixed unit that reports every ten seconds.
type beacon struct{ device string }

func (b *beacon) Info() sdk.Info { return sdk.Info{Name: "beacon", Version: "1.0"} }
func (b *beacon) ConfigSchema() []*pluginpb.ConfigField {
	return []*pluginpb.ConfigField{{Name: "device", Type: "string", Required: true}}
}
func (b *beacon) Configure(cfg []byte, node string) []*pluginpb.ConfigError {
	b.device = "unit-1" // a real driver parses cfg and names every bad field
	return nil
}
func (b *beacon) Health() (bool, string) { return true, "ok" }
func (b *beacon) Devices() []string      { return []string{b.device} }
func (b *beacon) Command(ctx context.Context, c *pluginpb.DeviceCommand) error {
	sdk.Logger().Info("command", "kind", c.GetKind())
	return nil
}
func (b *beacon) Run(ctx context.Context, emit sdk.Emitter) error {
	for t := time.NewTicker(10 * time.Second); ; {
		obs := []*pluginpb.Observation{{Device: b.device, Time: sdk.Timestamp(time.Now()), HasFix: true, Lat: 59.91, Lon: 10.75, AccuracyM: 5}}
		if err := emit.Emit(ctx, obs); err != nil && ctx.Err() == nil {
			sdk.Logger().Warn("not committed; a real driver keeps it and sends it again", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// A driver plugin's whole main.
func Example_driver() {
	sdk.ServeDriver(&beacon{})
}
