package host

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// CallbackSink is implemented by a Sink that takes callbacks from hooks: the dispatch side acknowledges
// or annotates an alarm through its hook. When the Sink implements it, the host serves HostCallbacks to
// every hook on the go-plugin broker (the id goes in ConfigureRequest.callback_broker_id); otherwise
// hooks get broker id 0 and their calls fail with the SDK's ErrNoHost.
type CallbackSink interface {
	// AlarmCallback acknowledges (ack) or annotates (!ack) an alarm for a hook; by and note come from the
	// far side. It returns once the change is committed, or why it was not: a *CallbackError tells the
	// hook what kind of failure it was; any other error is reported as Unavailable (call again).
	AlarmCallback(ctx context.Context, hook string, ack bool, alarmID, by, note string) (state string, seq uint32, err error)
}

// CallbackError is a refusal a hook should not simply retry.
type CallbackError struct {
	Code    codes.Code // codes.NotFound, codes.FailedPrecondition, codes.InvalidArgument, ...
	Message string
}

func (e *CallbackError) Error() string { return e.Message }

// maxCallbackText bounds by and note, in bytes.
const maxCallbackText = 1024

// callbackServer serves HostCallbacks for one hook process.
type callbackServer struct {
	pluginpb.UnimplementedHostCallbacksServer
	m    *Manager
	p    *managed
	sink CallbackSink
}

func (m *Manager) serveCallbacks(p *managed, cn *conn) uint32 {
	cs, ok := m.sink.(CallbackSink)
	if !ok || cn.broker == nil {
		return 0
	}
	id := cn.broker.NextId()
	srv := &callbackServer{m: m, p: p, sink: cs}
	go cn.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pluginpb.RegisterHostCallbacksServer(s, srv)
		return s
	})
	return id
}

func (s *callbackServer) call(ctx context.Context, ack bool, alarmID, by, note string) (string, uint32, error) {
	what := "annotate"
	if ack {
		what = "acknowledge"
	}
	switch {
	case strings.TrimSpace(alarmID) == "":
		return "", 0, status.Error(codes.InvalidArgument, "alarm_id is required")
	case len(by) > maxCallbackText || len(note) > maxCallbackText:
		return "", 0, status.Errorf(codes.InvalidArgument, "by and note are at most %d bytes", maxCallbackText)
	case !ack && strings.TrimSpace(note) == "":
		return "", 0, status.Error(codes.InvalidArgument, "note is required")
	}
	cctx, cancel := context.WithTimeout(ctx, s.m.opts.CallTimeout)
	defer cancel()
	st, seq, err := s.sink.AlarmCallback(cctx, s.p.spec.Name, ack, alarmID, by, note)
	if err != nil {
		s.p.log.Warn("callback refused", "call", what, "alarm", alarmID, "by", by, "error", err)
		var ce *CallbackError
		if errors.As(err, &ce) {
			return "", 0, status.Error(ce.Code, ce.Message)
		}
		return "", 0, status.Error(codes.Unavailable, err.Error())
	}
	s.p.log.Info("callback", "call", what, "alarm", alarmID, "by", by, "state", st, "seq", seq)
	return st, seq, nil
}

func (s *callbackServer) Acknowledge(ctx context.Context, r *pluginpb.AckRequest) (*pluginpb.AckResponse, error) {
	st, seq, err := s.call(ctx, true, r.GetAlarmId(), r.GetBy(), r.GetNote())
	if err != nil {
		return nil, err
	}
	return &pluginpb.AckResponse{State: st, Seq: seq}, nil
}

func (s *callbackServer) Annotate(ctx context.Context, r *pluginpb.AnnotateRequest) (*pluginpb.AnnotateResponse, error) {
	st, seq, err := s.call(ctx, false, r.GetAlarmId(), r.GetBy(), r.GetNote())
	if err != nil {
		return nil, err
	}
	return &pluginpb.AnnotateResponse{State: st, Seq: seq}, nil
}
