// Package sim is the simulator driver: scripted tags that walk along a path at a set speed and report a
// fix at a set interval, for demonstrations, the dev stand, and tests of everything behind a driver. The
// movement maths (Route, Distance, Bearing) is plain code with table tests; Sim wires it to the SDK.
package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

// Version is the driver's version, reported in Info.
const Version = "0.1.0"

// maxPending bounds the observations kept for resending while the host is away.
const maxPending = 1000

// retryDelay is the pause before sending an unacknowledged batch again.
const retryDelay = 20 * time.Millisecond

// The simulator's metrics, exported by the node as skjold_plugin_sim_*.
var (
	metricBatches = sdk.NewCounter("sim_batches_total",
		"Observation batches by outcome: sent (each attempt), acked (committed), rejected (refused by the node), resent.", "result")
	metricObservations = sdk.NewCounter("sim_observations_total", "Observations generated.")
	metricCommands     = sdk.NewCounter("sim_commands_total", "Device commands accepted, by command kind.", "command")
	metricTags         = sdk.NewGauge("sim_tags", "Simulated tags configured, fleet included.")
	metricLate         = sdk.NewCounter("sim_late_fixes_total", "Fixes held during a coverage gap and sent late.")
)

// Options tune a Sim; zero values give the defaults.
type Options struct {
	Logger hclog.Logger
	Now    func() time.Time
}

// Sim implements sdk.Driver.
type Sim struct {
	log hclog.Logger
	now func() time.Time

	mu        sync.Mutex
	cfg       Config
	tags      []Tag     // cfg.Tags, then the fleet's tags
	walkers   []*Walker // per tag: its random walk (fleet tags), nil for a scripted tag
	gaps      []gapSchedule
	held      [][]*pluginpb.Observation // per tag: fixes taken during a coverage gap, not yet sent
	routes    []Route
	rngs      []*rand.Rand
	intervals []time.Duration
	index     map[string]int
	commands  map[string]int
	acked     int
	rejected  int
	resent    int
	wake      chan struct{}
}

// New returns an unconfigured simulator.
func New(opts Options) *Sim {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Sim{log: opts.Logger, now: opts.Now, wake: make(chan struct{}, 1),
		commands: map[string]int{"vibrate": 0, "report_interval": 0, "warn": 0}}
}

// Info names the driver.
func (s *Sim) Info() sdk.Info { return sdk.Info{Name: "sim", Version: Version} }

// ConfigSchema describes the config block.
func (s *Sim) ConfigSchema() []*pluginpb.ConfigField { return Schema() }

// Configure checks the config block.
func (s *Sim) Configure(raw []byte, _ string) []*pluginpb.ConfigError {
	cfg, errs := ParseConfig(raw)
	if len(errs) > 0 {
		return errs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
	s.tags = append([]Tag(nil), cfg.Tags...)
	s.walkers = make([]*Walker, len(cfg.Tags))
	s.gaps = make([]gapSchedule, len(cfg.Tags))
	if f := cfg.Fleet; f != nil {
		for j := 0; j < f.Count; j++ {
			s.tags = append(s.tags, Tag{Device: FleetDevice(*f, j), IntervalS: f.IntervalS, AccuracyM: f.AccuracyM,
				NoiseM: f.NoiseM, BatteryPct: DefaultBatteryPct})
			s.walkers = append(s.walkers, NewWalker(cfg.Seed, j, *f))
			s.gaps = append(s.gaps, gapSchedule{every: f.GapEveryS, gap: f.GapS, phase: gapPhase(cfg.Seed, j, f.GapEveryS)})
		}
	}
	s.held = make([][]*pluginpb.Observation, len(s.tags))
	s.routes, s.rngs, s.intervals = nil, nil, nil
	s.index = map[string]int{}
	for i, t := range s.tags {
		s.routes = append(s.routes, NewRoute(t.Path, t.Loop))
		s.rngs = append(s.rngs, rand.New(rand.NewPCG(cfg.Seed, uint64(i))))
		s.intervals = append(s.intervals, seconds(t.IntervalS))
		s.index[t.Device] = i
	}
	metricTags.Set(float64(len(s.tags)))
	return nil
}

// gapSchedule is a tag's coverage gaps (none when every is 0).
type gapSchedule struct{ every, gap, phase float64 }

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// Health summarises what the simulator did.
func (s *Sim) Health() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kinds := make([]string, 0, len(s.commands))
	for k := range s.commands {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var cmds []string
	for _, k := range kinds {
		cmds = append(cmds, fmt.Sprintf("%s=%d", k, s.commands[k]))
	}
	return true, fmt.Sprintf("%d tags; batches acked=%d rejected=%d resent=%d; commands %s",
		len(s.tags), s.acked, s.rejected, s.resent, strings.Join(cmds, " "))
}

// Devices lists the configured devices.
func (s *Sim) Devices() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.tags))
	for _, t := range s.tags {
		out = append(out, t.Device)
	}
	return out
}

