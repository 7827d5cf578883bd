package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/breach"
)

// Config is a node's configuration, read from one HCL file (/etc/skjold/skjold.hcl).
type Config struct {
	NodeID    string
	DataDir   string
	APIListen string
	RaftBind  string
	Bootstrap bool
	// RaftAdvertise is the address other nodes reach this one at, when it differs from RaftBind.
	RaftAdvertise string
	// Join lists cluster ports of existing members; an empty node that does not bootstrap asks them to add it.
	Join []string
	// TLS secures the cluster port (Raft and forwarding) with mutual TLS; required off loopback.
	TLS *TLSFiles
	// QuorumLossAfter is how long this node may be cut off from a leader before it sounds QuorumHooks
	// directly and reports itself degraded.
	QuorumLossAfter time.Duration
	// QuorumHooks are the local hooks told directly when quorum is lost (the operations room's siren).
	QuorumHooks []string
	// ElectionTimeout is how long followers wait without hearing from the leader before electing another
	// (Raft's heartbeat and election timeouts; the leader lease is half of it). It bounds how long alarms
	// wait when the leader dies.
	ElectionTimeout time.Duration
	Evaluator       breach.Config
	Drivers         []PluginConfig
	Hooks           []PluginConfig
	// PluginDir is where plugins without a path are looked for: PluginDir/skjold-<kind>-<name>.
	PluginDir string
	// HookFaultAfter is how long a hook may fail to deliver before a monitoring fault is raised.
	HookFaultAfter time.Duration
	// TrustPluginDir pins plugins found in PluginDir by hashing them at start instead of requiring
	// sha256 (development only: the dev command trusts the binaries built next to it).
	TrustPluginDir bool
}

// PluginConfig is one driver "name" {} or hook "name" {} block.
type PluginConfig struct {
	Name   string
	Path   string
	SHA256 string
	Config json.RawMessage // the config {} block as a JSON object
	Route  *Route          // hooks only: which alarm transitions it gets; nil means all
}

// Route subscribes a hook to part of the alarms: the technical desk to equipment alarms, a CAD to
// breaches. Empty lists match everything.
type Route struct {
	Classes     []alarm.Class
	Kinds       []alarm.Kind
	MinSeverity alarm.Severity
	Orders      []string
}

// Matches reports whether a transition of this alarm goes to the hook.
func (r *Route) Matches(a *alarm.Alarm) bool {
	if r == nil {
		return true
	}
	return (len(r.Classes) == 0 || slices.Contains(r.Classes, a.Class)) &&
		(len(r.Kinds) == 0 || slices.Contains(r.Kinds, a.Kind)) &&
		a.Severity.Rank() >= r.MinSeverity.Rank() &&
		(len(r.Orders) == 0 || slices.Contains(r.Orders, a.OrderID))
}

// Defaults for a fresh single node.
const (
	DefaultAPIListen = "127.0.0.1:8470"
	DefaultRaftBind  = "127.0.0.1:8471"
	DefaultDataDir   = "/var/lib/skjold"
	DefaultPluginDir = "/usr/lib/skjold/plugins"
)

type fileConfig struct {
	NodeID    string        `hcl:"node_id,optional"`
	DataDir   string        `hcl:"data_dir,optional"`
	PluginDir string        `hcl:"plugin_dir,optional"`
	HookFault string        `hcl:"hook_fault_after,optional"`
	API       *apiBlock     `hcl:"api,block"`
	Raft      *raftBlock    `hcl:"raft,block"`
	Evaluator *evalBlock    `hcl:"evaluator,block"`
	Drivers   []pluginBlock `hcl:"driver,block"`
	Hooks     []pluginBlock `hcl:"hook,block"`
}

type apiBlock struct {
	Listen string `hcl:"listen,optional"`
}

type raftBlock struct {
	Listen          string    `hcl:"listen,optional"`
	Advertise       string    `hcl:"advertise,optional"`
	Bootstrap       *bool     `hcl:"bootstrap,optional"`
	Join            []string  `hcl:"join,optional"`
	QuorumLossAfter string    `hcl:"quorum_loss_after,optional"`
	QuorumHooks     *[]string `hcl:"quorum_hooks,optional"`
	ElectionTimeout string    `hcl:"election_timeout,optional"`
	TLS             *TLSFiles `hcl:"tls,block"`
}

