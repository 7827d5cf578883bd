package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

// shaError is a binary that does not match its pin: it is not started.
type shaError struct{ msg string }

func (e *shaError) Error() string { return e.msg }

// supervise runs p until ctx ends, restarting it with backoff.
func (m *Manager) supervise(ctx context.Context, p *managed) {
	backoff := m.opts.BackoffMin
	for launch := 0; ; launch++ {
		if launch > 0 {
			p.mu.Lock()
			p.restarts++
			p.mu.Unlock()
		}
		upSince, err := m.runOnce(ctx, p)
		if ctx.Err() != nil {
			return
		}
		m.report(p, false, err.Error())
		if !upSince.IsZero() && time.Since(upSince) >= m.opts.BackoffMax {
			backoff = m.opts.BackoffMin // it ran well for a while: this is a new failure, not a loop
		}
		wait := backoff
		var se *shaError
		if errors.As(err, &se) {
			wait = m.opts.BackoffMax
		}
		backoff = min(backoff*2, m.opts.BackoffMax)
		p.log.Debug("restarting plugin", "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// runOnce launches the plugin and watches it until it fails (the error says why) or ctx ends. upSince is
// when it was first healthy, zero if never.
func (m *Manager) runOnce(ctx context.Context, p *managed) (upSince time.Time, err error) {
	spec := p.spec
	got, err := FileSHA256(spec.Path)
	if err != nil {
		return time.Time{}, fmt.Errorf("binary: %w", err)
	}
	if got != spec.SHA256 {
		return time.Time{}, &shaError{fmt.Sprintf("sha256 mismatch: expected %s got %s (%s not started)", spec.SHA256, got, spec.Path)}
	}

	cn, err := m.launch(p)
	hung := false // the process stopped answering: no point asking it to stop
	if cn != nil {
		defer func() { m.shutdown(p, cn, hung) }() // last: after the pump ended and the conn is withdrawn
	}
	defer func() { // report the failure before the (possibly slow) shutdown
		if err != nil && ctx.Err() == nil {
			m.report(p, false, err.Error())
		}
	}()
	if err != nil {
		return time.Time{}, m.exitReason(cn, err)
	}
	p.mu.Lock()
	p.pid = cn.cmd.Process.Pid
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.conn, p.up, p.pid = nil, false, 0
		p.mu.Unlock()
	}()

	if err := m.handshake(ctx, p, cn); err != nil {
		return time.Time{}, m.exitReason(cn, err)
	}
	p.mu.Lock()
	p.conn = cn
	p.mu.Unlock()

	runCtx, cancel := context.WithCancel(ctx)
	fail := make(chan error, 1)
	pumpDone := make(chan struct{})
	defer func() {
		cancel()
		<-pumpDone
	}()
	if spec.Kind == KindHook {
		close(pumpDone)
		m.reassert(runCtx, p, cn)
	} else {
		go func() {
			defer close(pumpDone)
			m.pumpLoop(runCtx, p, cn, fail)
		}()
	}

	checkHealth := func() error {
		hctx, hcancel := context.WithTimeout(runCtx, m.opts.CallTimeout)
		defer hcancel()
		h, err := cn.base.Health(hctx, &pluginpb.HealthRequest{})
		if err != nil {
			if runCtx.Err() != nil {
				return nil
			}
			err = m.exitReason(cn, fmt.Errorf("health: %w", err))
			hung = strings.HasPrefix(err.Error(), "health: ")
			return err
		}
		p.mu.Lock()
		p.health = h.GetMessage()
		p.mu.Unlock()
		if h.GetHealthy() {
			if upSince.IsZero() {
				upSince = time.Now()
			}
			m.report(p, true, "")
		} else {
			m.report(p, false, unhealthyPrefix+h.GetMessage())
		}
		return nil
	}
	if err := checkHealth(); err != nil {
		return upSince, err
	}
	tick := time.NewTicker(m.opts.HealthInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return upSince, ctx.Err()
		case <-cn.done.Done():
			return upSince, fmt.Errorf("exited: %s", exitStatus(cn.cmd))
		case err := <-fail:
			return upSince, m.exitReason(cn, err)
		case <-tick.C:
			if err := checkHealth(); err != nil {
				return upSince, err
			}
		}
	}
}

// exitReason prefers "exited: <status>" over the error of a call that failed because the process died.
func (m *Manager) exitReason(cn *conn, err error) error {
	var se *shaError
	if cn == nil || cn.done == nil || errors.As(err, &se) {
		return err
	}
	select {
	case <-cn.done.Done():
		return fmt.Errorf("exited: %s", exitStatus(cn.cmd))
	case <-time.After(50 * time.Millisecond):
		// A call failed while the process lives (or has not been reaped yet): the call's error it is.
		return err
	}
}

func exitStatus(cmd *exec.Cmd) string {
	if cmd.ProcessState == nil {
		return "process ended"
	}
	return cmd.ProcessState.String()
}

// launch starts the process and connects to it. A non-nil conn must be shut down even with an error.
func (m *Manager) launch(p *managed) (*conn, error) {
	spec := p.spec
	cmd := exec.Command(spec.Path)
	cmd.Env = []string{} // the plugin sees only what go-plugin adds for the handshake
	out := p.log.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true})
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		Plugins:          shared.ClientPlugins(),
		Cmd:              cmd,
		SecureConfig:     &goplugin.SecureConfig{Checksum: p.checksum, Hash: sha256.New()},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		Logger:           p.log,
		SyncStdout:       out,
		SyncStderr:       out,
		StartTimeout:     m.opts.StartTimeout,
	})
	cn := &conn{client: client, cmd: cmd}
	rpc, err := client.Client()
	if err != nil {
		if errors.Is(err, goplugin.ErrChecksumsDoNotMatch) {
			return cn, &shaError{fmt.Sprintf("sha256 mismatch: expected %s; %s changed while starting", spec.SHA256, spec.Path)}
		}
		return cn, fmt.Errorf("start: %w", err)
	}
	raw, err := rpc.Dispense(string(spec.Kind))
	if err != nil {
		return cn, fmt.Errorf("start: %w", err)
	}
	switch c := raw.(type) {
	case *shared.DriverClient:
		cn.base, cn.driver, cn.done = c.Base, c.Driver, c.Done
	case *shared.HookClient:
		cn.base, cn.hook, cn.done, cn.broker = c.Base, c.Hook, c.Done, c.Broker
	default:
		return cn, fmt.Errorf("start: unexpected client %T", raw)
	}
	return cn, nil
}

