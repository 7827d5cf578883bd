// Package host launches, pins and supervises a node's plugins: every driver and hook runs as its own
// process through hashicorp/go-plugin (gRPC only, AutoMTLS, an empty environment, the binary pinned by
// SHA-256), is configured, health-checked, and restarted with exponential backoff when it exits or stops
// answering. Drivers' observation batches are handed to the node (Sink) and acknowledged once committed.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/shared"
)

// Kind is a plugin kind.
type Kind string

// Plugin kinds.
const (
	KindDriver Kind = shared.KindDriver
	KindHook   Kind = shared.KindHook
)

// Spec is one plugin of the node's configuration.
type Spec struct {
	Name   string          // the config block label, e.g. "sim"
	Kind   Kind            // "driver" or "hook"
	Path   string          // plugin binary
	SHA256 string          // hex; required: the binary is pinned
	Config json.RawMessage // the plugin's config block as a JSON object
}

// Sink is what the host needs of the node.
type Sink interface {
	// Observations hands over one driver batch, already converted to core/device.Observation (with Driver
	// and Node filled). It returns after the batch is committed to the replicated log, or with the reason
	// it was not.
	Observations(ctx context.Context, driver string, obs []device.Observation) error
	// PluginState reports a plugin that went down (up=false, with a reason such as "exited: signal:
	// killed", "sha256 mismatch: expected … got …", "configure: port: no such file") or came back (up=true).
	PluginState(name string, kind Kind, up bool, reason string)
}

// Options tune a Manager. Zero values give the defaults in brackets.
type Options struct {
	Node   string       // the node's id, passed to Configure and set on observations
	Logger hclog.Logger // plugins' own log lines go here too, under the plugin's name [hclog.L()]
	// BackoffMin is the wait before the first restart; it doubles up to BackoffMax [1 s, 1 min]. A plugin
	// whose binary does not match its pin is checked again every BackoffMax.
	BackoffMin, BackoffMax time.Duration
	HealthInterval         time.Duration // how often Health is called [5 s]
	CallTimeout            time.Duration // bound of one call into a plugin [10 s]
	StartTimeout           time.Duration // bound of a plugin's start-up handshake [30 s]
	StopGrace              time.Duration // how long Stop waits before it kills a plugin [5 s]
	MetricsTimeout         time.Duration // bound of one Metrics call, made at every scrape [2 s]
}

// Status is a plugin's state as the manager sees it.
type Status struct {
	Name      string
	Kind      Kind
	Up        bool
	PID       int // 0 when no process runs
	Restarts  int // launches after the first
	LastError string
	Health    string // the last health message
	Since     time.Time
}

// ErrDown is returned (wrapped) by Deliver and Command when the plugin has no running process.
var ErrDown = errors.New("plugin is down")

// Manager runs a node's plugins.
type Manager struct {
	sink    Sink
	opts    Options
	log     hclog.Logger
	plugins map[string]*managed
	names   []string

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type managed struct {
	spec     Spec
	checksum []byte
	log      hclog.Logger

	mu             sync.Mutex
	conn           *conn
	up             bool
	pid            int
	restarts       int
	lastErr        string
	health         string
	since          time.Time
	reported       bool // PluginState was called at least once
	reportedUp     bool
	reportedReason string

	deliverMu  sync.Mutex    // orders deliveries and the re-assertion after a restart
	lastChange *alarm.Change // under deliverMu
}

// conn is one running plugin process.
type conn struct {
	client *goplugin.Client
	cmd    *exec.Cmd
	base   pluginpb.PluginClient
	driver pluginpb.DriverClient
	hook   pluginpb.HookClient
	broker *goplugin.GRPCBroker // hooks: serves HostCallbacks
	done   context.Context      // ends when the process exited
}

// New checks the specs and returns a Manager; nothing is started before Start.
func New(specs []Spec, sink Sink, opts Options) (*Manager, error) {
	if sink == nil {
		return nil, errors.New("plugin host: no sink")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.L()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.BackoffMin, time.Second)
	def(&opts.BackoffMax, time.Minute)
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = opts.BackoffMin
	}
	def(&opts.HealthInterval, 5*time.Second)
	def(&opts.CallTimeout, 10*time.Second)
	def(&opts.StartTimeout, 30*time.Second)
	def(&opts.StopGrace, 5*time.Second)
	def(&opts.MetricsTimeout, 2*time.Second)

	m := &Manager{sink: sink, opts: opts, log: opts.Logger, plugins: map[string]*managed{}}
	var problems []string
	for i, s := range specs {
		at := fmt.Sprintf("plugin %d (%q)", i, s.Name)
		if s.Name == "" {
			problems = append(problems, fmt.Sprintf("plugin %d: name is required", i))
			continue
		}
		if _, dup := m.plugins[s.Name]; dup {
			problems = append(problems, fmt.Sprintf("%s: the name is used twice", at))
			continue
		}
		if s.Kind != KindDriver && s.Kind != KindHook {
			problems = append(problems, fmt.Sprintf("%s: kind %q is not %q or %q", at, s.Kind, KindDriver, KindHook))
		}
		if s.Path == "" {
			problems = append(problems, fmt.Sprintf("%s: path is required", at))
		} else if abs, err := filepath.Abs(s.Path); err == nil {
			s.Path = abs
		}
		sum, err := hex.DecodeString(strings.ToLower(strings.TrimSpace(s.SHA256)))
		switch {
		case s.SHA256 == "":
			problems = append(problems, fmt.Sprintf("%s: sha256 is required (the binary is pinned)", at))
		case err != nil || len(sum) != sha256.Size:
			problems = append(problems, fmt.Sprintf("%s: sha256 must be 64 hex digits", at))
		}
		s.SHA256 = hex.EncodeToString(sum)
		if len(strings.TrimSpace(string(s.Config))) == 0 {
			s.Config = json.RawMessage("{}")
		} else {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(s.Config, &obj); err != nil || obj == nil {
				problems = append(problems, fmt.Sprintf("%s: config must be a JSON object", at))
			}
		}
		m.plugins[s.Name] = &managed{spec: s, checksum: sum, log: opts.Logger.Named(s.Name)}
		m.names = append(m.names, s.Name)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("plugin host: %s", strings.Join(problems, "; "))
	}
	sort.Strings(m.names)
	return m, nil
}