// Command accepts vibrate, warn and report_interval (args interval_s) for a configured device.
func (s *Sim) Command(_ context.Context, cmd *pluginpb.DeviceCommand) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[cmd.GetDevice()]
	if !ok {
		return fmt.Errorf("unknown device %q", cmd.GetDevice())
	}
	switch cmd.GetKind() {
	case "vibrate", "warn":
	case "report_interval":
		raw, ok := cmd.GetArgs()["interval_s"]
		if !ok {
			return errors.New(`report_interval: argument "interval_s" is required`)
		}
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(f) || f < MinIntervalS || f > 86400 {
			return fmt.Errorf("report_interval: interval_s %q is not a number of seconds in [%v, 86400]", raw, MinIntervalS)
		}
		s.intervals[i] = seconds(f)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	default:
		return fmt.Errorf("unknown command kind %q (known: vibrate, report_interval, warn)", cmd.GetKind())
	}
	s.commands[cmd.GetKind()]++
	metricCommands.Inc(cmd.GetKind())
	s.log.Info("device command", "id", cmd.GetId(), "device", cmd.GetDevice(), "kind", cmd.GetKind(), "args", cmd.GetArgs())
	return nil
}

// Position is where a tag is at a moment.
type Position struct {
	At         LonLat
	SpeedMps   float64
	HeadingDeg float64
	Moving     bool
}

// TagPosition is where tag t, walking route r, is elapsed after the simulation started.
func TagPosition(t Tag, r Route, elapsed time.Duration) Position {
	walk := elapsed.Seconds() - t.StartDelay
	if walk < 0 {
		walk = 0
	}
	p, h, moving := r.At(walk * t.SpeedMps)
	if walk == 0 {
		moving = false
	}
	pos := Position{At: p, Moving: moving}
	if moving {
		pos.SpeedMps, pos.HeadingDeg = t.SpeedMps, h
	}
	return pos
}

// observation builds tag i's report at now. Call with s.mu held.
func (s *Sim) observation(i int, start, now time.Time) *pluginpb.Observation {
	t := s.tags[i]
	var pos Position
	if w := s.walkers[i]; w != nil {
		pos = w.At(now.Sub(start).Seconds())
	} else {
		pos = TagPosition(t, s.routes[i], now.Sub(start))
	}
	at := pos.At
	if t.NoiseM > 0 {
		rng := s.rngs[i]
		at = Offset(at, rng.NormFloat64()*t.NoiseM, rng.NormFloat64()*t.NoiseM)
	}
	speed, battery, charging := pos.SpeedMps, int32(t.BatteryPct), false
	o := &pluginpb.Observation{
		Device: t.Device, Time: sdk.Timestamp(now), HasFix: true,
		Lat: at.Lat(), Lon: at.Lon(), AccuracyM: t.AccuracyM,
		SpeedMps: &speed, BatteryPct: &battery, Strap: pluginpb.Strap_STRAP_CLOSED, Charging: &charging,
		Source: "sim",
	}
	if pos.Moving {
		h := pos.HeadingDeg
		o.HeadingDeg = &h
	}
	return o
}

// Run reports every tag at its interval until ctx ends. Batches the host did not acknowledge (its stream
// ended) are sent again; batches it rejected are dropped.
func (s *Sim) Run(ctx context.Context, emit sdk.Emitter) error {
	start := s.now()
	s.mu.Lock()
	if len(s.tags) == 0 {
		s.mu.Unlock()
		return errors.New("not configured: no tags")
	}
	next := make([]time.Time, len(s.tags))
	for i := range next {
		next[i] = start
	}
	s.mu.Unlock()
	var pending []*pluginpb.Observation
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake: // an interval changed: reschedule from now
			now := s.now()
			s.mu.Lock()
			for i := range next {
				if n := now.Add(s.intervals[i]); n.Before(next[i]) {
					next[i] = n
				}
			}
			s.mu.Unlock()
		case <-timer.C:
			now := s.now()
			s.mu.Lock()
			for i := range next {
				if next[i].After(now) {
					continue
				}
				o := s.observation(i, start, now)
				metricObservations.Inc()
				if g := s.gaps[i]; InGap(g.every, g.gap, g.phase, now.Sub(start).Seconds()) {
					// No coverage: the tag keeps the fix and sends it when it is back, with its fix time.
					if len(s.held[i]) < maxPending {
						s.held[i] = append(s.held[i], o)
					}
				} else {
					if n := len(s.held[i]); n > 0 {
						pending = append(pending, s.held[i]...)
						metricLate.Add(float64(n))
						s.held[i] = nil
					}
					pending = append(pending, o)
				}
				next[i] = next[i].Add(s.intervals[i])
				if next[i].Before(now) {
					next[i] = now.Add(s.intervals[i]) // fell behind (the host was away): do not burst
				}
			}
			s.mu.Unlock()
			if limit := maxPending + len(next); len(pending) > limit {
				pending = pending[len(pending)-limit:]
			}
			for len(pending) > 0 {
				metricBatches.Inc("sent")
				err := emit.Emit(ctx, pending)
				if ctx.Err() != nil {
					return nil
				}
				var rej *sdk.RejectedError
				s.mu.Lock()
				switch {
				case err == nil:
					s.acked++
					metricBatches.Inc("acked")
					pending = nil
				case errors.As(err, &rej):
					s.rejected++
					metricBatches.Inc("rejected")
					s.log.Warn("batch rejected", "batch", rej.Batch, "reason", rej.Reason)
					pending = nil
				default:
					s.resent++ // not acknowledged: keep it and send it again
					metricBatches.Inc("resent")
				}
				s.mu.Unlock()
				if err != nil && rej == nil {
					select { // Emit waits for the host's next stream; this only bounds a tight failure loop
					case <-ctx.Done():
						return nil
					case <-time.After(retryDelay):
					}
				}
			}
		}
		s.mu.Lock()
		earliest := next[0]
		for _, n := range next[1:] {
			if n.Before(earliest) {
				earliest = n
			}
		}
		s.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(earliest.Sub(s.now()))
	}
}

var _ sdk.Driver = (*Sim)(nil)