// TLSFiles names the cluster CA and this node's certificate and key, as `skjold cluster init` writes them.
type TLSFiles struct {
	CA   string `hcl:"ca"`
	Cert string `hcl:"cert"`
	Key  string `hcl:"key"`
}

type evalBlock struct {
	NoSignalAfter      string   `hcl:"no_signal_after,optional"`
	BatteryLowPct      *int     `hcl:"battery_low_pct,optional"`
	FixWindow          string   `hcl:"fix_window,optional"`
	ProtectedFixMaxAge string   `hcl:"protected_fix_max_age,optional"`
	NoFixAfter         string   `hcl:"no_fix_after,optional"`
	EvidenceBefore     string   `hcl:"evidence_before,optional"`
	LateAfter          string   `hcl:"late_after,optional"`
	ApproachLead       string   `hcl:"approach_lead,optional"`
	PoorAccuracyM      *float64 `hcl:"poor_accuracy_m,optional"`
	HysteresisM        *float64 `hcl:"hysteresis_m,optional"`
	ExitFixes          *int     `hcl:"exit_fixes,optional"`
	EscalateAfter      []string `hcl:"escalate_after,optional"`
	FastReportS        *int     `hcl:"fast_report_s,optional"`
	NormalReportS      *int     `hcl:"normal_report_s,optional"`
}

type pluginBlock struct {
	Name   string       `hcl:"name,label"`
	Path   string       `hcl:"path,optional"`
	SHA256 string       `hcl:"sha256,optional"`
	Route  *routeBlock  `hcl:"route,block"`
	Config *configBlock `hcl:"config,block"`
}

type routeBlock struct {
	Classes     []string `hcl:"classes,optional"`
	Kinds       []string `hcl:"kinds,optional"`
	MinSeverity string   `hcl:"min_severity,optional"`
	Orders      []string `hcl:"orders,optional"`
}

var knownKinds = []alarm.Kind{alarm.Breach, alarm.DynamicBreach, alarm.Warning, alarm.Approach, alarm.InclusionBreach,
	alarm.Tamper, alarm.NoSignal, alarm.NoFix, alarm.BatteryLow, alarm.DeviceFault, alarm.MonitoringFault}

func (b *routeBlock) route(where string) (*Route, error) {
	r := &Route{MinSeverity: alarm.Severity(b.MinSeverity), Orders: b.Orders}
	for _, c := range b.Classes {
		if c != string(alarm.Police) && c != string(alarm.Technical) {
			return nil, fmt.Errorf("%s: route.classes: %q is not police or technical", where, c)
		}
		r.Classes = append(r.Classes, alarm.Class(c))
	}
	for _, k := range b.Kinds {
		if !slices.Contains(knownKinds, alarm.Kind(k)) {
			return nil, fmt.Errorf("%s: route.kinds: %q is not an alarm kind", where, k)
		}
		r.Kinds = append(r.Kinds, alarm.Kind(k))
	}
	if b.MinSeverity != "" && r.MinSeverity.Rank() == 0 {
		return nil, fmt.Errorf("%s: route.min_severity: %q is not info, minor, major or critical", where, b.MinSeverity)
	}
	return r, nil
}

type configBlock struct {
	Body hcl.Body `hcl:",remain"`
}

// DefaultConfig is a single node with no plugins.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "node-1"
	}
	return Config{
		NodeID:    host,
		DataDir:   DefaultDataDir,
		APIListen: DefaultAPIListen,
		RaftBind:  DefaultRaftBind,
		Bootstrap: true,
		Evaluator: breach.DefaultConfig(),
		PluginDir: DefaultPluginDir,

		HookFaultAfter:  time.Minute,
		QuorumLossAfter: 10 * time.Second,
		QuorumHooks:     []string{"siren"},
		ElectionTimeout: 500 * time.Millisecond,
	}
}

// LoadConfig reads an HCL file over the defaults. Errors name the file, line and attribute.
func LoadConfig(path string) (Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, src, DefaultConfig())
}