// FileSHA256 returns the hex SHA-256 of a file, as pinned in the config.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Start launches every plugin and supervises it until ctx ends or Stop is called.
func (m *Manager) Start(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.stopped {
		return
	}
	m.started = true
	ctx, m.cancel = context.WithCancel(ctx)
	for _, name := range m.names {
		p := m.plugins[name]
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.supervise(ctx, p)
		}()
	}
}

// Stop ends every plugin process (gracefully, killing only one that does not exit within StopGrace) and
// waits for them.
func (m *Manager) Stop() {
	m.mu.Lock()
	m.stopped = true
	cancel := m.cancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
}

// Hooks returns the names of the hooks, sorted.
func (m *Manager) Hooks() []string {
	var out []string
	for _, n := range m.names {
		if m.plugins[n].spec.Kind == KindHook {
			out = append(out, n)
		}
	}
	return out
}

// Status returns every plugin's state, sorted by name.
func (m *Manager) Status() []Status {
	out := make([]Status, 0, len(m.names))
	for _, n := range m.names {
		p := m.plugins[n]
		p.mu.Lock()
		out = append(out, Status{Name: n, Kind: p.spec.Kind, Up: p.up, PID: p.pid, Restarts: p.restarts,
			LastError: p.lastErr, Health: p.health, Since: p.since})
		p.mu.Unlock()
	}
	return out
}

func (m *Manager) lookup(name string, kind Kind) (*managed, error) {
	p, ok := m.plugins[name]
	if !ok || p.spec.Kind != kind {
		return nil, fmt.Errorf("no %s named %q", kind, name)
	}
	return p, nil
}

func (p *managed) current() (*conn, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn, p.lastErr
}

func downErr(p *managed, lastErr string) error {
	if lastErr == "" {
		lastErr = "not started"
	}
	return fmt.Errorf("%s %s: %w (%s)", p.spec.Kind, p.spec.Name, ErrDown, lastErr)
}

// Deliver hands one alarm change to a hook and returns its receipt. An error means it could not be
// handed over (the hook is down, or the call failed); a receipt with Delivered false means the hook took
// it but could not pass it on. Either way the caller delivers it again later. The change is remembered
// and delivered again when the hook restarts, so a siren re-asserts its state.
func (m *Manager) Deliver(ctx context.Context, hook string, ch alarm.Change) (*pluginpb.Receipt, error) {
	p, err := m.lookup(hook, KindHook)
	if err != nil {
		return nil, err
	}
	p.deliverMu.Lock()
	defer p.deliverMu.Unlock()
	c := ch
	p.lastChange = &c
	cn, lastErr := p.current()
	if cn == nil {
		return nil, downErr(p, lastErr)
	}
	cctx, cancel := context.WithTimeout(ctx, m.opts.CallTimeout)
	defer cancel()
	r, err := cn.hook.Deliver(cctx, AlarmEvent(ch))
	if err != nil {
		return nil, fmt.Errorf("hook %s: deliver: %w", hook, err)
	}
	return r, nil
}

// Command sends a device command through a driver.
func (m *Manager) Command(ctx context.Context, driver string, cmd *pluginpb.DeviceCommand) error {
	p, err := m.lookup(driver, KindDriver)
	if err != nil {
		return err
	}
	if cmd == nil {
		return errors.New("no command")
	}
	cn, lastErr := p.current()
	if cn == nil {
		return downErr(p, lastErr)
	}
	cctx, cancel := context.WithTimeout(ctx, m.opts.CallTimeout)
	defer cancel()
	r, err := cn.driver.Command(cctx, cmd)
	if err != nil {
		return fmt.Errorf("driver %s: command %s: %w", driver, cmd.GetKind(), err)
	}
	if !r.GetOk() {
		return fmt.Errorf("driver %s: command %s for %s: %s", driver, cmd.GetKind(), cmd.GetDevice(), r.GetError())
	}
	return nil
}

// report records a state change and tells the sink about it once.
func (m *Manager) report(p *managed, up bool, reason string) {
	p.mu.Lock()
	if !up {
		p.lastErr = reason
	}
	if p.up != up || !p.reported {
		p.since = time.Now()
	}
	p.up = up
	changed := !p.reported || p.reportedUp != up ||
		(!up && p.reportedReason != reason && !(isUnhealthy(reason) && isUnhealthy(p.reportedReason)))
	if changed {
		p.reported, p.reportedUp, p.reportedReason = true, up, reason
	}
	p.mu.Unlock()
	if !changed {
		return
	}
	if up {
		p.log.Info("plugin up")
	} else {
		p.log.Warn("plugin down", "reason", reason)
	}
	m.sink.PluginState(p.spec.Name, p.spec.Kind, up, reason)
}

const unhealthyPrefix = "unhealthy: "

func isUnhealthy(reason string) bool { return strings.HasPrefix(reason, unhealthyPrefix) }
