// Package plugintest is the conformance kit for Skjold plugins. Run launches a plugin binary the way a
// node does (go-plugin over gRPC, AutoMTLS, the binary pinned by its SHA-256, none of the caller's
// environment) and checks what the contract in plugins/proto/skjold.proto asks of it: the handshake, the
// config schema and its validation errors, Configure, Health, Metrics, the observation stream and
// commands (drivers) or deliveries (hooks), graceful shutdown, and a clean start after a crash.
//
// The result is a Report with one Check per line (PASS, FAIL or SKIP with the reason). `skjold plugin
// test PATH` prints it; the built-in plugins run it in their tests.
package plugintest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skjold-alarm/skjold/plugins/host"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

// Options say what to test and how long to wait. Zero values give the defaults in brackets.
type Options struct {
	Path string // the plugin binary
	// Kind is "driver" or "hook"; empty takes the kind the plugin names in Info.
	Kind string
	// Config is the plugin's config block as a JSON object [{}].
	Config json.RawMessage
	Node   string // passed to Configure ["plugintest"]

	CallTimeout     time.Duration // bound of one call into the plugin, Health included [5 s]
	StartTimeout    time.Duration // bound of the go-plugin handshake [30 s]
	ObservationWait time.Duration // how long a driver has to send its first batch [10 s]
	Batches         int           // batches read and acknowledged on the stream [3]
	// StopGrace is how long the plugin has to exit after it is asked to [go-plugin's 2 s; the kit
	// waits up to StopGrace for a process that outlives that and then kills it].
	StopGrace time.Duration // [5 s]
	// PluginOutput receives the plugin's own log lines and anything it prints [discarded].
	PluginOutput io.Writer
}

// Result of one check.
type Result string

// Results.
const (
	Pass Result = "PASS"
	Fail Result = "FAIL"
	Skip Result = "SKIP"
)

// Check is one line of the report.
type Check struct {
	Name   string
	Result Result
	Detail string
}

// Report is the outcome of Run.
type Report struct {
	Path    string
	Plugin  string // the name in Info, when the handshake got that far
	Kind    string
	Version string
	Checks  []Check
}

// Failed reports whether any check failed.
func (r Report) Failed() bool { return len(r.Failures()) > 0 }

// Failures returns the failed checks.
func (r Report) Failures() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Result == Fail {
			out = append(out, c)
		}
	}
	return out
}

// Check returns the check with this name, and whether there is one.
func (r Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// String renders the report: a heading, one line per check, and a summary line.
func (r Report) String() string {
	var b strings.Builder
	name := r.Plugin
	if name == "" {
		name = "?"
	}
	fmt.Fprintf(&b, "plugin %s (%s %s) %s\n", name, orQ(r.Kind), orQ(r.Version), r.Path)
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	counts := map[Result]int{}
	for _, c := range r.Checks {
		counts[c.Result]++
		fmt.Fprintf(&b, "%s  %-*s  %s\n", c.Result, width, c.Name, c.Detail)
	}
	verdict := "conformant"
	if counts[Fail] > 0 {
		verdict = "NOT conformant"
	}
	fmt.Fprintf(&b, "%d passed, %d failed, %d skipped: %s\n", counts[Pass], counts[Fail], counts[Skip], verdict)
	return b.String()
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// Check names, in the order they run.
const (
	CheckLaunch         = "launch"
	CheckInfo           = "info"
	CheckSchema         = "config_schema"
	CheckUnknownField   = "rejects_unknown_field"
	CheckWrongType      = "rejects_wrong_type" // per required or configured field: rejects_wrong_type:<field>
	CheckConfigure      = "configure"
	CheckHealth         = "health"
	CheckMetrics        = "metrics"
	CheckStream         = "observation_stream"
	CheckObservations   = "observations_valid"
	CheckAcks           = "acks"
	CheckDevices        = "devices"
	CheckCommand        = "command_round_trip"
	CheckUnknownCommand = "command_unknown_kind"
	CheckDeliver        = "deliver"
	CheckDuplicate      = "deliver_duplicate"
	CheckShutdown       = "graceful_shutdown"
	CheckCrash          = "crash_restart"
)

// SchemaTypes are the types a ConfigField may have.
var SchemaTypes = []string{"string", "number", "bool", "list", "object", "duration"}

// UnknownField is the attribute the kit configures to see that a plugin refuses what it does not know.
const UnknownField = "__not_a_field__"

// UnknownCommand is the command kind no driver knows.
const UnknownCommand = "__not_a_command__"

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CallTimeout, 5*time.Second)
	def(&o.StartTimeout, 30*time.Second)
	def(&o.ObservationWait, 10*time.Second)
	def(&o.StopGrace, 5*time.Second)
	if o.Batches <= 0 {
		o.Batches = 3
	}
	if o.Node == "" {
		o.Node = "plugintest"
	}
	if len(strings.TrimSpace(string(o.Config))) == 0 {
		o.Config = json.RawMessage("{}")
	}
	if o.PluginOutput == nil {
		o.PluginOutput = io.Discard
	}
}

