package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

// Config is the simulator's config block.
type Config struct {
	Tags []Tag
	// Fleet, when set, adds Fleet.Count random-walking tags (see fleet.go).
	Fleet *Fleet
	// Seed makes the position noise reproducible.
	Seed uint64
}

// Tag is one simulated tag or protected person's unit.
type Tag struct {
	Device     string
	Path       []LonLat // lon, lat; one point is a stationary unit
	SpeedMps   float64
	IntervalS  float64
	AccuracyM  float64
	BatteryPct int
	Loop       bool
	StartDelay float64 // seconds at the first point before walking
	NoiseM     float64 // standard deviation of the position noise, metres; 0 for none
}

// Defaults for optional tag attributes.
const (
	DefaultSpeedMps   = 1.4
	DefaultIntervalS  = 10
	DefaultAccuracyM  = 5
	DefaultBatteryPct = 100
	MinIntervalS      = 0.01
	maxDeviceLen      = 64
)

var tagAttrs = []string{"device", "path", "speed_mps", "interval_s", "accuracy_m", "battery_pct", "loop", "start_delay_s", "noise_m"}

// Schema describes the config block.
func Schema() []*pluginpb.ConfigField {
	return []*pluginpb.ConfigField{
		{Name: "tags", Type: "list", Description: "scripted devices: objects with " + strings.Join(tagAttrs, ", ") +
			`; path is a list of [lon, lat] points, one point for a stationary unit. tags, fleet or both are required`},
		{Name: "fleet", Type: "object", Description: "random fleet: an object with " + strings.Join(fleetAttrs, ", ") +
			`; count and centre ([lon, lat]) are required, profile is "walking" (default) or "driving"`},
		{Name: "seed", Type: "number", Description: "seed of the position noise", DefaultJson: "1"},
	}
}

type errs struct{ list []*pluginpb.ConfigError }

func (e *errs) add(field, format string, args ...any) {
	e.list = append(e.list, sdk.ConfigErr(field, format, args...))
}

func object(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.TrimSpace(raw)[0] != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false
	}
	return m, true
}

