package sdk

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

// testDriver emits what the test puts on its input channel, retrying until the host commits or rejects
// it, and reports each outcome.
type testDriver struct {
	in       chan []*pluginpb.Observation
	outcomes chan error
	runs     atomic.Int32
	stopRun  chan error
	commands chan *pluginpb.DeviceCommand
	emitter  chan Emitter // the Emitter Run was given
}

func newTestDriver() *testDriver {
	return &testDriver{
		in: make(chan []*pluginpb.Observation), outcomes: make(chan error, 16),
		stopRun: make(chan error), commands: make(chan *pluginpb.DeviceCommand, 4),
		emitter: make(chan Emitter, 1),
	}
}

func (d *testDriver) Info() Info                            { return Info{Name: "test", Version: "9"} }
func (d *testDriver) ConfigSchema() []*pluginpb.ConfigField { return nil }
func (d *testDriver) Configure(cfg []byte, node string) []*pluginpb.ConfigError {
	if strings.Contains(string(cfg), "bad") {
		return []*pluginpb.ConfigError{ConfigErr("bad", "is bad on node %s", node)}
	}
	return nil
}
func (d *testDriver) Health() (bool, string) { return true, "fine" }
func (d *testDriver) Devices() []string      { return []string{"d1"} }
func (d *testDriver) Command(_ context.Context, c *pluginpb.DeviceCommand) error {
	if c.GetKind() != "vibrate" {
		return errors.New("unknown command " + c.GetKind())
	}
	d.commands <- c
	return nil
}

func (d *testDriver) Run(ctx context.Context, emit Emitter) error {
	d.runs.Add(1)
	d.emitter <- emit
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-d.stopRun:
			return err
		case obs := <-d.in:
			for {
				err := emit.Emit(ctx, obs)
				if errors.Is(err, ErrStreamClosed) {
					d.outcomes <- err
					continue // not acknowledged: send the same observations again
				}
				d.outcomes <- err
				break
			}
		}
	}
}

type harness struct {
	drv    *testDriver
	base   pluginpb.PluginClient
	driver pluginpb.DriverClient
	cancel context.CancelFunc
}

func startDriver(t *testing.T) *harness {
	t.Helper()
	drv := newTestDriver()
	root, cancel := context.WithCancel(context.Background())
	srv := newDriverServer(drv, root, hclog.NewNullLogger())
	gs := grpc.NewServer()
	if err := (&shared.DriverPlugin{Impl: srv}).GRPCServer(nil, gs); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		conn.Close()
		gs.Stop()
		srv.waitRun(time.Second)
	})
	return &harness{drv: drv, base: pluginpb.NewPluginClient(conn), driver: pluginpb.NewDriverClient(conn), cancel: cancel}
}

func (h *harness) configure(t *testing.T) {
	t.Helper()
	r, err := h.base.Configure(context.Background(), &pluginpb.ConfigureRequest{ConfigJson: []byte(`{}`), Node: "n1"})
	if err != nil || len(r.GetErrors()) > 0 {
		t.Fatalf("configure: %v %v", r, err)
	}
}

func obs(dev string) []*pluginpb.Observation {
	return []*pluginpb.Observation{{Device: dev, Time: Timestamp(time.Unix(1700000000, 0))}}
}

func recvBatch(t *testing.T, s pluginpb.Driver_ObservationsClient) *pluginpb.ObservationBatch {
	t.Helper()
	b, err := s.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return b
}

func outcome(t *testing.T, d *testDriver) error {
	t.Helper()
	select {
	case err := <-d.outcomes:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no Emit outcome")
		return nil
	}
}

func TestInfoAndConfigure(t *testing.T) {
	h := startDriver(t)
	info, err := h.base.Info(context.Background(), &pluginpb.InfoRequest{})
	if err != nil || info.GetKind() != "driver" || info.GetName() != "test" || info.GetProtocolVersion() != 1 || info.GetVersion() != "9" {
		t.Fatalf("info %v %v", info, err)
	}
	hr, _ := h.base.Health(context.Background(), &pluginpb.HealthRequest{})
	if hr.GetHealthy() || hr.GetMessage() != "not configured" {
		t.Fatalf("health before configure: %v", hr)
	}
	for _, c := range []string{`[]`, `not json`, `"x"`} {
		r, err := h.base.Configure(context.Background(), &pluginpb.ConfigureRequest{ConfigJson: []byte(c)})
		if err != nil || len(r.GetErrors()) != 1 || !strings.Contains(r.GetErrors()[0].GetMessage(), "JSON object") {
			t.Fatalf("config %s: %v %v", c, r, err)
		}
	}
	r, _ := h.base.Configure(context.Background(), &pluginpb.ConfigureRequest{ConfigJson: []byte(`{"x":"bad"}`), Node: "n7"})
	if len(r.GetErrors()) != 1 || r.GetErrors()[0].GetField() != "bad" || !strings.Contains(r.GetErrors()[0].GetMessage(), "n7") {
		t.Fatalf("driver's config errors not passed through: %v", r)
	}
	// Empty config bytes mean an empty block.
	r, _ = h.base.Configure(context.Background(), &pluginpb.ConfigureRequest{})
	if len(r.GetErrors()) != 0 {
		t.Fatalf("empty config: %v", r)
	}
	hr, _ = h.base.Health(context.Background(), &pluginpb.HealthRequest{})
	if !hr.GetHealthy() || hr.GetMessage() != "fine" {
		t.Fatalf("health: %v", hr)
	}
}

