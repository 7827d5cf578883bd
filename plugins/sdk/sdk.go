// Package sdk is what a vendor imports to write a Skjold plugin in Go. A plugin binary serves one kind:
// its main calls ServeDriver or ServeHook with its implementation and never returns.
//
//	func main() { sdk.ServeDriver(&myDriver{}) }
//
// The SDK speaks the go-plugin handshake and the gRPC services of plugins/proto for it, checks that the
// host configured the plugin before anything else, and turns the Observations stream into a blocking
// Emit call: Emit returns once the node has committed the batch to its replicated log (or rejected it),
// which is the moment a driver may acknowledge the frames to its devices.
//
// The SDK knows nothing of the node; it depends only on the contract (plugins/proto, plugins/shared).
package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/protobuf/types/known/timestamppb"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

// Info names a plugin. The kind and the protocol version are filled by the SDK.
type Info struct {
	Name    string
	Version string
}

// Driver is a tag, receiver or modem driver.
type Driver interface {
	Info() Info
	// ConfigSchema describes the attributes of the plugin's config block.
	ConfigSchema() []*pluginpb.ConfigField
	// Configure receives the config block as a JSON object ("{}" when empty) and the node's id. It returns
	// every problem it finds, each naming the attribute ("port", "tags[2].path"); none means accepted.
	// It is called before Run.
	Configure(configJSON []byte, node string) []*pluginpb.ConfigError
	// Health is polled by the host; an unhealthy answer raises a monitoring fault alarm.
	Health() (healthy bool, message string)
	// Run produces observations until ctx ends. It is started once, when the host first opens the
	// observation stream. Emit blocks until the host has committed the batch (or rejected it) — that is
	// when a driver may ACK frames to its devices. If Run returns, the driver is reported unhealthy and
	// the host restarts the plugin.
	Run(ctx context.Context, emit Emitter) error
	// Command sends a command to one of the driver's devices.
	Command(ctx context.Context, cmd *pluginpb.DeviceCommand) error
	// Devices lists the devices the driver currently serves.
	Devices() []string
}

// Emitter hands observations to the host.
type Emitter interface {
	// Emit sends one batch and waits for the host's answer. It returns nil when the batch is committed,
	// a *RejectedError when the host refused it, ErrStreamClosed (wrapped) when the stream to the host
	// ended before the answer (the batch may or may not be committed: send it again, the log tolerates
	// duplicates), or ctx's error. While no stream is open, Emit waits for the host to open one.
	// Emit may be called from several goroutines.
	Emit(ctx context.Context, obs []*pluginpb.Observation) error
}

// Hook receives alarm transitions: sirens, dispatch systems, alarm receiving centres.
type Hook interface {
	Info() Info
	ConfigSchema() []*pluginpb.ConfigField
	Configure(configJSON []byte, node string) []*pluginpb.ConfigError
	Health() (healthy bool, message string)
	// Deliver hands the hook one alarm transition. An error (or a receipt with Delivered false) makes the
	// host deliver it again later; ev.IdempotencyKey lets the hook drop duplicates. A nil receipt with a
	// nil error means delivered.
	Deliver(ctx context.Context, ev *pluginpb.AlarmEvent) (*pluginpb.Receipt, error)
}

// ErrStreamClosed is returned (wrapped) by Emit when the host's stream ended before it answered.
var ErrStreamClosed = errors.New("the host's observation stream ended before the batch was acknowledged")

// RejectedError is returned by Emit when the host refused a batch (an invalid observation, no quorum).
type RejectedError struct {
	Batch  uint64
	Reason string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("batch %d rejected by the host: %s", e.Batch, e.Reason)
}

var (
	logOnce sync.Once
	logger  hclog.Logger
)

// Logger returns the plugin's logger. Its lines go to the host, which writes them into its own log under
// the plugin's name (anything else a plugin prints to stdout or stderr ends up there too, as plain lines).
func Logger() hclog.Logger {
	logOnce.Do(func() {
		logger = hclog.New(&hclog.LoggerOptions{
			Level:      hclog.Debug,
			Output:     os.Stderr,
			JSONFormat: true,
		})
	})
	return logger
}

