package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skjold-alarm/skjold/agent"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/core/order"
	"github.com/skjold-alarm/skjold/core/state"
	"github.com/skjold-alarm/skjold/plugins/hooks/siren/lcus"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport/ptypair"
)

// The demo: a protected person at home in Oslo, an exclusion zone around the home, and a simulated
// offender who walks (briskly) from 390 m south of it straight in. Warning after about 20 s, dynamic
// warning after about 35 s, breach after about 45 s, dynamic breach after about 50 s.
const (
	demoOrderID   = "ord-demo"
	demoOffender  = "864717003283581"
	demoProtected = "unit-0017"
)

var demoHome = [][]float64{{10.75, 59.91}, {10.76, 59.91}, {10.76, 59.92}, {10.75, 59.91}}

func demoOrder(now time.Time) order.Order {
	home, _ := json.Marshal([][][]float64{demoHome})
	work, _ := json.Marshal([]float64{10.70, 59.93})
	until := now.AddDate(1, 0, 0)
	return order.Order{
		ID:          demoOrderID,
		Reference:   "DEMO-24-123456AST-TOSL/05",
		Basis:       order.Court,
		ValidFrom:   now.Add(-time.Minute),
		ValidUntil:  &until,
		Offender:    order.Party{Device: demoOffender},
		Protected:   []order.Party{{Device: demoProtected}},
		DynamicZone: &order.DynamicZone{RadiusM: 100, WarningM: 250},
		Zones: []order.Zone{
			{ID: "home", Kind: order.Exclusion, WarningM: 200, Geometry: order.Geometry{Type: "Polygon", Coordinates: home}},
			{ID: "work", Kind: order.Exclusion, WarningM: 200, RadiusM: 300, Geometry: order.Geometry{Type: "Point", Coordinates: work}},
		},
	}
}

func demoSimConfig() json.RawMessage {
	cfg := map[string]any{
		"seed": 1,
		"tags": []map[string]any{
			{"device": demoOffender, "path": [][]float64{{10.755, 59.9065}, {10.755, 59.9125}}, "speed_mps": 9, "interval_s": 2, "accuracy_m": 8, "battery_pct": 80},
			{"device": demoProtected, "path": [][]float64{{10.7553, 59.9115}}, "interval_s": 5, "accuracy_m": 10, "battery_pct": 95},
		},
	}
	b, _ := json.Marshal(cfg)
	return b
}

