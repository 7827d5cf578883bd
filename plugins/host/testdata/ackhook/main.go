// Command ackhook is a test hook that calls the node back from Deliver: it acknowledges the alarm and
// annotates it with the event's message as the note, and reports the outcome of both calls in its
// receipt's reference ("ack:<code> note:<code>"; "nohost" when the node offers no callbacks).
package main

import (
	"context"
	"errors"

	"google.golang.org/grpc/status"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

type ackHook struct{ host sdk.Host }

func (*ackHook) Info() sdk.Info                                   { return sdk.Info{Name: "ackhook", Version: "test"} }
func (*ackHook) ConfigSchema() []*pluginpb.ConfigField            { return nil }
func (*ackHook) Configure([]byte, string) []*pluginpb.ConfigError { return nil }
func (*ackHook) Health() (bool, string)                           { return true, "ok" }
func (h *ackHook) SetHost(x sdk.Host)                             { h.host = x }

func outcome(err error) string {
	if errors.Is(err, sdk.ErrNoHost) {
		return "nohost"
	}
	return status.Code(err).String()
}

func (h *ackHook) Deliver(ctx context.Context, ev *pluginpb.AlarmEvent) (*pluginpb.Receipt, error) {
	id := ev.GetAlarm().GetId()
	ack := h.host.Acknowledge(ctx, id, "ackbot", "auto")
	note := h.host.Annotate(ctx, id, "ackbot", ev.GetAlarm().GetMessage())
	return &pluginpb.Receipt{Delivered: true, Reference: "ack:" + outcome(ack) + " note:" + outcome(note)}, nil
}

func main() { sdk.ServeHook(&ackHook{}) }