// ConfigErr builds a ConfigError for field.
func ConfigErr(field, format string, args ...any) *pluginpb.ConfigError {
	return &pluginpb.ConfigError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Timestamp converts a time for an Observation.
func Timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// shutdownGrace bounds how long ServeDriver waits for Run to return after the host closed the plugin.
const shutdownGrace = 2 * time.Second

// orphanCheck is how often a plugin checks that the node that started it is still its parent.
const orphanCheck = time.Second

// exitWhenOrphaned ends the process once its parent is gone (the node crashed or was killed): nothing
// would ever stop it otherwise, and it would hold its serial port against the node's next start. cleanup
// runs first, bounded by shutdownGrace.
func exitWhenOrphaned(cleanup func()) {
	parent := os.Getppid()
	go func() {
		for range time.Tick(orphanCheck) {
			if os.Getppid() != parent {
				Logger().Error("the node that started this plugin is gone; exiting", "parent", parent)
				done := make(chan struct{})
				go func() { cleanup(); close(done) }()
				select {
				case <-done:
				case <-time.After(shutdownGrace):
				}
				os.Exit(3)
			}
		}
	}()
}

// ServeDriver serves d as a driver plugin. It never returns: the process ends when the host stops it, or
// when the node that started it is gone.
func ServeDriver(d Driver) {
	root, cancel := context.WithCancel(context.Background())
	srv := newDriverServer(d, root, Logger())
	exitWhenOrphaned(func() { cancel(); srv.waitRun(shutdownGrace) })
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins:         plugin.PluginSet{shared.KindDriver: &shared.DriverPlugin{Impl: srv}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          Logger(),
	})
	cancel()
	srv.waitRun(shutdownGrace)
	os.Exit(0)
}

// ServeHook serves h as a hook plugin. It never returns: the process ends when the host stops it, or when
// the node that started it is gone.
func ServeHook(h Hook) {
	srv := newHookServer(h, Logger())
	// A hook that holds hardware (a siren relay) may implement Close() to leave it in a safe state when it
	// stops: after the host asks it to, or when the node that started it is gone.
	closeHook := func() {
		if c, ok := h.(interface{ Close() }); ok {
			c.Close()
		}
	}
	exitWhenOrphaned(closeHook)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins:         plugin.PluginSet{shared.KindHook: &shared.HookPlugin{Impl: srv}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          Logger(),
	})
	closeHook()
	os.Exit(0)
}

// base serves the Plugin service for either kind.
type base struct {
	pluginpb.UnimplementedPluginServer
	kind   string
	info   func() Info
	schema func() []*pluginpb.ConfigField
	conf   func([]byte, string) []*pluginpb.ConfigError
	health func() (bool, string)
	// canConfigure says why the plugin cannot be configured now ("" when it can).
	canConfigure func() string

	mu         sync.Mutex
	configured bool
}

func (b *base) Info(context.Context, *pluginpb.InfoRequest) (*pluginpb.InfoResponse, error) {
	i := b.info()
	return &pluginpb.InfoResponse{Name: i.Name, Kind: b.kind, Version: i.Version, ProtocolVersion: shared.ProtocolVersion}, nil
}

func (b *base) ConfigSchema(context.Context, *pluginpb.ConfigSchemaRequest) (*pluginpb.ConfigSchemaResponse, error) {
	return &pluginpb.ConfigSchemaResponse{Fields: b.schema()}, nil
}

func (b *base) Configure(_ context.Context, req *pluginpb.ConfigureRequest) (*pluginpb.ConfigureResponse, error) {
	cfg := bytes.TrimSpace(req.GetConfigJson())
	if len(cfg) == 0 {
		cfg = []byte("{}")
	}
	if !json.Valid(cfg) || cfg[0] != '{' {
		return &pluginpb.ConfigureResponse{Errors: []*pluginpb.ConfigError{
			ConfigErr("", "the configuration must be a JSON object"),
		}}, nil
	}
	if b.canConfigure != nil {
		if why := b.canConfigure(); why != "" {
			return &pluginpb.ConfigureResponse{Errors: []*pluginpb.ConfigError{ConfigErr("", "%s", why)}}, nil
		}
	}
	errs := b.conf(cfg, req.GetNode())
	b.mu.Lock()
	b.configured = len(errs) == 0
	b.mu.Unlock()
	return &pluginpb.ConfigureResponse{Errors: errs}, nil
}

func (b *base) isConfigured() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.configured
}

func (b *base) Health(context.Context, *pluginpb.HealthRequest) (*pluginpb.HealthResponse, error) {
	if !b.isConfigured() {
		return &pluginpb.HealthResponse{Healthy: false, Message: "not configured"}, nil
	}
	ok, msg := b.health()
	return &pluginpb.HealthResponse{Healthy: ok, Message: msg}, nil
}

// Metrics serves the process's metrics registry (NewCounter, NewGauge).
func (b *base) Metrics(context.Context, *pluginpb.MetricsRequest) (*pluginpb.MetricsResponse, error) {
	return metricsResponse(), nil
}
