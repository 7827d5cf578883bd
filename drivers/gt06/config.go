package gt06

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/skjold-alarm/skjold/drivers/gt06/protocol"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
	"github.com/skjold-alarm/skjold/plugins/sdk"
)

// Config is the driver's config block.
type Config struct {
	// Listen is the TCP address the tags connect to.
	Listen string
	// IdleTimeout closes a connection that sent nothing for this long (tags send a heartbeat every few
	// minutes).
	IdleTimeout time.Duration
	// MaxConnections bounds concurrent tag connections; further ones are closed at once.
	MaxConnections int
	// Commands maps a command kind to the text sent in a 0x80 frame. {name} is replaced by the command's
	// argument of that name.
	Commands map[string]string
}

// Defaults.
const (
	DefaultListen         = "127.0.0.1:5023"
	DefaultIdleTimeout    = 10 * time.Minute
	DefaultMaxConnections = 10000
)

// DefaultCommands are the 0x80 texts for the command kinds of the contract. They follow Concox's SMS/GPRS
// command syntax (comma-separated, ending in '#'); models differ, so a deployment sets the texts its tags
// understand in the config's commands object.
//
//	vibrate          FIND#                    the tag buzzes/vibrates so the wearer notices
//	warn             FIND#                    same signal, for the protected person's unit
//	report_interval  TIMER,{interval_s}#      upload interval in seconds
var DefaultCommands = map[string]string{
	"vibrate":         "FIND#",
	"warn":            "FIND#",
	"report_interval": "TIMER,{interval_s}#",
}

var attrs = []string{"listen", "idle_timeout_s", "max_connections", "commands"}

// Schema describes the config block.
func Schema() []*pluginpb.ConfigField {
	return []*pluginpb.ConfigField{
		{Name: "listen", Type: "string", Description: "TCP address (host:port) the GT06 tags connect to", DefaultJson: `"` + DefaultListen + `"`},
		{Name: "idle_timeout_s", Type: "number", Description: "close a tag connection silent for this many seconds", DefaultJson: "600"},
		{Name: "max_connections", Type: "number", Description: "most concurrent tag connections", DefaultJson: "10000"},
		{Name: "commands", Type: "object", Description: `0x80 command text per command kind (vibrate, warn, report_interval); {arg} is replaced by the command argument "arg"`,
			DefaultJson: `{"report_interval":"TIMER,{interval_s}#","vibrate":"FIND#","warn":"FIND#"}`},
	}
}

var placeholder = regexp.MustCompile(`\{([a-z_][a-z0-9_]*)\}`)

// ParseConfig checks the config block and fills the defaults; every problem names its attribute.
func ParseConfig(raw []byte) (Config, []*pluginpb.ConfigError) {
	cfg := Config{Listen: DefaultListen, IdleTimeout: DefaultIdleTimeout, MaxConnections: DefaultMaxConnections,
		Commands: map[string]string{}}
	for k, v := range DefaultCommands {
		cfg.Commands[k] = v
	}
	fields, keys, cerr := sdk.ConfigFields(raw)
	if cerr != nil {
		return cfg, []*pluginpb.ConfigError{cerr}
	}
	var errs []*pluginpb.ConfigError
	add := func(field, format string, args ...any) { errs = append(errs, sdk.ConfigErr(field, format, args...)) }
	for _, k := range keys {
		v := fields[k]
		switch k {
		case "listen":
			if err := json.Unmarshal(v, &cfg.Listen); err != nil {
				add("listen", "must be a string such as %q", DefaultListen)
			} else if _, port, err := net.SplitHostPort(cfg.Listen); err != nil {
				add("listen", "%q is not host:port: %v", cfg.Listen, err)
			} else if port == "" {
				add("listen", "%q has no port", cfg.Listen)
			}
		case "idle_timeout_s":
			if f, ok := number(v); !ok || f < 1 || f > 86400 {
				add("idle_timeout_s", "must be a number of seconds from 1 to 86400")
			} else {
				cfg.IdleTimeout = time.Duration(f * float64(time.Second))
			}
		case "max_connections":
			if f, ok := number(v); !ok || f != math.Trunc(f) || f < 1 || f > 1000000 {
				add("max_connections", "must be a whole number from 1 to 1000000")
			} else {
				cfg.MaxConnections = int(f)
			}
		case "commands":
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v, &m); err != nil || m == nil {
				add("commands", "must be an object of command kind to text")
				continue
			}
			for _, kind := range sortedKeys(m) {
				field := "commands." + kind
				var text string
				if _, known := DefaultCommands[kind]; !known {
					add(field, "unknown command kind (known: report_interval, vibrate, warn)")
				} else if err := json.Unmarshal(m[kind], &text); err != nil {
					add(field, "must be a string")
				} else if text == "" || len(text) > protocol.MaxCommandText {
					add(field, "must be 1 to %d characters", protocol.MaxCommandText)
				} else if !printable(text) {
					add(field, "must be printable ASCII")
				} else {
					cfg.Commands[kind] = text
				}
			}
		default:
			add(k, "unknown attribute (known: %s)", strings.Join(attrs, ", "))
		}
	}
	return cfg, errs
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

var argValue = regexp.MustCompile(`^[A-Za-z0-9._:+-]{1,32}$`)

// CommandText fills the template for kind with args. Argument values are restricted to letters, digits
// and ._:+- so that they cannot change the command's syntax (no ',' or '#').
func (c Config) CommandText(kind string, args map[string]string) (string, error) {
	tmpl, ok := c.Commands[kind]
	if !ok {
		return "", fmt.Errorf("unknown command kind %q (known: report_interval, vibrate, warn)", kind)
	}
	var missing error
	text := placeholder.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := args[name]
		if !ok {
			if missing == nil {
				missing = fmt.Errorf("%s: argument %q is required", kind, name)
			}
			return m
		}
		if !argValue.MatchString(v) {
			if missing == nil {
				missing = fmt.Errorf("%s: argument %q = %q must be 1-32 of A-Z a-z 0-9 . _ : + -", kind, name, v)
			}
			return m
		}
		return v
	})
	if missing != nil {
		return "", missing
	}
	if len(text) > protocol.MaxCommandText {
		return "", fmt.Errorf("%s: command text is %d bytes, at most %d fit", kind, len(text), protocol.MaxCommandText)
	}
	return text, nil
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

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