// run is one test run's state.
type run struct {
	ctx    context.Context
	opts   Options
	rep    *Report
	sum    []byte
	kind   string
	schema []*pluginpb.ConfigField
	// sawObservations: the first instance sent a batch; the one started after the crash must too.
	sawObservations bool
	firstDevice     string
}

func (r *run) add(name string, res Result, format string, args ...any) {
	r.rep.Checks = append(r.rep.Checks, Check{Name: name, Result: res, Detail: fmt.Sprintf(format, args...)})
}

// Run tests the plugin at opts.Path. It never panics on a misbehaving plugin; everything it finds is in
// the report. ctx bounds the whole run.
func Run(ctx context.Context, opts Options) Report {
	opts.defaults()
	rep := Report{Path: opts.Path, Kind: opts.Kind}
	r := &run{ctx: ctx, opts: opts, rep: &rep, kind: opts.Kind}
	if opts.Kind != "" && opts.Kind != shared.KindDriver && opts.Kind != shared.KindHook {
		r.add(CheckLaunch, Fail, "kind %q is not %q or %q", opts.Kind, shared.KindDriver, shared.KindHook)
		return rep
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(opts.Config, &obj); err != nil || obj == nil {
		r.add(CheckLaunch, Fail, "the given config is not a JSON object")
		return rep
	}
	sum, err := host.FileSHA256(opts.Path)
	if err != nil {
		r.add(CheckLaunch, Fail, "%v", err)
		return rep
	}
	r.sum, _ = hex.DecodeString(sum)

	p, err := r.launch()
	if err != nil {
		r.add(CheckLaunch, Fail, "%v", err)
		return rep
	}
	r.add(CheckLaunch, Pass, "go-plugin handshake over gRPC with AutoMTLS, pid %d, sha256 %s", p.pid(), sum[:16]+"…")
	r.first(p)
	r.shutdown(p)
	r.crash()
	return rep
}

// proc is one launched plugin process.
type proc struct {
	client *goplugin.Client
	cmd    *exec.Cmd
	base   pluginpb.PluginClient
	driver pluginpb.DriverClient
	hook   pluginpb.HookClient
	done   context.Context // ends when the process exited
}

func (p *proc) pid() int {
	if p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// launch starts the binary as a node does. The clients of both kinds are made: the base service is the
// same, and Info decides which kind is used.
func (r *run) launch() (*proc, error) {
	cmd := exec.Command(r.opts.Path)
	cmd.Env = []string{}
	out := hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: r.opts.PluginOutput, Level: hclog.Debug})
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		Plugins:          shared.ClientPlugins(),
		Cmd:              cmd,
		SecureConfig:     &goplugin.SecureConfig{Checksum: r.sum, Hash: sha256.New()},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		Logger:           out,
		SyncStdout:       out.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}),
		SyncStderr:       out.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}),
		StartTimeout:     r.opts.StartTimeout,
	})
	p := &proc{client: client, cmd: cmd}
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	rawD, err := rpc.Dispense(shared.KindDriver)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("dispense: %w", err)
	}
	rawH, err := rpc.Dispense(shared.KindHook)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("dispense: %w", err)
	}
	d, ok1 := rawD.(*shared.DriverClient)
	h, ok2 := rawH.(*shared.HookClient)
	if !ok1 || !ok2 {
		client.Kill()
		return nil, fmt.Errorf("dispense: unexpected clients %T, %T", rawD, rawH)
	}
	p.base, p.driver, p.hook, p.done = d.Base, d.Driver, h.Hook, d.Done
	return p, nil
}

