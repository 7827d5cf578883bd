package modem

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
	"github.com/skjold-alarm/skjold/plugins/sdk/serialport"
)

// Config is the driver's config block.
type Config struct {
	Port        string
	Baud        int
	PIN         string
	SMSC        string
	Devices     map[string]string // phone number -> device id
	SignalMin   int
	SendRetries int
	PollS       float64
	AccuracyM   float64
	Password    string
	Commands    map[string]string // command kind -> text template
}

// Defaults.
const (
	DefaultBaud        = 115200
	DefaultSignalMin   = 5
	DefaultSendRetries = 3
	DefaultPollS       = 30
	DefaultAccuracyM   = 30
	DefaultPassword    = "123456"
)

// DefaultCommands are the texts sent per command kind, TK103 style. {name} is replaced by the command's
// argument of that name, {name:3} pads it with zeros to 3 digits, {password} is the config's password.
var DefaultCommands = map[string]string{
	"report_interval": "fix{interval_s:3}s***n{password}",
	"vibrate":         "vibrate{password}",
	"warn":            "{message}",
}

// DefaultWarnMessage is sent by "warn" when the command has no "message" argument.
const DefaultWarnMessage = "SKJOLD: The person you are protected from may be near. Go somewhere safe and call 112."

var attrs = []string{"port", "baud", "pin", "smsc", "devices", "signal_min", "send_retries", "poll_s", "accuracy_m", "password", "commands"}

// Schema describes the config block.
func Schema() []*pluginpb.ConfigField {
	return []*pluginpb.ConfigField{
		{Name: "port", Type: "string", Required: true, Description: "serial port of the GSM modem, preferably /dev/serial/by-id/..."},
		{Name: "baud", Type: "number", Description: "line speed", DefaultJson: "115200"},
		{Name: "pin", Type: "string", Description: "SIM PIN, sent when the SIM asks for it (never logged)"},
		{Name: "smsc", Type: "string", Description: "service centre number put in sent messages; empty uses the SIM's"},
		{Name: "devices", Type: "object", Required: true, Description: `phone number -> device id, {"+4791234567": "tk103-0001"}, or a list of {"number": ..., "device": ...}; texts from other numbers are counted and dropped`},
		{Name: "signal_min", Type: "number", Description: "AT+CSQ signal below this (0-31) is a fault", DefaultJson: "5"},
		{Name: "send_retries", Type: "number", Description: "retries of a send answered with +CMS ERROR", DefaultJson: "3"},
		{Name: "poll_s", Type: "number", Description: "seconds between signal and registration checks", DefaultJson: "30"},
		{Name: "accuracy_m", Type: "number", Description: "accuracy given to positions from texts, metres", DefaultJson: "30"},
		{Name: "password", Type: "string", Description: "device password used in command texts ({password})", DefaultJson: `"123456"`},
		{Name: "commands", Type: "object", Description: "command kind -> text template, overriding the TK103 defaults (report_interval, vibrate, warn)"},
	}
}

var reNumber = regexp.MustCompile(`^\+?[0-9]{3,20}$`)

// NormalizeNumber removes spaces, dashes and dots and turns a leading 00 into +.
func NormalizeNumber(n string) string {
	n = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' {
			return -1
		}
		return r
	}, n)
	if strings.HasPrefix(n, "00") {
		n = "+" + n[2:]
	}
	return n
}

func wholeNumber(v json.RawMessage) (float64, bool) {
	f, ok := number(v)
	return f, ok && f == math.Trunc(f)
}

