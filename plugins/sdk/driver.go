package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

// driverServer serves a Driver over gRPC.
type driverServer struct {
	*base
	pluginpb.UnimplementedDriverServer
	d    Driver
	log  hclog.Logger
	root context.Context // the process's lifetime: Run's context
	em   *emitter

	runOnce sync.Once
	runDone chan struct{} // closed when Run returned
	runErr  error         // set before runDone is closed
	started atomic.Bool
}

func newDriverServer(d Driver, root context.Context, log hclog.Logger) *driverServer {
	s := &driverServer{d: d, log: log, root: root, em: newEmitter(), runDone: make(chan struct{})}
	s.base = &base{
		kind: shared.KindDriver, info: d.Info, schema: d.ConfigSchema, conf: d.Configure,
		health: s.health,
		canConfigure: func() string {
			if s.started.Load() {
				return "the driver is already running; restart the plugin to change its configuration"
			}
			return ""
		},
	}
	return s
}

func (s *driverServer) health() (bool, string) {
	select {
	case <-s.runDone:
		return false, fmt.Sprintf("driver stopped: %v", s.runErr)
	default:
	}
	return s.d.Health()
}

func (s *driverServer) startRun() {
	s.runOnce.Do(func() {
		s.started.Store(true)
		go func() {
			err := s.d.Run(s.root, s.em)
			if err == nil {
				err = errors.New("Run returned")
			}
			if s.root.Err() == nil {
				s.log.Error("driver stopped", "error", err)
			}
			s.runErr = err
			close(s.runDone)
		}()
	})
}

// waitRun waits up to d for Run to return, if it was started.
func (s *driverServer) waitRun(d time.Duration) {
	if !s.started.Load() {
		return
	}
	select {
	case <-s.runDone:
	case <-time.After(d):
		s.log.Warn("driver did not stop in time", "waited", d)
	}
}

func (s *driverServer) runEnded() error {
	select {
	case <-s.runDone:
		return status.Errorf(codes.Aborted, "driver stopped: %v", s.runErr)
	default:
		return nil
	}
}

// Observations attaches the host's stream to the emitter and starts Run the first time.
func (s *driverServer) Observations(stream pluginpb.Driver_ObservationsServer) error {
	if !s.isConfigured() {
		return status.Error(codes.FailedPrecondition, "not configured: Configure must succeed before Observations")
	}
	if err := s.runEnded(); err != nil {
		return err
	}
	hs := newHostStream(stream, s.em)
	s.em.attach(hs)
	s.startRun()
	go func() {
		for {
			ack, err := stream.Recv()
			if err != nil {
				hs.end()
				return
			}
			if !hs.answer(ack) {
				s.log.Warn("ack for a batch nobody waits for", "batch", ack.GetId())
			}
		}
	}()
	select {
	case <-hs.done:
	case <-stream.Context().Done():
	case <-s.runDone:
	}
	hs.end()
	if err := s.runEnded(); err != nil {
		return err
	}
	return nil
}

func (s *driverServer) Command(ctx context.Context, cmd *pluginpb.DeviceCommand) (*pluginpb.CommandResult, error) {
	if !s.isConfigured() {
		return &pluginpb.CommandResult{Ok: false, Error: "not configured"}, nil
	}
	if err := s.d.Command(ctx, cmd); err != nil {
		return &pluginpb.CommandResult{Ok: false, Error: err.Error()}, nil
	}
	return &pluginpb.CommandResult{Ok: true}, nil
}

func (s *driverServer) Devices(context.Context, *pluginpb.DevicesRequest) (*pluginpb.DevicesResponse, error) {
	if !s.isConfigured() {
		return &pluginpb.DevicesResponse{}, nil
	}
	return &pluginpb.DevicesResponse{Devices: s.d.Devices()}, nil
}

// emitter implements Emitter over whichever host stream is attached.
type emitter struct {
	nextID atomic.Uint64

	mu       sync.Mutex
	cur      *hostStream
	attached chan struct{} // closed when a stream attaches; replaced when it detaches
}