func (r *run) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.ctx, r.opts.CallTimeout)
}

// first runs every check that needs a fresh process: handshake to commands or deliveries.
func (r *run) first(p *proc) {
	if !r.info(p) {
		return
	}
	r.schemaCheck(p)
	r.validation(p)
	configured := r.configure(p)
	if !configured {
		for _, n := range r.kindChecks() {
			r.add(n, Skip, "the plugin is not configured")
		}
		return
	}
	r.health(p, CheckHealth)
	r.metrics(p)
	switch r.kind {
	case shared.KindDriver:
		r.observations(p)
		r.commands(p)
	case shared.KindHook:
		r.deliveries(p)
	}
}

func (r *run) kindChecks() []string {
	out := []string{CheckHealth, CheckMetrics}
	if r.kind == shared.KindDriver {
		return append(out, CheckStream, CheckObservations, CheckAcks, CheckDevices, CheckCommand, CheckUnknownCommand)
	}
	return append(out, CheckDeliver, CheckDuplicate)
}

func (r *run) info(p *proc) bool {
	ctx, cancel := r.call()
	defer cancel()
	info, err := p.base.Info(ctx, &pluginpb.InfoRequest{})
	if err != nil {
		r.add(CheckInfo, Fail, "Info: %v", err)
		return false
	}
	r.rep.Plugin, r.rep.Version = info.GetName(), info.GetVersion()
	var problems []string
	if info.GetName() == "" {
		problems = append(problems, "name is empty")
	}
	k := info.GetKind()
	switch {
	case k != shared.KindDriver && k != shared.KindHook:
		problems = append(problems, fmt.Sprintf("kind %q is not %q or %q", k, shared.KindDriver, shared.KindHook))
	case r.kind != "" && k != r.kind:
		problems = append(problems, fmt.Sprintf("kind is %q, the plugin was tested as a %s", k, r.kind))
	}
	if info.GetProtocolVersion() != shared.ProtocolVersion {
		problems = append(problems, fmt.Sprintf("protocol_version is %d, this node speaks %d", info.GetProtocolVersion(), shared.ProtocolVersion))
	}
	if r.kind == "" {
		r.kind = k
	}
	r.rep.Kind = r.kind
	if len(problems) > 0 {
		r.add(CheckInfo, Fail, "%s", strings.Join(problems, "; "))
	} else {
		r.add(CheckInfo, Pass, "name %q, kind %s, version %q, protocol version %d", info.GetName(), k, info.GetVersion(), info.GetProtocolVersion())
	}
	// A plugin of an unknown kind cannot be tested further.
	return r.kind == shared.KindDriver || r.kind == shared.KindHook
}

func (r *run) schemaCheck(p *proc) {
	ctx, cancel := r.call()
	defer cancel()
	s, err := p.base.ConfigSchema(ctx, &pluginpb.ConfigSchemaRequest{})
	if err != nil {
		r.add(CheckSchema, Fail, "ConfigSchema: %v", err)
		return
	}
	r.schema = s.GetFields()
	var problems []string
	seen := map[string]bool{}
	for i, f := range r.schema {
		switch {
		case f.GetName() == "":
			problems = append(problems, fmt.Sprintf("fields[%d] has no name", i))
		case seen[f.GetName()]:
			problems = append(problems, fmt.Sprintf("field %q is described twice", f.GetName()))
		}
		seen[f.GetName()] = true
		if !slices.Contains(SchemaTypes, f.GetType()) {
			problems = append(problems, fmt.Sprintf("field %q has type %q (allowed: %s)", f.GetName(), f.GetType(), strings.Join(SchemaTypes, ", ")))
		}
		if d := f.GetDefaultJson(); d != "" && !json.Valid([]byte(d)) {
			problems = append(problems, fmt.Sprintf("field %q: default_json %q is not JSON", f.GetName(), d))
		}
	}
	if len(problems) > 0 {
		r.add(CheckSchema, Fail, "%s", strings.Join(problems, "; "))
		return
	}
	r.add(CheckSchema, Pass, "%d fields, %d required", len(r.schema), len(r.required()))
}

