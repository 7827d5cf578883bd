package serialrx

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport"
)

// Config is the driver's config block.
type Config struct {
	// Port is the base station's serial port, preferably /dev/serial/by-id/....
	Port string
	// Baud is the line speed: 4800 is the NMEA 0183 standard rate; many receivers use 9600.
	Baud int
	// AccuracyM is the horizontal accuracy given to a valid fix (RMC has no HDOP).
	AccuracyM float64
}

// Defaults.
const (
	DefaultBaud      = 4800
	DefaultAccuracyM = 15.0
)

// Schema describes the config block.
func Schema() []*pluginpb.ConfigField {
	return []*pluginpb.ConfigField{
		{Name: "port", Type: "string", Required: true, Description: "serial port of the base station, preferably /dev/serial/by-id/..."},
		{Name: "baud", Type: "number", Description: "line speed (4800 is the NMEA 0183 standard; 9600 is common)", DefaultJson: "4800"},
		{Name: "accuracy_m", Type: "number", Description: "horizontal accuracy in metres assumed for a valid fix (RMC carries none)", DefaultJson: "15"},
	}
}

// ParseConfig checks the config block and fills the defaults; every problem names its attribute.
func ParseConfig(raw []byte) (Config, []*pluginpb.ConfigError) {
	cfg := Config{Baud: DefaultBaud, AccuracyM: DefaultAccuracyM}
	fields, keys, cerr := sdk.ConfigFields(raw)
	if cerr != nil {
		return cfg, []*pluginpb.ConfigError{cerr}
	}
	var errs []*pluginpb.ConfigError
	add := func(field, format string, args ...any) { errs = append(errs, sdk.ConfigErr(field, format, args...)) }
	for _, k := range keys {
		v := fields[k]
		switch k {
		case "port":
			if err := json.Unmarshal(v, &cfg.Port); err != nil {
				add("port", "must be a string (a path such as /dev/serial/by-id/usb-...)")
			} else if cfg.Port == "" {
				add("port", "must not be empty")
			} else if !filepath.IsAbs(cfg.Port) {
				add("port", "%q is not an absolute path", cfg.Port)
			}
		case "baud":
			if f, ok := number(v); !ok || f != math.Trunc(f) || f > math.MaxInt32 {
				add("baud", "must be a whole number")
			} else if !serialport.ValidBaud(int(f)) {
				add("baud", "%v is not a supported line speed (e.g. 4800, 9600, 19200)", f)
			} else {
				cfg.Baud = int(f)
			}
		case "accuracy_m":
			if f, ok := number(v); !ok || f < 1 || f > 10000 {
				add("accuracy_m", "must be a number of metres from 1 to 10000")
			} else {
				cfg.AccuracyM = f
			}
		default:
			add(k, "unknown attribute (known: port, baud, accuracy_m)")
		}
	}
	if _, ok := fields["port"]; !ok {
		add("port", "is required")
	}
	return cfg, errs
}

func number(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}