// ParseConfig parses HCL source over base.
func ParseConfig(filename string, src []byte, base Config) (Config, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return Config{}, fmt.Errorf("config: %s", diags.Error())
	}
	var fc fileConfig
	if diags := gohcl.DecodeBody(f.Body, nil, &fc); diags.HasErrors() {
		return Config{}, fmt.Errorf("config: %s", diags.Error())
	}
	c := base
	if fc.NodeID != "" {
		c.NodeID = fc.NodeID
	}
	if fc.DataDir != "" {
		c.DataDir = fc.DataDir
	}
	if fc.PluginDir != "" {
		c.PluginDir = fc.PluginDir
	}
	if fc.HookFault != "" {
		d, err := time.ParseDuration(fc.HookFault)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("config: %s: hook_fault_after: %q is not a positive duration", filename, fc.HookFault)
		}
		c.HookFaultAfter = d
	}
	if fc.API != nil && fc.API.Listen != "" {
		c.APIListen = fc.API.Listen
	}
	if fc.Raft != nil {
		if fc.Raft.Listen != "" {
			c.RaftBind = fc.Raft.Listen
		}
		if fc.Raft.Bootstrap != nil {
			c.Bootstrap = *fc.Raft.Bootstrap
		}
		if fc.Raft.Advertise != "" {
			c.RaftAdvertise = fc.Raft.Advertise
		}
		if fc.Raft.Join != nil {
			c.Join = fc.Raft.Join
		}
		if fc.Raft.QuorumHooks != nil {
			c.QuorumHooks = *fc.Raft.QuorumHooks
		}
		if q := fc.Raft.QuorumLossAfter; q != "" {
			d, err := time.ParseDuration(q)
			if err != nil || d <= 0 {
				return Config{}, fmt.Errorf("config: %s: raft.quorum_loss_after: %q is not a positive duration", filename, q)
			}
			c.QuorumLossAfter = d
		}
		if e := fc.Raft.ElectionTimeout; e != "" {
			d, err := time.ParseDuration(e)
			if err != nil || d < 100*time.Millisecond || d > time.Minute {
				return Config{}, fmt.Errorf("config: %s: raft.election_timeout: %q is not a duration from 100ms to 1m", filename, e)
			}
			c.ElectionTimeout = d
		}
		if t := fc.Raft.TLS; t != nil {
			for _, f := range []struct{ name, v string }{{"ca", t.CA}, {"cert", t.Cert}, {"key", t.Key}} {
				if f.v == "" {
					return Config{}, fmt.Errorf("config: %s: raft.tls.%s: a file name is required", filename, f.name)
				}
			}
			c.TLS = t
		}
	}
	if e := fc.Evaluator; e != nil {
		for _, d := range []struct {
			name string
			src  string
			dst  *time.Duration
		}{
			{"no_signal_after", e.NoSignalAfter, &c.Evaluator.NoSignalAfter},
			{"fix_window", e.FixWindow, &c.Evaluator.FixWindow},
			{"protected_fix_max_age", e.ProtectedFixMaxAge, &c.Evaluator.ProtectedFixMaxAge},
			{"no_fix_after", e.NoFixAfter, &c.Evaluator.NoFixAfter},
			{"evidence_before", e.EvidenceBefore, &c.Evaluator.EvidenceBefore},
			{"late_after", e.LateAfter, &c.Evaluator.LateAfter},
			{"approach_lead", e.ApproachLead, &c.Evaluator.ApproachLead},
		} {
			if d.src == "" {
				continue
			}
			v, err := time.ParseDuration(d.src)
			if err != nil || v <= 0 {
				return Config{}, fmt.Errorf("config: %s: evaluator.%s: %q is not a positive duration such as \"5m\"", filename, d.name, d.src)
			}
			*d.dst = v
		}
		for _, m := range []struct {
			name string
			src  *float64
			dst  *float64
		}{{"poor_accuracy_m", e.PoorAccuracyM, &c.Evaluator.PoorAccuracyM}, {"hysteresis_m", e.HysteresisM, &c.Evaluator.HysteresisM}} {
			if m.src == nil {
				continue
			}
			if *m.src < 0 || *m.src > 10000 {
				return Config{}, fmt.Errorf("config: %s: evaluator.%s: %v is not in [0, 10000] metres", filename, m.name, *m.src)
			}
			*m.dst = *m.src
		}
		if e.EscalateAfter != nil {
			c.Evaluator.EscalateAfter = nil
			for i, v := range e.EscalateAfter {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return Config{}, fmt.Errorf("config: %s: evaluator.escalate_after[%d]: %q is not a positive duration", filename, i, v)
				}
				c.Evaluator.EscalateAfter = append(c.Evaluator.EscalateAfter, d)
			}
		}
		if e.ExitFixes != nil {
			if *e.ExitFixes < 1 || *e.ExitFixes > 20 {
				return Config{}, fmt.Errorf("config: %s: evaluator.exit_fixes: %d is not in [1, 20]", filename, *e.ExitFixes)
			}
			c.Evaluator.ExitFixes = *e.ExitFixes
		}
		for _, r := range []struct {
			name     string
			src, dst *int
		}{{"fast_report_s", e.FastReportS, &c.Evaluator.FastReportS}, {"normal_report_s", e.NormalReportS, &c.Evaluator.NormalReportS}} {
			if r.src == nil {
				continue
			}
			if *r.src < 0 || *r.src > 86400 {
				return Config{}, fmt.Errorf("config: %s: evaluator.%s: %d is not in [0, 86400] seconds", filename, r.name, *r.src)
			}
			*r.dst = *r.src
		}
		if e.BatteryLowPct != nil {
			if *e.BatteryLowPct < 0 || *e.BatteryLowPct > 95 {
				return Config{}, fmt.Errorf("config: %s: evaluator.battery_low_pct: %d is not in [0, 95]", filename, *e.BatteryLowPct)
			}
			c.Evaluator.BatteryLowPct = *e.BatteryLowPct
			c.Evaluator.BatteryRestorePct = *e.BatteryLowPct + 5
		}
	}
	var err error
	if c.Drivers, err = pluginConfigs(filename, "driver", fc.Drivers, c.Drivers); err != nil {
		return Config{}, err
	}
	if c.Hooks, err = pluginConfigs(filename, "hook", fc.Hooks, c.Hooks); err != nil {
		return Config{}, err
	}
	return c, nil
}