func TestObservationsNeedConfigure(t *testing.T) {
	h := startDriver(t)
	s, err := h.driver.Observations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("err = %v, want FailedPrecondition", err)
	}
	if h.drv.runs.Load() != 0 {
		t.Fatal("Run started before Configure")
	}
	r, _ := h.driver.Command(context.Background(), &pluginpb.DeviceCommand{Kind: "vibrate"})
	if r.GetOk() {
		t.Fatal("command accepted before Configure")
	}
}

func TestAckCommitsAndRejectionReachesDriver(t *testing.T) {
	h := startDriver(t)
	h.configure(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := h.driver.Observations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.drv.in <- obs("d1")
	b1 := recvBatch(t, s)
	if len(b1.GetObservations()) != 1 || b1.GetObservations()[0].GetDevice() != "d1" {
		t.Fatalf("batch %v", b1)
	}
	select {
	case err := <-h.drv.outcomes:
		t.Fatalf("Emit returned %v before the ack", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.Send(&pluginpb.ObservationAck{Id: b1.GetId(), Accepted: true}); err != nil {
		t.Fatal(err)
	}
	if err := outcome(t, h.drv); err != nil {
		t.Fatalf("accepted batch: Emit = %v", err)
	}

	h.drv.in <- obs("d2")
	b2 := recvBatch(t, s)
	if b2.GetId() <= b1.GetId() {
		t.Fatalf("batch ids not increasing: %d then %d", b1.GetId(), b2.GetId())
	}
	_ = s.Send(&pluginpb.ObservationAck{Id: b2.GetId(), Accepted: false, Error: "observations[0].lat: out of range"})
	err = outcome(t, h.drv)
	var rej *RejectedError
	if !errors.As(err, &rej) || rej.Batch != b2.GetId() || !strings.Contains(rej.Reason, "observations[0].lat") {
		t.Fatalf("rejected batch: Emit = %v", err)
	}
}

func TestConcurrentEmitsGetTheirOwnAcks(t *testing.T) {
	h := startDriver(t)
	h.configure(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := h.driver.Observations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Make sure the emitter has the stream before calling Emit directly.
	h.drv.in <- obs("warm")
	w := recvBatch(t, s)
	_ = s.Send(&pluginpb.ObservationAck{Id: w.GetId(), Accepted: true})
	if err := outcome(t, h.drv); err != nil {
		t.Fatal(err)
	}

	srvEm := <-h.drv.emitter
	var wg sync.WaitGroup
	results := map[string]error{}
	var mu sync.Mutex
	for _, dev := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := srvEm.Emit(ctx, obs(dev))
			mu.Lock()
			results[dev] = err
			mu.Unlock()
		}()
	}
	x, y := recvBatch(t, s), recvBatch(t, s)
	byDev := map[string]uint64{x.GetObservations()[0].GetDevice(): x.GetId(), y.GetObservations()[0].GetDevice(): y.GetId()}
	// Answer in reverse order: b rejected, then a accepted.
	_ = s.Send(&pluginpb.ObservationAck{Id: byDev["b"], Accepted: false, Error: "no quorum"})
	_ = s.Send(&pluginpb.ObservationAck{Id: byDev["a"], Accepted: true})
	wg.Wait()
	if results["a"] != nil {
		t.Fatalf("a: %v", results["a"])
	}
	var rej *RejectedError
	if !errors.As(results["b"], &rej) || rej.Reason != "no quorum" {
		t.Fatalf("b: %v", results["b"])
	}
}

func TestStreamLossMakesEmitRetryOnTheNextStream(t *testing.T) {
	h := startDriver(t)
	h.configure(t)
	ctx1, cancel1 := context.WithCancel(context.Background())
	s1, err := h.driver.Observations(ctx1)
	if err != nil {
		t.Fatal(err)
	}
	h.drv.in <- obs("lost")
	b1 := recvBatch(t, s1)
	cancel1() // the host goes away before acknowledging
	if err := outcome(t, h.drv); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Emit after stream loss = %v, want ErrStreamClosed", err)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	s2, err := h.driver.Observations(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	b2 := recvBatch(t, s2)
	if b2.GetObservations()[0].GetDevice() != "lost" || b2.GetId() <= b1.GetId() {
		t.Fatalf("resent batch %v after %v", b2, b1)
	}
	_ = s2.Send(&pluginpb.ObservationAck{Id: b2.GetId(), Accepted: true})
	if err := outcome(t, h.drv); err != nil {
		t.Fatalf("resent batch: %v", err)
	}
	if n := h.drv.runs.Load(); n != 1 {
		t.Fatalf("Run started %d times, want once", n)
	}
}

func TestNewStreamReplacesOld(t *testing.T) {
	h := startDriver(t)
	h.configure(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s1, _ := h.driver.Observations(ctx)
	h.drv.in <- obs("x")
	recvBatch(t, s1)
	// A second stream while the first is open: the first ends, the pending batch goes to the second.
	s2, _ := h.driver.Observations(ctx)
	if err := outcome(t, h.drv); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Emit = %v", err)
	}
	b := recvBatch(t, s2)
	_ = s2.Send(&pluginpb.ObservationAck{Id: b.GetId(), Accepted: true})
	if err := outcome(t, h.drv); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Recv(); err == nil {
		t.Fatal("the replaced stream is still delivering")
	}
}

func TestRunEndingMakesDriverUnhealthy(t *testing.T) {
	h := startDriver(t)
	h.configure(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _ := h.driver.Observations(ctx)
	h.drv.stopRun <- errors.New("modem vanished")
	if _, err := s.Recv(); status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "modem vanished") {
		t.Fatalf("stream error = %v", err)
	}
	hr, _ := h.base.Health(context.Background(), &pluginpb.HealthRequest{})
	if hr.GetHealthy() || !strings.Contains(hr.GetMessage(), "modem vanished") {
		t.Fatalf("health = %v", hr)
	}
	r, _ := h.base.Configure(context.Background(), &pluginpb.ConfigureRequest{ConfigJson: []byte("{}")})
	if len(r.GetErrors()) == 0 {
		t.Fatal("reconfiguring a started driver was accepted")
	}
}

func TestCommandAndDevices(t *testing.T) {
	h := startDriver(t)
	h.configure(t)
	r, err := h.driver.Command(context.Background(), &pluginpb.DeviceCommand{Id: "c1", Device: "d1", Kind: "vibrate"})
	if err != nil || !r.GetOk() {
		t.Fatalf("%v %v", r, err)
	}
	if c := <-h.drv.commands; c.GetId() != "c1" {
		t.Fatalf("driver got %v", c)
	}
	r, _ = h.driver.Command(context.Background(), &pluginpb.DeviceCommand{Kind: "selfdestruct"})
	if r.GetOk() || !strings.Contains(r.GetError(), "unknown command selfdestruct") {
		t.Fatalf("%v", r)
	}
	d, _ := h.driver.Devices(context.Background(), &pluginpb.DevicesRequest{})
	if len(d.GetDevices()) != 1 || d.GetDevices()[0] != "d1" {
		t.Fatalf("%v", d)
	}
}

type testHook struct{ fail bool }

func (testHook) Info() Info                                       { return Info{Name: "th"} }
func (testHook) ConfigSchema() []*pluginpb.ConfigField            { return nil }
func (testHook) Configure([]byte, string) []*pluginpb.ConfigError { return nil }
func (testHook) Health() (bool, string)                           { return true, "" }
func (h testHook) Deliver(_ context.Context, ev *pluginpb.AlarmEvent) (*pluginpb.Receipt, error) {
	if h.fail {
		return &pluginpb.Receipt{Reference: "r-" + ev.GetIdempotencyKey()}, errors.New("cad unreachable")
	}
	return nil, nil
}

func TestHookDeliver(t *testing.T) {
	for _, fail := range []bool{false, true} {
		s := newHookServer(testHook{fail: fail}, hclog.NewNullLogger())
		r, _ := s.Deliver(context.Background(), &pluginpb.AlarmEvent{IdempotencyKey: "a:1"})
		if r.GetDelivered() || r.GetError() != "not configured" {
			t.Fatalf("before configure: %v", r)
		}
		if cr, _ := s.Configure(context.Background(), &pluginpb.ConfigureRequest{}); len(cr.GetErrors()) > 0 {
			t.Fatal(cr)
		}
		info, _ := s.Info(context.Background(), &pluginpb.InfoRequest{})
		if info.GetKind() != "hook" {
			t.Fatalf("kind %q", info.GetKind())
		}
		r, _ = s.Deliver(context.Background(), &pluginpb.AlarmEvent{IdempotencyKey: "a:1"})
		if fail && (r.GetDelivered() || r.GetError() != "cad unreachable" || r.GetReference() != "r-a:1") {
			t.Fatalf("failing hook: %v", r)
		}
		if !fail && !r.GetDelivered() {
			t.Fatalf("hook: %v", r)
		}
	}
}