// handshake checks Info and configures the plugin.
func (m *Manager) handshake(ctx context.Context, p *managed, cn *conn) error {
	cctx, cancel := context.WithTimeout(ctx, m.opts.CallTimeout)
	defer cancel()
	info, err := cn.base.Info(cctx, &pluginpb.InfoRequest{})
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	if Kind(info.GetKind()) != p.spec.Kind {
		return fmt.Errorf("info: the plugin is a %q, configured as a %s", info.GetKind(), p.spec.Kind)
	}
	if info.GetProtocolVersion() != shared.ProtocolVersion {
		return fmt.Errorf("info: the plugin speaks protocol version %d, this node speaks %d", info.GetProtocolVersion(), shared.ProtocolVersion)
	}
	p.log.Info("plugin started", "plugin", info.GetName(), "version", info.GetVersion(), "pid", cn.cmd.Process.Pid)
	req := &pluginpb.ConfigureRequest{ConfigJson: p.spec.Config, Node: m.opts.Node}
	if p.spec.Kind == KindHook {
		req.CallbackBrokerId = m.serveCallbacks(p, cn) // ends with the process (the broker closes)
	}
	r, err := cn.base.Configure(cctx, req)
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	if errs := r.GetErrors(); len(errs) > 0 {
		msgs := make([]string, 0, len(errs))
		for _, e := range errs {
			if e.GetField() == "" {
				msgs = append(msgs, e.GetMessage())
			} else {
				msgs = append(msgs, e.GetField()+": "+e.GetMessage())
			}
		}
		return fmt.Errorf("configure: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// shutdown ends the process: go-plugin's Kill asks it to stop and kills it after a grace period; a
// process that does not even answer that is killed after StopGrace, and one that stopped answering health
// checks (hung) is killed at once.
func (m *Manager) shutdown(p *managed, cn *conn, hung bool) {
	if hung && cn.cmd.Process != nil {
		p.log.Warn("killing the unresponsive plugin")
		_ = cn.cmd.Process.Kill()
	}
	done := make(chan struct{})
	go func() {
		cn.client.Kill()
		close(done)
	}()
	t := time.NewTimer(m.opts.StopGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		p.log.Warn("plugin did not stop in time; killing it")
		if cn.cmd.Process != nil {
			_ = cn.cmd.Process.Kill()
		}
		<-done
	}
}

// reassert delivers the last change again to a hook that was just (re)started.
func (m *Manager) reassert(ctx context.Context, p *managed, cn *conn) {
	p.deliverMu.Lock()
	defer p.deliverMu.Unlock()
	if p.lastChange == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, m.opts.CallTimeout)
	defer cancel()
	ev := AlarmEvent(*p.lastChange)
	r, err := cn.hook.Deliver(cctx, ev)
	switch {
	case err != nil:
		p.log.Warn("re-delivering the last change after a restart failed", "key", ev.GetIdempotencyKey(), "error", err)
	case !r.GetDelivered():
		p.log.Warn("re-delivering the last change after a restart failed", "key", ev.GetIdempotencyKey(), "error", r.GetError())
	default:
		p.log.Info("last change re-delivered after a restart", "key", ev.GetIdempotencyKey())
	}
}

// pumpLoop keeps an observation stream open to a driver. A stream that breaks while the process lives is
// opened again; a driver that stopped (its Run ended) is a failure of the plugin.
func (m *Manager) pumpLoop(ctx context.Context, p *managed, cn *conn, fail chan<- error) {
	for {
		err := m.pump(ctx, p, cn)
		if ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.Aborted, codes.FailedPrecondition, codes.Unimplemented:
			fail <- fmt.Errorf("observations: %w", err)
			return
		}
		p.log.Warn("observation stream ended; opening it again", "error", err)
		t := time.NewTimer(m.opts.BackoffMin)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// pump reads batches, hands them to the sink and answers each with an ack.
func (m *Manager) pump(ctx context.Context, p *managed, cn *conn) error {
	stream, err := cn.driver.Observations(ctx)
	if err != nil {
		return err
	}
	for {
		b, err := stream.Recv()
		if err != nil {
			return err
		}
		ack := &pluginpb.ObservationAck{Id: b.GetId()}
		obs, err := ConvertBatch(b, p.spec.Name, m.opts.Node)
		if err == nil && len(obs) > 0 {
			err = m.sink.Observations(ctx, p.spec.Name, obs)
		}
		if ctx.Err() != nil {
			return ctx.Err() // stopping: the driver sends it again to whoever takes over
		}
		if err != nil {
			ack.Error = err.Error()
			p.log.Warn("observation batch rejected", "batch", b.GetId(), "error", err)
		} else {
			ack.Accepted = true
		}
		if err := stream.Send(ack); err != nil {
			return err
		}
	}
}