// pluginConfigs merges blocks over the base list: a block with the name of a base entry replaces it.
func pluginConfigs(filename, kind string, blocks []pluginBlock, base []PluginConfig) ([]PluginConfig, error) {
	out := append([]PluginConfig(nil), base...)
	seen := map[string]bool{}
	for _, b := range blocks {
		if seen[b.Name] {
			return nil, fmt.Errorf("config: %s: %s %q is declared twice", filename, kind, b.Name)
		}
		seen[b.Name] = true
		pc := PluginConfig{Name: b.Name, Path: b.Path, SHA256: b.SHA256, Config: json.RawMessage("{}")}
		if b.Route != nil {
			if kind != "hook" {
				return nil, fmt.Errorf("config: %s: %s %q: route applies to hooks only", filename, kind, b.Name)
			}
			r, err := b.Route.route(fmt.Sprintf("config: %s: hook %q", filename, b.Name))
			if err != nil {
				return nil, err
			}
			pc.Route = r
		}
		if b.Config != nil {
			js, err := bodyJSON(b.Config.Body)
			if err != nil {
				return nil, fmt.Errorf("config: %s: %s %q: config: %w", filename, kind, b.Name, err)
			}
			pc.Config = js
		}
		replaced := false
		for i := range out {
			if out[i].Name == b.Name {
				if pc.Path == "" {
					pc.Path, pc.SHA256 = out[i].Path, out[i].SHA256
				}
				out[i], replaced = pc, true
			}
		}
		if !replaced {
			out = append(out, pc)
		}
	}
	return out, nil
}

// bodyJSON turns a config { } block's attributes into a JSON object.
func bodyJSON(body hcl.Body) (json.RawMessage, error) {
	attrs, diags := body.JustAttributes()
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s", diags.Error())
	}
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	obj := map[string]json.RawMessage{}
	for _, n := range names {
		v, diags := attrs[n].Expr.Value(nil)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s", diags.Error())
		}
		js, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		obj[n] = js
	}
	return json.Marshal(obj)
}
