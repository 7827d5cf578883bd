// Command beacon is the example driver of plugins/sdk/example_test.go and docs/vendor-guide.md, built
// as a plugin so that the conformance kit can be seen to pass it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

// beacon is a complete driver: one fixed unit that reports every ten seconds.
type beacon struct{ device string }

var reports = sdk.NewCounter("beacon_reports_total", "Reports by result.", "result")

func (b *beacon) Info() sdk.Info { return sdk.Info{Name: "beacon", Version: "1.0"} }
func (b *beacon) ConfigSchema() []*pluginpb.ConfigField {
	return []*pluginpb.ConfigField{{Name: "device", Type: "string", Required: true, Description: "the unit's id"}}
}
func (b *beacon) Configure(cfg []byte, node string) []*pluginpb.ConfigError {
	var c map[string]any
	_ = json.Unmarshal(cfg, &c) // the SDK has checked that it is a JSON object
	for k := range c {
		if k != "device" {
			return []*pluginpb.ConfigError{sdk.ConfigErr(k, "unknown attribute (known: device)")}
		}
	}
	if dev, ok := c["device"].(string); ok && dev != "" {
		b.device = dev
		return nil
	}
	return []*pluginpb.ConfigError{sdk.ConfigErr("device", "is required: a non-empty string")}
}
func (b *beacon) Health() (bool, string) { return true, "ok" }
func (b *beacon) Devices() []string      { return []string{b.device} }
func (b *beacon) Command(ctx context.Context, c *pluginpb.DeviceCommand) error {
	if c.GetKind() != "vibrate" {
		return fmt.Errorf("unknown command kind %q (known: vibrate)", c.GetKind())
	}
	return nil // a real driver sends it to the device here
}
func (b *beacon) Run(ctx context.Context, emit sdk.Emitter) error {
	for t := time.NewTicker(10 * time.Second); ; {
		obs := []*pluginpb.Observation{{Device: b.device, Time: sdk.Timestamp(time.Now()), HasFix: true, Lat: 59.91, Lon: 10.75, AccuracyM: 5}}
		if err := emit.Emit(ctx, obs); err != nil && ctx.Err() == nil {
			reports.Inc("not_committed") // a real driver keeps it and sends it again
		} else if err == nil {
			reports.Inc("committed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func main() {
	sdk.ServeDriver(&beacon{})
}
