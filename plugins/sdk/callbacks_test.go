package sdk

import (
	"context"
	"errors"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

// hostHook is a hook that keeps the Host the SDK gives it.
type hostHook struct {
	testHook
	host Host
}

func (h *hostHook) SetHost(x Host) { h.host = x }

// fakeCallbacks is the node's side of HostCallbacks.
type fakeCallbacks struct {
	pluginpb.UnimplementedHostCallbacksServer
	got chan string
}

func (f *fakeCallbacks) Acknowledge(_ context.Context, r *pluginpb.AckRequest) (*pluginpb.AckResponse, error) {
	if r.GetAlarmId() == "gone" {
		return nil, status.Error(codes.NotFound, "alarm \"gone\" does not exist")
	}
	f.got <- "ack " + r.GetAlarmId() + " " + r.GetBy() + " " + r.GetNote()
	return &pluginpb.AckResponse{State: "acknowledged", Seq: 2}, nil
}

func (f *fakeCallbacks) Annotate(_ context.Context, r *pluginpb.AnnotateRequest) (*pluginpb.AnnotateResponse, error) {
	f.got <- "note " + r.GetAlarmId() + " " + r.GetBy() + " " + r.GetNote()
	return &pluginpb.AnnotateResponse{State: "raised", Seq: 3}, nil
}

// A hook's Host reaches the host's HostCallbacks through the go-plugin broker id given at Configure.
func TestHookCallsTheHostThroughTheBroker(t *testing.T) {
	h := &hostHook{}
	srv := newHookServer(h, hclog.NewNullLogger())
	if h.host == nil {
		t.Fatal("SetHost was not called")
	}
	if err := h.host.Acknowledge(context.Background(), "a1", "cad", ""); !errors.Is(err, ErrNoHost) {
		t.Fatalf("before Configure: %v", err)
	}
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{shared.KindHook: &shared.HookPlugin{Impl: srv}})
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(shared.KindHook)
	if err != nil {
		t.Fatal(err)
	}
	hc := raw.(*shared.HookClient)
	fake := &fakeCallbacks{got: make(chan string, 4)}
	id := hc.Broker.NextId()
	go hc.Broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pluginpb.RegisterHostCallbacksServer(s, fake)
		return s
	})
	if r, err := hc.Base.Configure(context.Background(), &pluginpb.ConfigureRequest{CallbackBrokerId: id}); err != nil || len(r.GetErrors()) > 0 {
		t.Fatal(r, err)
	}
	if err := h.host.Acknowledge(context.Background(), "a1", "cad", "taken"); err != nil {
		t.Fatal(err)
	}
	if got := <-fake.got; got != "ack a1 cad taken" {
		t.Fatalf("host got %q", got)
	}
	if err := h.host.Annotate(context.Background(), "a1", "cad", "on site"); err != nil {
		t.Fatal(err)
	}
	if got := <-fake.got; got != "note a1 cad on site" {
		t.Fatalf("host got %q", got)
	}
	if err := h.host.Acknowledge(context.Background(), "gone", "cad", ""); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown alarm: %v", err)
	}
	// Configured again without callbacks (an older node): calls fail with ErrNoHost.
	if _, err := hc.Base.Configure(context.Background(), &pluginpb.ConfigureRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := h.host.Annotate(context.Background(), "a1", "cad", "x"); !errors.Is(err, ErrNoHost) {
		t.Fatalf("without callbacks: %v", err)
	}
}
