package host_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/plugins/host"
)

// callbackSink is a sink that also takes hook callbacks.
type callbackSink struct {
	*sink
	mu    sync.Mutex
	calls []string
}

func (s *callbackSink) AlarmCallback(_ context.Context, hook string, ack bool, alarmID, by, note string) (string, uint32, error) {
	s.mu.Lock()
	s.calls = append(s.calls, fmt.Sprintf("%s ack=%v %s %s %s", hook, ack, alarmID, by, note))
	s.mu.Unlock()
	if alarmID == "gone" {
		return "", 0, &host.CallbackError{Code: codes.NotFound, Message: "alarm \"gone\" does not exist"}
	}
	if alarmID == "busy" {
		return "", 0, fmt.Errorf("not committed: no leader")
	}
	return "acknowledged", 2, nil
}

func buildAckHook(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	path := filepath.Join(t.TempDir(), "ackhook")
	if out, err := exec.Command(goBin, "build", "-o", path, "./testdata/ackhook").CombinedOutput(); err != nil {
		t.Fatalf("go build ackhook: %v\n%s", err, out)
	}
	return path
}

func alarmChange(id, message string) alarm.Change {
	ch := change(1, 1)
	ch.Alarm.ID, ch.Alarm.Message = id, message
	return ch
}

func startSink(t *testing.T, s host.Sink, specs ...host.Spec) *host.Manager {
	t.Helper()
	m, err := host.New(specs, s, host.Options{
		Node:           "node-a",
		Logger:         hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: testWriter{t}}),
		BackoffMin:     10 * time.Millisecond,
		BackoffMax:     200 * time.Millisecond,
		HealthInterval: 50 * time.Millisecond,
		CallTimeout:    5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	t.Cleanup(m.Stop)
	return m
}

func deliverRef(t *testing.T, m *host.Manager, hook string, ch alarm.Change) string {
	t.Helper()
	r, err := m.Deliver(context.Background(), hook, ch)
	if err != nil || !r.GetDelivered() {
		t.Fatalf("deliver %s: %v %v", ch.Alarm.ID, r, err)
	}
	return r.GetReference()
}

// A hook reaches the Sink's AlarmCallback through the go-plugin broker; the host maps the Sink's errors
// to gRPC codes and checks the arguments. It works again after the hook restarts.
func TestHookCallbacksReachTheSink(t *testing.T) {
	bin := buildAckHook(t)
	s := &callbackSink{sink: newSink()}
	m := startSink(t, s, spec(t, "dispatch", host.KindHook, bin, map[string]any{}))
	s.waitFor(t, "the hook up", isUp(m, "dispatch"))

	if ref := deliverRef(t, m, "dispatch", alarmChange("alm-1", "patrol 12")); ref != "ack:OK note:OK" {
		t.Fatalf("reference %q", ref)
	}
	s.mu.Lock()
	got := strings.Join(s.calls, "\n")
	s.calls = nil
	s.mu.Unlock()
	if got != "dispatch ack=true alm-1 ackbot auto\ndispatch ack=false alm-1 ackbot patrol 12" {
		t.Fatalf("sink got:\n%s", got)
	}
	// The Sink's refusal keeps its code; any other error is Unavailable; an annotation needs a note (the
	// host refuses it without asking the Sink).
	if ref := deliverRef(t, m, "dispatch", alarmChange("gone", "x")); ref != "ack:NotFound note:NotFound" {
		t.Fatalf("reference %q", ref)
	}
	if ref := deliverRef(t, m, "dispatch", alarmChange("busy", "")); ref != "ack:Unavailable note:InvalidArgument" {
		t.Fatalf("reference %q", ref)
	}

	// After a restart the new process gets a new broker id and calls back again.
	pid := status(m, "dispatch").PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "a new process", func() bool { st := status(m, "dispatch"); return st.Up && st.PID != 0 && st.PID != pid })
	if ref := deliverRef(t, m, "dispatch", alarmChange("alm-2", "again")); ref != "ack:OK note:OK" {
		t.Fatalf("after restart: reference %q", ref)
	}
}

// A Sink without AlarmCallback offers no callbacks: the hook's calls fail with the SDK's ErrNoHost.
func TestHookCallbacksWithoutCallbackSink(t *testing.T) {
	bin := buildAckHook(t)
	s := newSink()
	m := startSink(t, s, spec(t, "dispatch", host.KindHook, bin, map[string]any{}))
	s.waitFor(t, "the hook up", isUp(m, "dispatch"))
	if ref := deliverRef(t, m, "dispatch", alarmChange("alm-1", "x")); ref != "ack:nohost note:nohost" {
		t.Fatalf("reference %q", ref)
	}
}