func number(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false // not a JSON number (json.Number would also take a quoted one)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var n json.Number
	if err := d.Decode(&n); err != nil {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil && !math.IsInf(f, 0)
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ParseConfig checks the config block and fills defaults. It returns every problem, each with the path of
// its attribute, e.g. "tags[0].path[1]".
func ParseConfig(raw []byte) (Config, []*pluginpb.ConfigError) {
	cfg := Config{Seed: 1}
	var e errs
	top, ok := object(raw)
	if !ok {
		e.add("", "the configuration must be a JSON object")
		return cfg, e.list
	}
	for _, k := range sortedKeys(top) {
		v := top[k]
		switch k {
		case "seed":
			f, ok := number(v)
			if !ok || f < 0 || f != math.Trunc(f) || f > 1<<53 {
				e.add("seed", "must be a whole number from 0 to 2^53")
			} else {
				cfg.Seed = uint64(f)
			}
		case "tags":
			var list []json.RawMessage
			if err := json.Unmarshal(v, &list); err != nil || bytes.TrimSpace(v)[0] != '[' {
				e.add("tags", "must be a list of tag objects")
				continue
			}
			if len(list) == 0 {
				e.add("tags", "must name at least one tag")
			}
			seen := map[string]int{}
			for i, t := range list {
				tag := parseTag(fmt.Sprintf("tags[%d]", i), t, &e)
				if tag.Device != "" {
					if j, dup := seen[tag.Device]; dup {
						e.add(fmt.Sprintf("tags[%d].device", i), "%q is already the device of tags[%d]", tag.Device, j)
					}
					seen[tag.Device] = i
				}
				cfg.Tags = append(cfg.Tags, tag)
			}
		case "fleet":
			if f, ok := parseFleet("fleet", v, &e); ok {
				cfg.Fleet = &f
			}
		default:
			e.add(k, "unknown attribute (known: tags, fleet, seed)")
		}
	}
	_, hasTags := top["tags"]
	_, hasFleet := top["fleet"]
	if !hasTags && !hasFleet {
		e.add("tags", "is required (or a fleet)")
	}
	if cfg.Fleet != nil {
		for i, t := range cfg.Tags {
			if strings.HasPrefix(t.Device, cfg.Fleet.IDPrefix) {
				var n int
				if _, err := fmt.Sscanf(strings.TrimPrefix(t.Device, cfg.Fleet.IDPrefix), "%04d", &n); err == nil &&
					n >= 1 && n <= cfg.Fleet.Count && FleetDevice(*cfg.Fleet, n-1) == t.Device {
					e.add(fmt.Sprintf("tags[%d].device", i), "%q is also a device of the fleet (id_prefix %q)", t.Device, cfg.Fleet.IDPrefix)
				}
			}
		}
	}
	return cfg, e.list
}

func parseTag(at string, raw json.RawMessage, e *errs) Tag {
	t := Tag{SpeedMps: DefaultSpeedMps, IntervalS: DefaultIntervalS, AccuracyM: DefaultAccuracyM, BatteryPct: DefaultBatteryPct}
	m, ok := object(raw)
	if !ok {
		e.add(at, "must be an object")
		return t
	}
	num := func(key string, min, max float64, dst *float64) {
		v, present := m[key]
		if !present {
			return
		}
		f, ok := number(v)
		switch {
		case !ok:
			e.add(at+"."+key, "must be a number")
		case f < min || f > max:
			e.add(at+"."+key, "%v is out of range [%v, %v]", f, min, max)
		default:
			*dst = f
		}
	}
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "device":
			if err := json.Unmarshal(v, &t.Device); err != nil {
				e.add(at+".device", "must be a string")
			} else if t.Device == "" {
				e.add(at+".device", "must not be empty")
			} else if len(t.Device) > maxDeviceLen {
				e.add(at+".device", "is %d bytes long, at most %d are allowed", len(t.Device), maxDeviceLen)
			}
		case "path":
			t.Path = parsePath(at+".path", v, e)
		case "speed_mps":
			num(k, 0, 350, &t.SpeedMps)
		case "interval_s":
			num(k, MinIntervalS, 86400, &t.IntervalS)
		case "accuracy_m":
			num(k, 0, 100000, &t.AccuracyM)
		case "start_delay_s":
			num(k, 0, 86400, &t.StartDelay)
		case "noise_m":
			num(k, 0, 1000, &t.NoiseM)
		case "battery_pct":
			f, ok := number(v)
			if !ok || f != math.Trunc(f) {
				e.add(at+".battery_pct", "must be a whole number")
			} else if f < 0 || f > 100 {
				e.add(at+".battery_pct", "%v is out of range [0, 100]", f)
			} else {
				t.BatteryPct = int(f)
			}
		case "loop":
			if err := json.Unmarshal(v, &t.Loop); err != nil {
				e.add(at+".loop", "must be true or false")
			}
		default:
			e.add(at+"."+k, "unknown attribute (known: %s)", strings.Join(tagAttrs, ", "))
		}
	}
	if _, ok := m["device"]; !ok {
		e.add(at+".device", "is required")
	}
	if _, ok := m["path"]; !ok {
		e.add(at+".path", "is required")
	}
	if len(t.Path) > 1 && t.SpeedMps == 0 {
		e.add(at+".speed_mps", "must be above 0 for a path of more than one point")
	}
	return t
}

func parsePath(at string, raw json.RawMessage, e *errs) []LonLat {
	var pts []json.RawMessage
	if err := json.Unmarshal(raw, &pts); err != nil || bytes.TrimSpace(raw)[0] != '[' {
		e.add(at, "must be a list of [lon, lat] points")
		return nil
	}
	if len(pts) == 0 {
		e.add(at, "must have at least one point")
		return nil
	}
	var out []LonLat
	for j, p := range pts {
		f := fmt.Sprintf("%s[%d]", at, j)
		var xy []json.RawMessage
		if err := json.Unmarshal(p, &xy); err != nil || bytes.TrimSpace(p)[0] != '[' || len(xy) != 2 {
			e.add(f, "must be [lon, lat]: two numbers")
			continue
		}
		lon, ok1 := number(xy[0])
		lat, ok2 := number(xy[1])
		switch {
		case !ok1 || !ok2:
			e.add(f, "must be [lon, lat]: two numbers")
		case lon < -180 || lon > 180:
			e.add(f, "longitude %v is out of range [-180, 180]", lon)
		case lat < -90 || lat > 90:
			e.add(f, "latitude %v is out of range [-90, 90] (points are [lon, lat])", lat)
		default:
			out = append(out, LonLat{lon, lat})
		}
	}
	if len(out) != len(pts) {
		return nil
	}
	return out
}