func devCmd() *cobra.Command {
	var configPath, dataDir, apiListen, pluginDir string
	var reset, noDemo bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a single-node development appliance with a simulated tag and a siren stand-in",
		Long: `dev runs one node with the built-in plugins next to this binary: the simulator driver walking a
demo offender toward the protected person's home, and the siren hook switching a relay. With no relay
board configured, a pseudo-terminal stands in for it and the terminal shows SIREN ON / SIREN OFF.
The data directory survives restarts; --reset starts from nothing.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDev(cmd.OutOrStdout(), configPath, dataDir, apiListen, pluginDir, reset, !noDemo)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "HCL file with driver/hook blocks and settings over the dev defaults")
	cmd.Flags().StringVar(&dataDir, "data", ".skjold-dev", "data directory")
	cmd.Flags().StringVar(&apiListen, "api", agent.DefaultAPIListen, "API listen address")
	cmd.Flags().StringVar(&pluginDir, "plugins", "", "directory of plugin binaries (default: next to this binary)")
	cmd.Flags().BoolVar(&reset, "reset", false, "delete the data directory first")
	cmd.Flags().BoolVar(&noDemo, "no-demo", false, "do not create the demo order or simulate its tags")
	return cmd
}

func runDev(out io.Writer, configPath, dataDir, apiListen, pluginDir string, reset, demo bool) error {
	if pluginDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		pluginDir = filepath.Dir(exe)
	}
	if reset {
		if err := os.RemoveAll(dataDir); err != nil {
			return err
		}
	}
	cfg := agent.DefaultConfig()
	cfg.NodeID = "node-1"
	cfg.DataDir = dataDir
	cfg.APIListen = apiListen
	cfg.RaftBind = "127.0.0.1:0"
	cfg.PluginDir = pluginDir
	cfg.TrustPluginDir = true
	// The demo's simulated tags report every 2 s; near a zone the node asks for that rate, not the
	// 10 s a real tag would be asked for (a config file can set these).
	cfg.Evaluator.FastReportS, cfg.Evaluator.NormalReportS = 2, 2
	if demo {
		cfg.Drivers = []agent.PluginConfig{{Name: "sim", Config: demoSimConfig()}}
	}
	cfg.Hooks = []agent.PluginConfig{{Name: "siren", Config: json.RawMessage(`{}`)}}
	if configPath != "" {
		src, err := os.ReadFile(configPath)
		if err != nil {
			return err
		}
		if cfg, err = agent.ParseConfig(configPath, src, cfg); err != nil {
			return err
		}
	}
	// A siren without a port gets a pseudo-terminal that plays the relay board.
	var relay *ptypair.Pair
	for i, h := range cfg.Hooks {
		if h.Name != "siren" {
			continue
		}
		var sc map[string]any
		if err := json.Unmarshal(h.Config, &sc); err != nil {
			return fmt.Errorf("hook siren config: %w", err)
		}
		if _, ok := sc["port"]; ok {
			continue
		}
		var err error
		if relay, err = ptypair.Open(); err != nil {
			return fmt.Errorf("relay stand-in: %w", err)
		}
		defer relay.Close()
		sc["port"], sc["protocol"] = relay.Path, "lcus"
		cfg.Hooks[i].Config, _ = json.Marshal(sc)
		fmt.Fprintf(out, "siren: no relay board configured; a stand-in relay listens on %s\n", relay.Path)
	}
	// Alarms, including monitoring faults, are printed below; the log shows only errors.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	n, err := agent.Start(cfg, log)
	if err != nil {
		return err
	}
	defer n.Stop()
	if relay != nil {
		go showRelay(out, relay.Master)
	}
	events, cancel := n.API().Hub().Subscribe()
	defer cancel()
	go func() {
		for it := range events {
			if c := it.Command; c != nil {
				fmt.Fprintf(out, "%s  COMMAND      %-16s to %s %v  (for %s)\n", c.At.Local().Format("15:04:05"), c.Kind, c.Device, c.Args, c.Reason)
				continue
			}
			fmt.Fprintln(out, FormatTransition(it.Change.Alarm, it.Change.Transition, it.Change.ActivePolice))
		}
	}()
	ctx, cancelWait := context.WithTimeout(context.Background(), 30*time.Second)
	err = n.WaitLeader(ctx)
	cancelWait()
	if err != nil {
		return fmt.Errorf("no leader: %w", err)
	}
	if demo {
		if err := ensureDemoOrder(n); err != nil {
			return err
		}
		fmt.Fprintf(out, "demo: order %s — offender %s walks toward the protected person's home; a warning and a breach follow within a minute\n", demoOrderID, demoOffender)
	}
	fmt.Fprintf(out, "skjold dev: node %s, API http://%s/v1 (alarms: http://%s/v1/alarms), data in %s — Ctrl-C stops\n", cfg.NodeID, n.APIAddr(), n.APIAddr(), dataDir)
	waitSignal()
	return nil
}

// ensureDemoOrder creates the demo order unless a node restarted on the same data already has it.
func ensureDemoOrder(n *agent.Node) error {
	exists := false
	n.Machine().View(func(ev *breach.Evaluator) {
		o, ok := ev.Order(demoOrderID)
		exists = ok && o.State == order.Active
	})
	if exists {
		return nil
	}
	entry, err := state.PutOrder(breach.PutOrder{At: n.Now(), By: "dev", Order: demoOrder(n.Now())})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := n.Propose(ctx, entry)
	if err != nil {
		return fmt.Errorf("demo order: %w", err)
	}
	if e, ok := res.(error); ok {
		return fmt.Errorf("demo order: %w", e)
	}
	return nil
}

// showRelay prints the siren's state from the frames the hook writes to the stand-in relay. A pulsing
// siren switches every half second, so OFF is shown only when the relay has stayed off for a while.
func showRelay(out io.Writer, r io.Reader) {
	dec := lcus.NewDecoder(r)
	frames := make(chan lcus.Frame)
	go func() {
		defer close(frames)
		for {
			f, err := dec.Next()
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return
			}
			if err != nil {
				if strings.Contains(err.Error(), "input/output error") {
					return
				}
				continue
			}
			frames <- f
		}
	}()
	sounding := false
	var quiet <-chan time.Time
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				return
			}
			switch {
			case f.On && !sounding:
				sounding = true
				fmt.Fprintf(out, "%s  SIREN ON   (relay channel %d)\n", time.Now().Format("15:04:05"), f.Channel)
			case f.On:
				quiet = nil
			case sounding && quiet == nil:
				quiet = time.After(1500 * time.Millisecond)
			}
			if f.On {
				quiet = nil
			}
		case <-quiet:
			quiet, sounding = nil, false
			fmt.Fprintf(out, "%s  SIREN OFF\n", time.Now().Format("15:04:05"))
		}
	}
}
