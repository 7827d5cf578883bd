package cap

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// Namespace is the CAP 1.2 XML namespace.
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// Restriction is the text of <restriction> (scope Restricted).
const Restriction = "Police operations only: restraining order monitoring (omvendt voldsalarm). Not for public distribution."

// CAP message types the hook emits.
const (
	MsgAlert  = "Alert"
	MsgUpdate = "Update"
	MsgCancel = "Cancel"
	MsgAck    = "Ack" // received on the acknowledgement endpoint, never sent
)

// Alert is a CAP 1.2 <alert>, with the elements the hook uses, in the order the schema requires.
type Alert struct {
	XMLName     xml.Name `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier  string   `xml:"identifier"`
	Sender      string   `xml:"sender"`
	Sent        string   `xml:"sent"`
	Status      string   `xml:"status"`
	MsgType     string   `xml:"msgType"`
	Scope       string   `xml:"scope"`
	Restriction string   `xml:"restriction,omitempty"`
	Note        string   `xml:"note,omitempty"`
	References  string   `xml:"references,omitempty"`
	Incidents   string   `xml:"incidents,omitempty"`
	Info        []Info   `xml:"info"`
}

// Info is a CAP <info> block.
type Info struct {
	Category     string      `xml:"category"`
	Event        string      `xml:"event"`
	ResponseType string      `xml:"responseType,omitempty"`
	Urgency      string      `xml:"urgency"`
	Severity     string      `xml:"severity"`
	Certainty    string      `xml:"certainty"`
	SenderName   string      `xml:"senderName,omitempty"`
	Headline     string      `xml:"headline,omitempty"`
	Description  string      `xml:"description,omitempty"`
	Parameters   []Parameter `xml:"parameter"`
	Areas        []Area      `xml:"area"`
}

// Parameter is a CAP <parameter> (valueName/value).
type Parameter struct {
	ValueName string `xml:"valueName"`
	Value     string `xml:"value"`
}

// Area is a CAP <area>.
type Area struct {
	AreaDesc string   `xml:"areaDesc"`
	Polygons []string `xml:"polygon"`
	Circles  []string `xml:"circle"`
}

// Reference is one entry of <references>: the sender, identifier and sent of an earlier message.
type Reference struct{ Sender, Identifier, Sent string }

// String is the CAP form "sender,identifier,sent".
func (r Reference) String() string { return r.Sender + "," + r.Identifier + "," + r.Sent }

// MsgType maps a transition event to the CAP message type: a raised alarm is an Alert, its resolution a
// Cancel, everything in between (acknowledged, updated, escalated, restored) an Update.
func MsgType(event string) string {
	switch event {
	case "raised":
		return MsgAlert
	case "resolved":
		return MsgCancel
	default:
		return MsgUpdate
	}
}

// FormatSent formats a time as CAP requires: seconds, no fraction, a numeric offset. UTC is written
// "-00:00" (CAP 1.2 §3.3.2: "Z" must not be used, UTC is "-00:00").
func FormatSent(t time.Time) string {
	t = t.UTC().Truncate(time.Second)
	return t.Format("2006-01-02T15:04:05") + "-00:00"
}

// validTime says whether t can be written as a 4-digit-year xs:dateTime.
func validTime(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

// CAPID makes a CAP identifier or sender from s: CAP forbids spaces, commas and the characters < and &
// in them, so those (and "%", control and other whitespace characters, anything that is not valid XML)
// are percent-encoded as UTF-8 bytes. Ordinary alarm ids ("alm-00000003:2") are unchanged.
func CAPID(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == ' ' || r == ',' || r == '<' || r == '&' || r == '%' ||
			r < 0x20 || r == 0x7f || !xmlChar(r) || isSpace(r) {
			for j := 0; j < size; j++ {
				fmt.Fprintf(&b, "%%%02X", s[i+j])
			}
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

func isSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

// xmlChar says whether r may appear in an XML 1.0 document.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// Clean returns s as text that survives XML: invalid UTF-8 and characters XML 1.0 does not allow
// (NUL and most control characters) become U+FFFD. Escaping of <, &, quotes and line ends is left to
// encoding/xml; after Clean, a value round-trips through encoding/xml unchanged.
func Clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || !xmlChar(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s { // ranging over invalid UTF-8 yields U+FFFD for each bad byte
		if !xmlChar(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

// event names the CAP <event> for an alarm kind.
func eventName(kind string) string {
	switch kind {
	case "breach":
		return "Restraining order breach"
	case "dynamic_breach":
		return "Restraining order breach: offender near protected person"
	case "inclusion_breach":
		return "Restraining order breach: offender left inclusion zone"
	case "warning":
		return "Restraining order warning"
	case "approach":
		return "Offender approaching"
	case "tamper":
		return "Ankle tag tampered with"
	case "no_signal":
		return "Ankle tag without signal"
	case "no_fix":
		return "Ankle tag without position"
	case "battery_low":
		return "Ankle tag battery low"
	case "device_fault":
		return "Monitoring device fault"
	case "monitoring_fault":
		return "Monitoring fault"
	}
	if kind == "" {
		return "Restraining order monitoring alarm"
	}
	return "Restraining order monitoring alarm: " + kind
}

// positional kinds are raised by the evaluator on a fix on the wrong side of a boundary.
func positional(kind string) bool {
	switch kind {
	case "breach", "dynamic_breach", "inclusion_breach", "warning", "approach":
		return true
	}
	return false
}

// ResponseType is what the police should do: Execute a response to a breach, Prepare for a warning or an
// approach, Monitor anything else (equipment and monitoring alarms).
func ResponseType(kind string) string {
	switch kind {
	case "breach", "dynamic_breach", "inclusion_breach":
		return "Execute"
	case "warning", "approach":
		return "Prepare"
	}
	return "Monitor"
}

// Urgency: Past for an alarm raised from a late report (the position is history), Immediate for breaches,
// Expected for warnings and approaches, Unknown otherwise.
func Urgency(kind string, late bool) string {
	if late {
		return "Past"
	}
	switch kind {
	case "breach", "dynamic_breach", "inclusion_breach":
		return "Immediate"
	case "warning", "approach":
		return "Expected"
	}
	return "Unknown"
}

// Severity: critical Extreme, major Severe, minor (and warning) Moderate, info Minor, else Unknown.
func Severity(sev string) string {
	switch sev {
	case "critical":
		return "Extreme"
	case "major":
		return "Severe"
	case "minor", "warning":
		return "Moderate"
	case "info":
		return "Minor"
	}
	return "Unknown"
}

// Certainty maps Alarm.certainty: certain Observed, probable Likely, anything else Possible. The node
// sets it only for alarms judged on a position; an empty one for a positional alarm is Likely (the least
// the evaluator raises on), and for a device or monitoring alarm (a strap opened, a silence) the
// condition itself was observed.
func Certainty(certainty, kind string) string {
	switch certainty {
	case "certain":
		return "Observed"
	case "probable":
		return "Likely"
	case "":
		if positional(kind) {
			return "Likely"
		}
		if kind != "" {
			return "Observed"
		}
	}
	return "Possible"
}

func tsTime(ts interface {
	IsValid() bool
	AsTime() time.Time
}) (time.Time, bool) {
	if ts == nil || !ts.IsValid() {
		return time.Time{}, false
	}
	t := ts.AsTime()
	return t, validTime(t)
}

// Identifier is the CAP identifier of an event: its idempotency key (alarm id + ":" + seq).
func Identifier(ev *pluginpb.AlarmEvent) string {
	key := ev.GetIdempotencyKey()
	if key == "" {
		key = ev.GetAlarm().GetId() + ":" + strconv.FormatUint(uint64(ev.GetTransition().GetSeq()), 10)
	}
	return CAPID(key)
}

// FirstReference reconstructs the reference of an alarm's first Alert from the alarm alone: identifier
// alarm id + ":1", sent = raised_at. It is what BuildAlert wrote for the raised transition, so an Update or
// Cancel can reference it after a restart without any memory. ok is false without a valid raised_at.
func FirstReference(sender string, a *pluginpb.Alarm) (Reference, bool) {
	raised, ok := tsTime(a.GetRaisedAt())
	if !ok {
		return Reference{}, false
	}
	return Reference{Sender: sender, Identifier: CAPID(a.GetId() + ":1"), Sent: FormatSent(raised)}, true
}

// sentTime is the time written in <sent>: raised_at for the raised transition (so that the first
// alert's reference can be reconstructed), the transition's time otherwise; now when neither is valid.
func sentTime(ev *pluginpb.AlarmEvent, now time.Time) time.Time {
	if ev.GetTransition().GetEvent() == "raised" || ev.GetTransition().GetSeq() == 1 {
		if t, ok := tsTime(ev.GetAlarm().GetRaisedAt()); ok {
			return t
		}
	}
	if t, ok := tsTime(ev.GetTransition().GetAt()); ok {
		return t
	}
	return now
}

// BuildOptions are what BuildAlert needs besides the event.
type BuildOptions struct {
	Sender string // already a valid CAP sender
	// First is the reference of the alarm's first Alert when known (from memory); when nil it is
	// reconstructed with FirstReference.
	First *Reference
	Now   time.Time // used only when the event carries no valid time
}

const headlineMax = 160 // CAP recommends headlines under 160 characters

// BuildAlert maps one alarm transition to a CAP alert. It never fails: every string is cleaned so the
// document is well-formed, and every enumerated element takes a value from the schema.
func BuildAlert(ev *pluginpb.AlarmEvent, o BuildOptions) *Alert {
	a := ev.GetAlarm()
	tr := ev.GetTransition()
	msgType := MsgType(tr.GetEvent())
	al := &Alert{
		Identifier:  Identifier(ev),
		Sender:      o.Sender,
		Sent:        FormatSent(sentTime(ev, o.Now)),
		Status:      "Actual",
		MsgType:     msgType,
		Scope:       "Restricted",
		Restriction: Restriction,
		Incidents:   CAPID(a.GetId()),
	}
	if tr.GetNote() != "" {
		al.Note = Clean(tr.GetNote())
	}
	if msgType != MsgAlert {
		ref, ok := Reference{}, false
		if o.First != nil {
			ref, ok = *o.First, true
		} else {
			ref, ok = FirstReference(o.Sender, a)
		}
		if ok {
			al.References = ref.String()
		}
	}
	late := a.GetLate()
	info := Info{
		Category:     "Security",
		Event:        eventName(Clean(a.GetKind())),
		ResponseType: ResponseType(a.GetKind()),
		Urgency:      Urgency(a.GetKind(), late),
		Severity:     Severity(a.GetSeverity()),
		Certainty:    Certainty(a.GetCertainty(), a.GetKind()),
		SenderName:   "Skjold",
		Headline:     headline(a, tr),
		Description:  Clean(a.GetMessage()),
	}
	if msgType == MsgCancel {
		info.ResponseType = "AllClear"
	}
	add := func(name, value string) {
		if value != "" {
			info.Parameters = append(info.Parameters, Parameter{ValueName: name, Value: Clean(value)})
		}
	}
	add("alarm_id", a.GetId())
	add("kind", a.GetKind())
	add("class", a.GetClass())
	add("severity", a.GetSeverity())
	add("order_id", a.GetOrderId())
	add("zone_id", a.GetZoneId())
	add("device", a.GetDevice())
	add("subject", a.GetSubject())
	if d := a.GetDistanceM(); d != 0 && !math.IsNaN(d) && !math.IsInf(d, 0) {
		add("distance_m", strconv.FormatFloat(d, 'f', 1, 64))
	}
	add("state", a.GetState())
	add("active", strconv.FormatBool(a.GetActive()))
	add("event", tr.GetEvent())
	add("seq", strconv.FormatUint(uint64(tr.GetSeq()), 10))
	add("by", tr.GetBy())
	add("certainty", a.GetCertainty())
	if n := a.GetEscalation(); n > 0 {
		add("escalation", strconv.FormatUint(uint64(n), 10))
	}
	if late {
		add("late", "true")
	}
	if area, ok := zoneArea(a); ok {
		info.Areas = append(info.Areas, area)
	}
	if area, ok := positionArea(a); ok {
		info.Areas = append(info.Areas, area)
	}
	al.Info = []Info{info}
	return al
}

func headline(a *pluginpb.Alarm, tr *pluginpb.Transition) string {
	h := eventName(a.GetKind())
	if ev := tr.GetEvent(); ev != "" && ev != "raised" {
		h += " (" + ev + ")"
	}
	if d := a.GetDevice(); d != "" {
		h += ": device " + d
	}
	h = Clean(h)
	if utf8.RuneCountInString(h) > headlineMax {
		r := []rune(h)
		h = string(r[:headlineMax-1]) + "…"
	}
	return h
}

// zoneArea is the <area> of the zone the alarm is about: each polygon's outer ring as a CAP <polygon>
// ("lat,lon" pairs, closed) — CAP has no holes, so a zone with a hole is sent as its outline — or a
// <circle> for a circular or dynamic zone.
func zoneArea(a *pluginpb.Alarm) (Area, bool) {
	z := a.GetArea()
	if z == nil {
		return Area{}, false
	}
	area := Area{AreaDesc: Clean("Zone " + a.GetZoneId())}
	ring := func(r [][]float64) {
		if len(r) < 4 {
			return
		}
		var b strings.Builder
		for i, p := range r {
			if len(p) < 2 || !finite(p[0]) || !finite(p[1]) {
				return
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatFloat(p[1], 'f', 6, 64) + "," + strconv.FormatFloat(p[0], 'f', 6, 64))
		}
		area.Polygons = append(area.Polygons, b.String())
	}
	switch z.GetType() {
	case "Polygon":
		var c [][][]float64
		if json.Unmarshal([]byte(z.GetCoordinatesJson()), &c) == nil && len(c) > 0 {
			ring(c[0])
		}
	case "MultiPolygon":
		var c [][][][]float64
		if json.Unmarshal([]byte(z.GetCoordinatesJson()), &c) == nil {
			for _, p := range c {
				if len(p) > 0 {
					ring(p[0])
				}
			}
		}
	case "Point":
		var c []float64
		if json.Unmarshal([]byte(z.GetCoordinatesJson()), &c) == nil && len(c) >= 2 && finite(c[0]) && finite(c[1]) {
			area.Circles = append(area.Circles, Circle(c[1], c[0], z.GetRadiusM()))
		}
	}
	if len(area.Polygons) == 0 && len(area.Circles) == 0 {
		return Area{}, false
	}
	return area, true
}

// positionArea is the <area> of the alarm's position: a circle whose radius is the fix's accuracy in km.
func positionArea(a *pluginpb.Alarm) (Area, bool) {
	p := a.GetPosition()
	if p == nil {
		return Area{}, false
	}
	lat, lon, acc := p.GetLat(), p.GetLon(), p.GetAccuracyM()
	if !finite(lat) || !finite(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return Area{}, false
	}
	if !finite(acc) || acc < 0 {
		acc = 0
	}
	desc := "Last position"
	if d := a.GetDevice(); d != "" {
		desc += " of device " + d
	}
	desc += fmt.Sprintf(" (accuracy %.0f m)", acc)
	if z := a.GetZoneId(); z != "" {
		desc += ", zone " + z
	}
	if t, ok := tsTime(p.GetTime()); ok {
		desc += ", at " + FormatSent(t)
	}
	return Area{
		AreaDesc: Clean(desc),
		Circles:  []string{Circle(lat, lon, acc)},
	}, true
}

// Circle is the CAP circle "lat,lon radius" with the radius in km (WGS 84).
func Circle(lat, lon, radiusM float64) string {
	if radiusM < 0 || !finite(radiusM) {
		radiusM = 0
	}
	return strconv.FormatFloat(lat, 'f', 6, 64) + "," + strconv.FormatFloat(lon, 'f', 6, 64) + " " +
		strconv.FormatFloat(radiusM/1000, 'f', 3, 64)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Marshal writes the alert as a UTF-8 XML document with its declaration.
func (al *Alert) Marshal() ([]byte, error) {
	body, err := xml.MarshalIndent(al, "", "  ")
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(xml.Header)+len(body)+1)
	out = append(out, xml.Header...)
	out = append(out, body...)
	return append(out, '\n'), nil
}

// ParseAlert reads a CAP 1.2 alert; the root element must be <alert> in the CAP 1.2 namespace.
func ParseAlert(doc []byte) (*Alert, error) {
	var al Alert
	if err := xml.Unmarshal(doc, &al); err != nil {
		return nil, err
	}
	return &al, nil
}