func number(v json.RawMessage) (float64, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// ParseConfig checks a config block and fills the defaults. It returns every problem, each naming its field.
func ParseConfig(raw []byte) (Config, []*pluginpb.ConfigError) {
	cfg := Config{Baud: DefaultBaud, SignalMin: DefaultSignalMin, SendRetries: DefaultSendRetries, PollS: DefaultPollS,
		AccuracyM: DefaultAccuracyM, Password: DefaultPassword, Devices: map[string]string{}, Commands: map[string]string{}}
	for k, v := range DefaultCommands {
		cfg.Commands[k] = v
	}
	fields, keys, cerr := sdk.ConfigFields(raw)
	if cerr != nil {
		return cfg, []*pluginpb.ConfigError{cerr}
	}
	var errs []*pluginpb.ConfigError
	add := func(f, format string, args ...any) { errs = append(errs, sdk.ConfigErr(f, format, args...)) }
	str := func(k string, v json.RawMessage, dst *string) bool {
		if err := json.Unmarshal(v, dst); err != nil {
			add(k, "must be a string")
			return false
		}
		return true
	}
	for _, k := range keys {
		v := fields[k]
		switch k {
		case "port":
			if str(k, v, &cfg.Port) {
				if cfg.Port == "" {
					add(k, "must not be empty")
				} else if !filepath.IsAbs(cfg.Port) {
					add(k, "%q is not an absolute path", cfg.Port)
				}
			}
		case "baud":
			if n, ok := wholeNumber(v); !ok {
				add(k, "must be a whole number")
			} else if !serialport.ValidBaud(int(n)) {
				add(k, "%v is not a supported line speed (e.g. 9600, 115200)", n)
			} else {
				cfg.Baud = int(n)
			}
		case "pin":
			if str(k, v, &cfg.PIN) && cfg.PIN != "" && !regexp.MustCompile(`^[0-9]{4,8}$`).MatchString(cfg.PIN) {
				add(k, "must be 4 to 8 digits") // the value is never repeated
			}
		case "smsc":
			if str(k, v, &cfg.SMSC) && cfg.SMSC != "" {
				cfg.SMSC = NormalizeNumber(cfg.SMSC)
				if !reNumber.MatchString(cfg.SMSC) {
					add(k, "%q is not a phone number", cfg.SMSC)
				}
			}
		case "devices":
			parseDevices(v, cfg.Devices, add)
		case "signal_min":
			if n, ok := wholeNumber(v); !ok || n < 0 || n > 31 {
				add(k, "must be a whole number from 0 to 31")
			} else {
				cfg.SignalMin = int(n)
			}
		case "send_retries":
			if n, ok := wholeNumber(v); !ok || n < 0 || n > 10 {
				add(k, "must be a whole number from 0 to 10")
			} else {
				cfg.SendRetries = int(n)
			}
		case "poll_s":
			if f, ok := number(v); !ok || f < 0.01 || f > 3600 {
				add(k, "must be a number of seconds from 0.01 to 3600")
			} else {
				cfg.PollS = f
			}
		case "accuracy_m":
			if f, ok := number(v); !ok || f <= 0 || f > 100000 {
				add(k, "must be a number of metres above 0")
			} else {
				cfg.AccuracyM = f
			}
		case "password":
			str(k, v, &cfg.Password)
		case "commands":
			var m map[string]string
			if err := json.Unmarshal(v, &m); err != nil || m == nil {
				add(k, "must be an object of command kind -> text")
				continue
			}
			for kind, tmpl := range m {
				if _, known := DefaultCommands[kind]; !known {
					add(k+"."+kind, "unknown command kind (known: report_interval, vibrate, warn)")
				} else if tmpl == "" {
					add(k+"."+kind, "must not be empty")
				} else {
					cfg.Commands[kind] = tmpl
				}
			}
		default:
			add(k, "unknown attribute (known: %s)", strings.Join(attrs, ", "))
		}
	}
	if _, ok := fields["port"]; !ok {
		add("port", "is required")
	}
	if _, ok := fields["devices"]; !ok {
		add("devices", "is required")
	}
	return cfg, errs
}

func parseDevices(v json.RawMessage, out map[string]string, add func(string, string, ...any)) {
	put := func(at, number, dev string) {
		n := NormalizeNumber(number)
		switch {
		case !reNumber.MatchString(n):
			add(at, "%q is not a phone number", number)
		case dev == "" || len(dev) > 64:
			add(at, "device id must be 1 to 64 characters")
		case out[n] != "":
			add(at, "number %s is listed twice", n)
		default:
			out[n] = dev
		}
	}
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '[' {
		var list []struct {
			Number string `json:"number"`
			Device string `json:"device"`
		}
		if err := json.Unmarshal(v, &list); err != nil {
			add("devices", "must be a list of {\"number\": ..., \"device\": ...}")
			return
		}
		for i, e := range list {
			put(fmt.Sprintf("devices[%d]", i), e.Number, e.Device)
		}
	} else {
		var m map[string]string
		if err := json.Unmarshal(v, &m); err != nil || m == nil {
			add("devices", "must be an object of phone number -> device id")
			return
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			put("devices."+k, k, m[k])
		}
	}
	if len(out) == 0 {
		add("devices", "must name at least one device")
	}
}

// renderCommand fills a template from args and the password.
func renderCommand(tmpl string, args map[string]string, password string) (string, error) {
	var err error
	out := regexp.MustCompile(`\{([a-z_]+)(?::([0-9]))?\}`).ReplaceAllStringFunc(tmpl, func(m string) string {
		sub := regexp.MustCompile(`\{([a-z_]+)(?::([0-9]))?\}`).FindStringSubmatch(m)
		name, pad := sub[1], sub[2]
		var v string
		switch {
		case name == "password":
			v = password
		case args[name] != "":
			v = args[name]
		case name == "message":
			v = DefaultWarnMessage
		default:
			if err == nil {
				err = fmt.Errorf("argument %q is required", name)
			}
			return m
		}
		if pad != "" {
			w := int(pad[0] - '0')
			for len(v) < w {
				v = "0" + v
			}
		}
		return v
	})
	return out, err
}