func newEmitter() *emitter { return &emitter{attached: make(chan struct{})} }

func (e *emitter) attach(hs *hostStream) {
	e.mu.Lock()
	old := e.cur
	if old == nil {
		close(e.attached)
	}
	e.cur = hs
	e.mu.Unlock()
	if old != nil {
		old.end() // a newer stream replaces it; its waiters retry on the new one
	}
}

func (e *emitter) detach(hs *hostStream) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == hs {
		e.cur = nil
		e.attached = make(chan struct{})
	}
}

func (e *emitter) stream(ctx context.Context) (*hostStream, error) {
	for {
		e.mu.Lock()
		hs, wait := e.cur, e.attached
		e.mu.Unlock()
		if hs != nil {
			return hs, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (e *emitter) Emit(ctx context.Context, obs []*pluginpb.Observation) error {
	if len(obs) == 0 {
		return nil
	}
	hs, err := e.stream(ctx)
	if err != nil {
		return err
	}
	id := e.nextID.Add(1)
	ch := make(chan *pluginpb.ObservationAck, 1)
	if !hs.register(id, ch) {
		return fmt.Errorf("batch %d: %w", id, ErrStreamClosed)
	}
	defer hs.unregister(id)
	if err := hs.send(&pluginpb.ObservationBatch{Id: id, Observations: obs}); err != nil {
		return fmt.Errorf("batch %d: %w: %v", id, ErrStreamClosed, err)
	}
	result := func(a *pluginpb.ObservationAck) error {
		if a.GetAccepted() {
			return nil
		}
		return &RejectedError{Batch: id, Reason: a.GetError()}
	}
	select {
	case a := <-ch:
		return result(a)
	case <-hs.done:
		select { // an answer that raced with the end of the stream still counts
		case a := <-ch:
			return result(a)
		default:
		}
		return fmt.Errorf("batch %d: %w", id, ErrStreamClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hostStream is one Observations stream opened by the host.
type hostStream struct {
	srv pluginpb.Driver_ObservationsServer
	em  *emitter

	sendMu sync.Mutex // gRPC forbids concurrent Send; no Send after the handler returned
	ended  bool       // under sendMu

	pmu     sync.Mutex
	pending map[uint64]chan *pluginpb.ObservationAck

	done    chan struct{}
	endOnce sync.Once
}

func newHostStream(srv pluginpb.Driver_ObservationsServer, em *emitter) *hostStream {
	return &hostStream{srv: srv, em: em, pending: map[uint64]chan *pluginpb.ObservationAck{}, done: make(chan struct{})}
}

func (h *hostStream) register(id uint64, ch chan *pluginpb.ObservationAck) bool {
	h.pmu.Lock()
	defer h.pmu.Unlock()
	select {
	case <-h.done:
		return false
	default:
	}
	h.pending[id] = ch
	return true
}

func (h *hostStream) unregister(id uint64) {
	h.pmu.Lock()
	delete(h.pending, id)
	h.pmu.Unlock()
}

func (h *hostStream) answer(a *pluginpb.ObservationAck) bool {
	h.pmu.Lock()
	ch, ok := h.pending[a.GetId()]
	delete(h.pending, a.GetId())
	h.pmu.Unlock()
	if ok {
		ch <- a // buffered, one answer per id
	}
	return ok
}

func (h *hostStream) send(b *pluginpb.ObservationBatch) error {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	if h.ended {
		return errors.New("stream ended")
	}
	return h.srv.Send(b)
}

// end marks the stream finished: no more sends, every waiting Emit returns ErrStreamClosed, and new
// Emit calls wait for the next stream.
func (h *hostStream) end() {
	h.endOnce.Do(func() {
		h.em.detach(h)
		h.sendMu.Lock()
		h.ended = true
		h.sendMu.Unlock()
		close(h.done)
	})
}