func (r *run) required() []*pluginpb.ConfigField {
	var out []*pluginpb.ConfigField
	for _, f := range r.schema {
		if f.GetRequired() && f.GetName() != "" {
			out = append(out, f)
		}
	}
	return out
}

// wrongValue is a JSON value that is not of type t.
func wrongValue(t string) string {
	switch t {
	case "string":
		return "[12345]"
	case "number":
		return `"not a number"`
	case "bool":
		return `"not a bool"`
	case "list":
		return `"not a list"`
	case "object":
		return `"not an object"`
	default: // duration, and types the kit does not know
		return "[true]"
	}
}

// names reports whether one of errs names field (or a path inside it).
func names(errs []*pluginpb.ConfigError, field string) bool {
	for _, e := range errs {
		f := e.GetField()
		if f == field || strings.HasPrefix(f, field+".") || strings.HasPrefix(f, field+"[") {
			return true
		}
	}
	return false
}

func describe(errs []*pluginpb.ConfigError) string {
	var parts []string
	for _, e := range errs {
		if e.GetField() == "" {
			parts = append(parts, e.GetMessage())
		} else {
			parts = append(parts, e.GetField()+": "+e.GetMessage())
		}
	}
	return strings.Join(parts, "; ")
}

func (r *run) configureWith(p *proc, cfg []byte) ([]*pluginpb.ConfigError, error) {
	ctx, cancel := r.call()
	defer cancel()
	resp, err := p.base.Configure(ctx, &pluginpb.ConfigureRequest{ConfigJson: cfg, Node: r.opts.Node})
	if err != nil {
		return nil, err
	}
	return resp.GetErrors(), nil
}

