package dc09

import (
	"fmt"
	"hash/fnv"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// Code is the event code of one alarm kind in both payload formats.
type Code struct {
	SIA        string // SIA event code for a new event, e.g. "BA"
	SIARestore string // SIA code for its restore, e.g. "BR"
	CID        int    // Contact ID event code, e.g. 130 (qualifier 1 new, 3 restore)
}

// Codes maps Skjold alarm kinds to receiver event codes (DESIGN.md has the table and the reasons).
var Codes = map[string]Code{
	"breach":           {"BA", "BR", 130},
	"dynamic_breach":   {"BA", "BR", 130},
	"inclusion_breach": {"BA", "BR", 130},
	"warning":          {"UA", "UR", 131},
	"approach":         {"UA", "UR", 131},
	"tamper":           {"TA", "TR", 137},
	"battery_low":      {"YT", "YR", 302},
	"no_signal":        {"YS", "YK", 350},
	"no_fix":           {"YS", "YK", 350},
	"monitoring_fault": {"YC", "YK", 354},
	"device_fault":     {"UT", "UJ", 380},
}

var (
	policeDefault    = Code{"BA", "BR", 130}
	technicalDefault = Code{"UT", "UJ", 380}
)

// CodeFor returns the code of an alarm kind; an unknown police kind is treated as an intrusion, an
// unknown technical one as a trouble.
func CodeFor(kind, class string) Code {
	if c, ok := Codes[kind]; ok {
		return c
	}
	if class == "technical" {
		return technicalDefault
	}
	return policeDefault
}

// Zone is the receiver zone number of a Skjold zone id: FNV-1a (32 bit) of the id, mod 999, plus 1
// (001–999); 0 when the alarm has no zone (device and monitoring alarms).
func Zone(zoneID string) int {
	if zoneID == "" {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(zoneID))
	return int(h.Sum32()%999) + 1
}

// Action says what a transition becomes on the wire.
type Action int

const (
	SendNothing Action = iota // not transmitted; delivered without a message
	SendNew                   // a new event (SIA 'N' block with the alarm code, CID qualifier 1)
	SendRestore               // a restore (SIA restore code, CID qualifier 3)
)

// ActionFor maps a transition event: raised and escalated are new events, restored is a restore, and
// acknowledged, resolved and updated are operator bookkeeping in Skjold and are not transmitted.
func ActionFor(event string) Action {
	switch event {
	case "raised", "escalated":
		return SendNew
	case "restored":
		return SendRestore
	}
	return SendNothing
}

// Payload builds the data block of an event for format (IDSIA or IDCID). The SIA-DCS payload carries the
// Skjold alarm id in its ASCII ('A') block; Contact ID has no room for it.
func Payload(format, account string, ev *pluginpb.AlarmEvent, act Action) (string, error) {
	a := ev.GetAlarm()
	c := CodeFor(a.GetKind(), a.GetClass())
	zone := Zone(a.GetZoneId())
	switch format {
	case IDSIA:
		code := c.SIA
		if act == SendRestore {
			code = c.SIARestore
		}
		p := fmt.Sprintf("#%s|Nri1/%s%03d", account, code, zone)
		if id := asciiText(a.GetId()); id != "" {
			p += "|A" + id
		}
		return p, nil
	case IDCID:
		q := 1
		if act == SendRestore {
			q = 3
		}
		return fmt.Sprintf("#%s|%d%03d 01 %03d", account, q, c.CID, zone), nil
	}
	return "", fmt.Errorf("unknown format %q", format)
}

// asciiText keeps the printable ASCII of s that is safe inside a data block.
func asciiText(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(out) < 64; i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7F && c != '[' && c != ']' && c != '|' && c != '^' {
			out = append(out, c)
		}
	}
	return string(out)
}