// validation configures the plugin with what it must refuse, before the real configuration.
func (r *run) validation(p *proc) {
	errs, err := r.configureWith(p, []byte(`{"`+UnknownField+`": 1}`))
	switch {
	case err != nil:
		r.add(CheckUnknownField, Fail, "Configure: %v", err)
	case len(errs) == 0:
		r.add(CheckUnknownField, Fail, "accepted {%q: 1}: a plugin must refuse attributes it does not know", UnknownField)
	case !names(errs, UnknownField):
		r.add(CheckUnknownField, Fail, "refused, but no error names %q: %s", UnknownField, describe(errs))
	default:
		r.add(CheckUnknownField, Pass, "%s", describe(errs))
	}

	var base map[string]json.RawMessage
	_ = json.Unmarshal(r.opts.Config, &base) // checked in Run
	// Every required field, and every other field the given config sets.
	var fields []*pluginpb.ConfigField
	for _, f := range r.schema {
		if _, set := base[f.GetName()]; f.GetName() != "" && (f.GetRequired() || set) {
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		r.add(CheckWrongType, Skip, "the schema has no required fields and the config sets none")
		return
	}
	for _, f := range fields {
		name := CheckWrongType + ":" + f.GetName()
		cfg := map[string]json.RawMessage{}
		for k, v := range base {
			cfg[k] = v
		}
		cfg[f.GetName()] = json.RawMessage(wrongValue(f.GetType()))
		raw, _ := json.Marshal(cfg)
		errs, err := r.configureWith(p, raw)
		switch {
		case err != nil:
			r.add(name, Fail, "Configure: %v", err)
		case len(errs) == 0:
			r.add(name, Fail, "accepted %s = %s for a %s field", f.GetName(), wrongValue(f.GetType()), f.GetType())
		case !names(errs, f.GetName()):
			r.add(name, Fail, "refused %s = %s, but no error names %q: %s", f.GetName(), wrongValue(f.GetType()), f.GetName(), describe(errs))
		default:
			r.add(name, Pass, "%s = %s refused: %s", f.GetName(), wrongValue(f.GetType()), describe(errs))
		}
	}
}

func (r *run) configure(p *proc) bool {
	errs, err := r.configureWith(p, r.opts.Config)
	switch {
	case err != nil:
		r.add(CheckConfigure, Fail, "Configure: %v", err)
		return false
	case len(errs) > 0:
		hint := ""
		if string(r.opts.Config) == "{}" {
			hint = " (no config was given: pass one with --config)"
		}
		r.add(CheckConfigure, Fail, "the given config was refused: %s%s", describe(errs), hint)
		return false
	}
	r.add(CheckConfigure, Pass, "accepted %s", abbreviate(string(r.opts.Config), 80))
	return true
}

func abbreviate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (r *run) healthCall(p *proc) (*pluginpb.HealthResponse, time.Duration, error) {
	ctx, cancel := r.call()
	defer cancel()
	start := time.Now()
	h, err := p.base.Health(ctx, &pluginpb.HealthRequest{})
	return h, time.Since(start), err
}

func (r *run) health(p *proc, check string) {
	h, took, err := r.healthCall(p)
	if err != nil {
		r.add(check, Fail, "Health did not answer within %v: %v", r.opts.CallTimeout, err)
		return
	}
	state := "healthy"
	if !h.GetHealthy() {
		state = "unhealthy (a node raises a monitoring fault)"
	}
	r.add(check, Pass, "answered in %v: %s: %q", took.Round(time.Millisecond), state, h.GetMessage())
}

func (r *run) metrics(p *proc) {
	ctx, cancel := r.call()
	defer cancel()
	m, err := p.base.Metrics(ctx, &pluginpb.MetricsRequest{})
	if status.Code(err) == codes.Unimplemented {
		r.add(CheckMetrics, Skip, "Metrics is not implemented (optional)")
		return
	}
	if err != nil {
		r.add(CheckMetrics, Fail, "Metrics: %v", err)
		return
	}
	var problems []string
	kinds := map[string]string{}
	for _, mt := range m.GetMetrics() {
		n := mt.GetName()
		if !promName(n) {
			problems = append(problems, fmt.Sprintf("%q is not a Prometheus name", n))
		}
		if mt.GetKind() != "counter" && mt.GetKind() != "gauge" {
			problems = append(problems, fmt.Sprintf("%s: kind %q is not counter or gauge", n, mt.GetKind()))
		}
		if k, ok := kinds[n]; ok && k != mt.GetKind() {
			problems = append(problems, fmt.Sprintf("%s is both a %s and a %s", n, k, mt.GetKind()))
		}
		kinds[n] = mt.GetKind()
		for l := range mt.GetLabels() {
			if l == "plugin" || l == "kind" || !promName(l) || strings.HasPrefix(l, "__") {
				problems = append(problems, fmt.Sprintf("%s: label %q is reserved or not a Prometheus label name", n, l))
			}
		}
	}
	if len(problems) > 0 {
		r.add(CheckMetrics, Fail, "%s", strings.Join(problems, "; "))
		return
	}
	r.add(CheckMetrics, Pass, "%d series in %d families", len(m.GetMetrics()), len(kinds))
}

func promName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// recvResult is one Recv on the observation stream.
type recvResult struct {
	b   *pluginpb.ObservationBatch
	err error
}

// observations opens the stream, reads up to Batches batches, validates them and acknowledges them:
// the first accepted, the second rejected (a driver must carry on), the rest accepted.
func (r *run) observations(p *proc) {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	stream, err := p.driver.Observations(ctx)
	if err != nil {
		r.add(CheckStream, Fail, "Observations: %v", err)
		r.add(CheckObservations, Skip, "no stream")
		r.add(CheckAcks, Skip, "no stream")
		return
	}
	recv := make(chan recvResult, 1)
	go func() {
		for {
			b, err := stream.Recv()
			select {
			case recv <- recvResult{b, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var batches []*pluginpb.ObservationBatch
	var streamErr error
	var problems []string
	wait := time.NewTimer(r.opts.ObservationWait)
	defer wait.Stop()
	var lastID uint64
	rejected := false
read:
	for len(batches) < r.opts.Batches {
		select {
		case res := <-recv:
			if res.err != nil {
				streamErr = res.err
				break read
			}
			b := res.b
			batches = append(batches, b)
			if len(batches) > 1 && b.GetId() <= lastID {
				problems = append(problems, fmt.Sprintf("batch id %d after %d: ids must increase", b.GetId(), lastID))
			}
			lastID = b.GetId()
			if len(b.GetObservations()) == 0 {
				problems = append(problems, fmt.Sprintf("batch %d is empty", b.GetId()))
			}
			if _, err := host.ConvertBatch(b, "plugintest", r.opts.Node); err != nil {
				problems = append(problems, fmt.Sprintf("batch %d: %v", b.GetId(), err))
			}
			for i, o := range b.GetObservations() {
				if ts := o.GetTime(); ts != nil && ts.AsTime().After(time.Now().Add(10*time.Minute)) {
					problems = append(problems, fmt.Sprintf("batch %d: observations[%d].time %s is in the future", b.GetId(), i, ts.AsTime().Format(time.RFC3339)))
				}
				if r.firstDevice == "" {
					r.firstDevice = o.GetDevice()
				}
			}
			ack := &pluginpb.ObservationAck{Id: b.GetId(), Accepted: true}
			if len(batches) == 2 {
				ack = &pluginpb.ObservationAck{Id: b.GetId(), Error: "plugintest: a deliberate rejection"}
				rejected = true
			}
			if err := stream.Send(ack); err != nil {
				streamErr = err
				break read
			}
		case <-wait.C:
			break read
		case <-r.ctx.Done():
			streamErr = r.ctx.Err()
			break read
		}
	}
	r.sawObservations = len(batches) > 0
	if streamErr != nil && len(batches) == 0 {
		r.add(CheckStream, Fail, "the stream ended before any batch: %v", streamErr)
		r.add(CheckObservations, Skip, "no batch")
		r.add(CheckAcks, Skip, "no batch")
		return
	}
	r.add(CheckStream, Pass, "opened; %d batches within %v", len(batches), r.opts.ObservationWait)
	if len(batches) == 0 {
		r.add(CheckObservations, Skip, "the driver sent no observations within %v (a driver with no devices attached sends none)", r.opts.ObservationWait)
		r.add(CheckAcks, Skip, "no batch")
		return
	}
	n := 0
	for _, b := range batches {
		n += len(b.GetObservations())
	}
	if len(problems) > 0 {
		r.add(CheckObservations, Fail, "%s", strings.Join(problems, "; "))
	} else {
		r.add(CheckObservations, Pass, "%d observations in %d batches, all valid", n, len(batches))
	}
	switch {
	case streamErr != nil:
		r.add(CheckAcks, Fail, "the stream ended after %d acks: %v", len(batches), streamErr)
	case len(batches) == 1:
		r.add(CheckAcks, Pass, "batch %d acknowledged; no second batch within %v to see the driver carry on", batches[0].GetId(), r.opts.ObservationWait)
	default:
		detail := fmt.Sprintf("%d batches acknowledged, the driver sent the next after each", len(batches))
		if rejected {
			detail += "; it carried on after a rejection"
		}
		if _, _, err := r.healthCall(p); err != nil {
			r.add(CheckAcks, Fail, "%s, but then Health failed: %v", detail, err)
		} else {
			r.add(CheckAcks, Pass, "%s", detail)
		}
	}
}

func (r *run) commands(p *proc) {
	ctx, cancel := r.call()
	d, err := p.driver.Devices(ctx, &pluginpb.DevicesRequest{})
	cancel()
	if err != nil {
		r.add(CheckDevices, Fail, "Devices: %v", err)
	} else {
		r.add(CheckDevices, Pass, "%d devices %s", len(d.GetDevices()), abbreviate(strings.Join(d.GetDevices(), ", "), 60))
	}
	device := ""
	if len(d.GetDevices()) > 0 {
		device = d.GetDevices()[0]
	}
	if device == "" {
		r.add(CheckCommand, Skip, "Devices lists no device to send a command to")
	} else {
		ctx, cancel := r.call()
		res, err := p.driver.Command(ctx, &pluginpb.DeviceCommand{Id: "plugintest-1", Device: device, Kind: "vibrate"})
		cancel()
		switch {
		case err != nil:
			r.add(CheckCommand, Fail, "vibrate to %s: %v", device, err)
		case res.GetOk():
			r.add(CheckCommand, Pass, "vibrate to %s: ok", device)
		case res.GetError() == "":
			r.add(CheckCommand, Fail, "vibrate to %s: not ok, and no error says why", device)
		default:
			r.add(CheckCommand, Pass, "vibrate to %s: refused with a reason: %s", device, res.GetError())
		}
	}
	target := device
	if target == "" {
		target = "plugintest-no-such-device"
	}
	ctx, cancel = r.call()
	res, err := p.driver.Command(ctx, &pluginpb.DeviceCommand{Id: "plugintest-2", Device: target, Kind: UnknownCommand})
	cancel()
	switch {
	case err != nil:
		r.add(CheckUnknownCommand, Fail, "Command: %v", err)
	case res.GetOk():
		r.add(CheckUnknownCommand, Fail, "command kind %q to %s was accepted", UnknownCommand, target)
	case res.GetError() == "":
		r.add(CheckUnknownCommand, Fail, "command kind %q refused without a reason", UnknownCommand)
	default:
		r.add(CheckUnknownCommand, Pass, "refused: %s", res.GetError())
	}
}

// syntheticEvent is a raised police breach, as a node would deliver it.
func syntheticEvent(key string, active uint32) *pluginpb.AlarmEvent {
	now := timestamppb.Now()
	return &pluginpb.AlarmEvent{
		IdempotencyKey: key,
		Alarm: &pluginpb.Alarm{
			Id: "alm-plugintest", OrderId: "ord-plugintest", Kind: "breach", Class: "police", Severity: "critical",
			State: "raised", ZoneId: "home", Device: "plugintest-tag", RaisedAt: now, Active: active > 0,
			Position: &pluginpb.Position{Lat: 59.91, Lon: 10.75, AccuracyM: 8, Time: now},
			Message:  "plugintest: offender plugintest-tag is 7 m inside exclusion zone home",
		},
		Transition:         &pluginpb.Transition{Seq: 1, State: "raised", Event: "raised", At: now, By: "plugintest"},
		ActivePoliceAlarms: active,
	}
}

func (r *run) deliveries(p *proc) {
	deliver := func(ev *pluginpb.AlarmEvent) (string, bool) {
		ctx, cancel := r.call()
		defer cancel()
		rc, err := p.hook.Deliver(ctx, ev)
		switch {
		case err != nil:
			return fmt.Sprintf("Deliver %s: %v", ev.GetIdempotencyKey(), err), false
		case !rc.GetDelivered():
			return fmt.Sprintf("Deliver %s: not delivered: %s", ev.GetIdempotencyKey(), orQ(rc.GetError())), false
		}
		return fmt.Sprintf("receipt for %s, reference %q", ev.GetIdempotencyKey(), rc.GetReference()), true
	}
	key := "alm-plugintest:1"
	msg, ok := deliver(syntheticEvent(key, 1))
	if !ok {
		r.add(CheckDeliver, Fail, "%s", msg)
		r.add(CheckDuplicate, Skip, "the first delivery failed")
		return
	}
	r.add(CheckDeliver, Pass, "%s", msg)
	msg, ok = deliver(syntheticEvent(key, 1))
	if !ok {
		r.add(CheckDuplicate, Fail, "delivery is at least once: a repeated idempotency key must be accepted: %s", msg)
	} else {
		r.add(CheckDuplicate, Pass, "%s", msg)
	}
	// Leave the hook quiet: the alarm is acknowledged (a siren switches off).
	ev := syntheticEvent("alm-plugintest:2", 0)
	ev.Alarm.State, ev.Transition.Seq, ev.Transition.State, ev.Transition.Event = "acknowledged", 2, "acknowledged", "acknowledged"
	_, _ = deliver(ev)
}

// stop asks the process to end (go-plugin's Kill: a graceful gRPC shutdown, a kill after 2 s) and
// reports whether it ended by itself.
func (r *run) stop(p *proc) (graceful bool, how string) {
	done := make(chan struct{})
	start := time.Now()
	go func() {
		p.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(r.opts.StopGrace):
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
		}
		<-done
		return false, fmt.Sprintf("still running %v after it was asked to stop; killed", r.opts.StopGrace)
	}
	took := time.Since(start).Round(time.Millisecond)
	ps := p.cmd.ProcessState
	if ps == nil {
		return false, "the process state is unknown"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return false, fmt.Sprintf("did not exit by itself within go-plugin's grace period; ended by signal %q after %v", ws.Signal(), took)
	}
	return true, fmt.Sprintf("exited (%s) %v after it was asked to stop", ps, took)
}

func (r *run) shutdown(p *proc) {
	ok, how := r.stop(p)
	if ok {
		r.add(CheckShutdown, Pass, "%s", how)
	} else {
		r.add(CheckShutdown, Fail, "%s", how)
	}
}

// crash starts the plugin, kills it with SIGKILL once it is configured (and streaming), and starts it
// once more: the new process must come up as the first did (no lock, port or file left behind).
func (r *run) crash() {
	if r.kind != shared.KindDriver && r.kind != shared.KindHook {
		r.add(CheckCrash, Skip, "the plugin's kind is unknown")
		return
	}
	p, err := r.launch()
	if err != nil {
		r.add(CheckCrash, Fail, "second launch: %v", err)
		return
	}
	if errs, err := r.configureWith(p, r.opts.Config); err != nil || len(errs) > 0 {
		r.stop(p)
		r.add(CheckCrash, Skip, "the plugin could not be configured (see %s)", CheckConfigure)
		return
	}
	var cancelStream context.CancelFunc = func() {}
	if r.kind == shared.KindDriver {
		var sctx context.Context
		sctx, cancelStream = context.WithCancel(r.ctx)
		if s, err := p.driver.Observations(sctx); err == nil {
			go func() { // keep the stream drained until the kill
				for {
					b, err := s.Recv()
					if err != nil {
						return
					}
					_ = s.Send(&pluginpb.ObservationAck{Id: b.GetId(), Accepted: true})
				}
			}()
		}
	}
	pid := p.pid()
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-p.done.Done():
	case <-time.After(r.opts.StopGrace):
		cancelStream()
		r.stop(p)
		r.add(CheckCrash, Fail, "pid %d still ran %v after SIGKILL", pid, r.opts.StopGrace)
		return
	}
	cancelStream()
	p.client.Kill() // reaps and cleans up the dead client

	q, err := r.launch()
	if err != nil {
		r.add(CheckCrash, Fail, "after SIGKILL of pid %d, a new launch failed: %v", pid, err)
		return
	}
	defer r.stop(q)
	ctx, cancel := r.call()
	defer cancel()
	if _, err := q.base.Info(ctx, &pluginpb.InfoRequest{}); err != nil {
		r.add(CheckCrash, Fail, "after SIGKILL, the new process does not answer Info: %v", err)
		return
	}
	if errs, err := r.configureWith(q, r.opts.Config); err != nil || len(errs) > 0 {
		r.add(CheckCrash, Fail, "after SIGKILL, the new process refuses its config: %v%s", err, describe(errs))
		return
	}
	h, err := q.base.Health(ctx, &pluginpb.HealthRequest{})
	if err != nil {
		r.add(CheckCrash, Fail, "after SIGKILL, the new process does not answer Health: %v", err)
		return
	}
	detail := fmt.Sprintf("pid %d killed with SIGKILL; pid %d started, configured and answered Health (%q)", pid, q.pid(), h.GetMessage())
	if r.kind == shared.KindDriver && r.sawObservations {
		if err := r.oneBatch(q); err != nil {
			r.add(CheckCrash, Fail, "%s, but %v", detail, err)
			return
		}
		detail += " and sent observations"
	}
	r.add(CheckCrash, Pass, "%s", detail)
}

// oneBatch waits for one batch on a new stream and acknowledges it.
func (r *run) oneBatch(p *proc) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.ObservationWait)
	defer cancel()
	s, err := p.driver.Observations(ctx)
	if err != nil {
		return fmt.Errorf("Observations: %w", err)
	}
	b, err := s.Recv()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no batch within %v", r.opts.ObservationWait)
		}
		return fmt.Errorf("no batch: %w", err)
	}
	return s.Send(&pluginpb.ObservationAck{Id: b.GetId(), Accepted: true})
}
