package cap

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

var kinds = []struct {
	kind, class, severity                    string
	event, response, urgency, sev, certainty string
}{
	{"breach", "police", "critical", "Restraining order breach", "Execute", "Immediate", "Extreme", "Likely"},
	{"dynamic_breach", "police", "critical", "Restraining order breach: offender near protected person", "Execute", "Immediate", "Extreme", "Likely"},
	{"inclusion_breach", "police", "major", "Restraining order breach: offender left inclusion zone", "Execute", "Immediate", "Severe", "Likely"},
	{"warning", "police", "major", "Restraining order warning", "Prepare", "Expected", "Severe", "Likely"},
	{"approach", "police", "minor", "Offender approaching", "Prepare", "Expected", "Moderate", "Likely"},
	{"tamper", "police", "major", "Ankle tag tampered with", "Monitor", "Unknown", "Severe", "Observed"},
	{"no_signal", "technical", "major", "Ankle tag without signal", "Monitor", "Unknown", "Severe", "Observed"},
	{"no_fix", "technical", "minor", "Ankle tag without position", "Monitor", "Unknown", "Moderate", "Observed"},
	{"battery_low", "technical", "info", "Ankle tag battery low", "Monitor", "Unknown", "Minor", "Observed"},
	{"device_fault", "technical", "minor", "Monitoring device fault", "Monitor", "Unknown", "Moderate", "Observed"},
	{"monitoring_fault", "technical", "critical", "Monitoring fault", "Monitor", "Unknown", "Extreme", "Observed"},
	{"something_new", "technical", "", "Restraining order monitoring alarm: something_new", "Monitor", "Unknown", "Unknown", "Observed"},
}

var transitions = []struct{ event, state, msgType string }{
	{"raised", "raised", MsgAlert},
	{"updated", "raised", MsgUpdate},
	{"escalated", "raised", MsgUpdate},
	{"acknowledged", "acknowledged", MsgUpdate},
	{"restored", "acknowledged", MsgUpdate},
	{"resolved", "resolved", MsgCancel},
}

const oddMessage = "offender <tag> & \"friend\" 'x' ]]> <!-- --> &amp; \x00\x01\x1f\ufffe \xff\xfe æøå ÆØÅ 🚨 \r\n\ttab\u2028 %41 a,b <script>alert(1)</script>"

// documents is one document per alarm kind and transition, with odd characters in every free text.
func documents(t *testing.T) map[string]*pluginpb.AlarmEvent {
	t.Helper()
	out := map[string]*pluginpb.AlarmEvent{}
	for _, k := range kinds {
		for i, tr := range transitions {
			ev := event("alm-"+k.kind, uint32(i+1), tr.event, tr.state)
			ev.Alarm.Kind, ev.Alarm.Class, ev.Alarm.Severity = k.kind, k.class, k.severity
			if k.class == "technical" {
				ev.Alarm.Position = nil
				ev.Alarm.Subject = "plugin:sim <&>"
			}
			ev.Alarm.Message = oddMessage + " " + k.kind
			ev.Transition.By = "operator <o&1>"
			ev.Transition.Note = "patrol 12 sent ]]> \x07"
			out[k.kind+"-"+tr.event] = ev
		}
	}
	// Odd ids: the identifier and references must still be well-formed CAP identifiers.
	odd := event("alm 1,<&>%", 2, "acknowledged", "acknowledged")
	odd.IdempotencyKey = "alm 1,<&>%:2"
	out["odd-id"] = odd
	late := event("alm-late", 1, "raised", "raised")
	late.Alarm.Late, late.Alarm.Certainty = true, "certain"
	late.Alarm.Message = "late report: offender 8647 was 12 m inside exclusion zone home at 2026-11-26T12:00:00Z"
	esc := event("alm-esc", 4, "escalated", "raised")
	esc.Alarm.Escalation, esc.Alarm.Certainty = 2, "probable"
	out["escalated-twice"] = esc
	out["late"] = late
	noTimes := event("alm-notimes", 3, "updated", "raised")
	noTimes.Alarm.RaisedAt, noTimes.Transition.At, noTimes.Alarm.Position.Time = nil, nil, nil
	out["no-times"] = noTimes
	badPos := event("alm-badpos", 1, "raised", "raised")
	badPos.Alarm.Position.AccuracyM = -5
	out["negative-accuracy"] = badPos
	return out
}

func build(ev *pluginpb.AlarmEvent) *Alert {
	return BuildAlert(ev, BuildOptions{Sender: "skjold@node-1", Now: time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)})
}

func TestMappingPerKind(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.kind, func(t *testing.T) {
			ev := event("alm-1", 1, "raised", "raised")
			ev.Alarm.Kind, ev.Alarm.Class, ev.Alarm.Severity = k.kind, k.class, k.severity
			in := build(ev).Info[0]
			got := []string{in.Category, in.Event, in.ResponseType, in.Urgency, in.Severity, in.Certainty}
			want := []string{"Security", k.event, k.response, k.urgency, k.sev, k.certainty}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
	if Urgency("breach", true) != "Past" || Certainty("certain", "breach") != "Observed" || Certainty("probable", "tamper") != "Likely" || Certainty("unsure", "breach") != "Possible" {
		t.Fatal("late/certainty mapping")
	}
	late := documents(t)["late"]
	if in := build(late).Info[0]; in.Urgency != "Past" || in.Certainty != "Observed" {
		t.Fatalf("a late certain breach has urgency %q certainty %q", in.Urgency, in.Certainty)
	}
	if in := build(documents(t)["escalated-twice"]).Info[0]; in.Certainty != "Likely" || !hasParam(in, "escalation", "2") {
		t.Fatalf("escalated probable breach: certainty %q parameters %+v", in.Certainty, in.Parameters)
	}
	if c := build(event("a", 5, "resolved", "resolved")).Info[0].ResponseType; c != "AllClear" {
		t.Fatalf("a Cancel has responseType %q", c)
	}
}

func hasParam(in Info, name, value string) bool {
	for _, p := range in.Parameters {
		if p.ValueName == name && p.Value == value {
			return true
		}
	}
	return false
}

func TestAlertContent(t *testing.T) {
	al := build(event("alm-00000003", 1, "raised", "raised"))
	in := al.Info[0]
	if len(in.Areas) != 1 || in.Areas[0].Circles[0] != "59.910500,10.758000 0.008" || len(in.Areas[0].Polygons) != 0 {
		t.Fatalf("area %+v", in.Areas)
	}
	params := map[string]string{}
	for _, p := range in.Parameters {
		params[p.ValueName] = p.Value
	}
	for k, v := range map[string]string{"alarm_id": "alm-00000003", "kind": "breach", "class": "police", "order_id": "ord-demo",
		"device": "864717003283581", "distance_m": "7.0", "state": "raised", "event": "raised", "by": "evaluator"} {
		if params[k] != v {
			t.Errorf("parameter %s = %q, want %q", k, params[k], v)
		}
	}
	if in.Description != "offender 864717003283581 is 7 m inside exclusion zone home" || al.Restriction == "" {
		t.Errorf("description %q restriction %q", in.Description, al.Restriction)
	}
	if got := Circle(59.9, 10.7, -3); got != "59.900000,10.700000 0.000" {
		t.Errorf("negative radius: %q", got)
	}
	// Identifiers: CAP forbids spaces, commas, < and & in them.
	if id := CAPID("alm 1,<&>%:2"); strings.ContainsAny(id, " ,<&") || unCAPID(id) != "alm 1,<&>%:2" {
		t.Errorf("CAPID %q", id)
	}
	if FormatSent(time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.FixedZone("CET", 3600))) != "2026-01-02T02:04:05-00:00" {
		t.Error("FormatSent")
	}
}

// xmllint returns the path of xmllint or skips the test.
func xmllint(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint is not on PATH (Debian: apt-get install libxml2-utils); CAP XSD validation skipped")
	}
	return path
}

const xsd = "testdata/CAP-v1.2.xsd"

func validate(t *testing.T, lint string, files []string) (string, error) {
	t.Helper()
	args := append([]string{"--noout", "--nonet", "--schema", xsd}, files...)
	out, err := exec.Command(lint, args...).CombinedOutput()
	return string(out), err
}

func TestDocumentsValidateAgainstCAPSchema(t *testing.T) {
	lint := xmllint(t)
	dir := t.TempDir()
	docs := documents(t)
	files := make([]string, 0, len(docs))
	for name, ev := range docs {
		al := build(ev)
		doc, err := al.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The identifier and sender never contain what CAP forbids in them.
		if strings.ContainsAny(al.Identifier+al.Sender, " ,<&\t\n") || strings.ContainsAny(al.References, "<&\t\n") {
			t.Errorf("%s: identifier %q sender %q references %q", name, al.Identifier, al.Sender, al.References)
		}
		if strings.Count(al.References, ",") != 2 && al.MsgType != MsgAlert && name != "no-times" {
			t.Errorf("%s: references %q is not sender,identifier,sent", name, al.References)
		}
		f := filepath.Join(dir, name+".xml")
		if err := os.WriteFile(f, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if out, err := validate(t, lint, files); err != nil {
		t.Fatalf("documents do not validate against the CAP 1.2 schema: %v\n%s", err, out)
	}
	// Every msgType was produced.
	seen := map[string]bool{}
	for _, ev := range docs {
		seen[build(ev).MsgType] = true
	}
	if !seen[MsgAlert] || !seen[MsgUpdate] || !seen[MsgCancel] {
		t.Fatalf("msgTypes produced: %v", seen)
	}

	// The validation has teeth: documents that break the schema are refused.
	good, _ := build(docs["breach-raised"]).Marshal()
	for name, bad := range map[string][]byte{
		"utc-z":       bytes.Replace(good, []byte("-00:00</sent>"), []byte("Z</sent>"), 1),
		"fraction":    bytes.Replace(good, []byte(":36-00:00</sent>"), []byte(":36.250-00:00</sent>"), 1),
		"bad-urgency": bytes.Replace(good, []byte("<urgency>Immediate"), []byte("<urgency>Now"), 1),
		"no-ns":       bytes.Replace(good, []byte(` xmlns="urn:oasis:names:tc:emergency:cap:1.2"`), nil, 1),
		"order":       bytes.Replace(good, []byte("<status>Actual</status>"), nil, 1),
	} {
		if bytes.Equal(bad, good) {
			t.Fatalf("%s: the test did not change the document", name)
		}
		f := filepath.Join(dir, "bad-"+name+".xml")
		_ = os.WriteFile(f, bad, 0o600)
		if out, err := validate(t, lint, []string{f}); err == nil {
			t.Errorf("%s: a broken document validates: %s", name, out)
		}
	}
}

// Hook.Document (what Deliver posts) is schema-valid too, with the configured sender and the remembered
// reference.
func TestHookDocumentValidates(t *testing.T) {
	lint := xmllint(t)
	h := New(Options{})
	if errs := h.Configure([]byte(`{"url": "https://cad.example/cap", "sender": "politi.oslo@skjold"}`), "n"); len(errs) > 0 {
		t.Fatal(errs)
	}
	h.first["alm-7"] = Reference{Sender: "politi.oslo@skjold", Identifier: "alm-7:1", Sent: "2026-11-26T16:18:36-00:00"}
	_, doc, err := h.Document(event("alm-7", 2, "acknowledged", "acknowledged"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte("<references>politi.oslo@skjold,alm-7:1,2026-11-26T16:18:36-00:00</references>")) {
		t.Fatalf("remembered reference not used:\n%s", doc)
	}
	f := filepath.Join(t.TempDir(), "doc.xml")
	_ = os.WriteFile(f, doc, 0o600)
	if out, err := validate(t, lint, []string{f}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// roundTrip marshals the alert, checks the document is well-formed and namespaced, and that it reads back
// to the same values.
func roundTrip(t *testing.T, al *Alert) {
	t.Helper()
	doc, err := al.Marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	root := ""
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("not well-formed: %v\n%q", err, doc)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Space + " " + se.Name.Local
		}
	}
	if root != Namespace+" alert" {
		t.Fatalf("root element %q", root)
	}
	back, err := ParseAlert(doc)
	if err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	back.XMLName = al.XMLName
	if !reflect.DeepEqual(back, al) {
		t.Fatalf("round trip changed the alert:\n got %#v\nwant %#v", back, al)
	}
}

func FuzzBuildAlert(f *testing.F) {
	f.Add("alm-00000003", "breach", "critical", "offender 8647 is 7 m inside exclusion zone home", "raised", "evaluator", "patrol 12", "home", 59.91, 10.75, 8.0, uint32(1))
	f.Add("a b,<&>", "x\x00y", "\xff", oddMessage, "resolved", "<op>", "]]>", "\r\n", -91.0, 181.0, -1.0, uint32(0))
	f.Fuzz(func(t *testing.T, id, kind, severity, message, ev, by, note, zone string, lat, lon, acc float64, seq uint32) {
		e := &pluginpb.AlarmEvent{
			IdempotencyKey: id + ":" + fmt.Sprint(seq),
			Alarm: &pluginpb.Alarm{
				Id: id, OrderId: note, Kind: kind, Class: by, Severity: severity, State: ev, ZoneId: zone, Device: by + id,
				RaisedAt: timestamppb.New(raisedAt), Message: message, Subject: zone, DistanceM: acc,
				Certainty: severity, Late: seq%2 == 1, Escalation: seq,
				Position: &pluginpb.Position{Lat: lat, Lon: lon, AccuracyM: acc},
			},
			Transition: &pluginpb.Transition{Seq: seq, Event: ev, State: kind, By: by, Note: note, At: timestamppb.New(raisedAt)},
		}
		al := build(e)
		roundTrip(t, al)
		if strings.ContainsAny(al.Identifier, " ,<&\t\r\n") {
			t.Fatalf("identifier %q", al.Identifier)
		}
		if unCAPID(al.Identifier) != e.IdempotencyKey {
			t.Fatalf("identifier %q does not decode to %q", al.Identifier, e.IdempotencyKey)
		}
		switch al.MsgType {
		case MsgAlert, MsgUpdate, MsgCancel:
		default:
			t.Fatalf("msgType %q", al.MsgType)
		}
	})
}

// The zone an alarm is about becomes an <area>: polygons by their outline (lat,lon, closed), circles
// for circular and dynamic zones; the documents still validate.
func TestZoneAreas(t *testing.T) {
	cases := []struct {
		name string
		area *pluginpb.Area
		want string
	}{
		{"polygon with a hole", &pluginpb.Area{Type: "Polygon", CoordinatesJson: `[[[10.75,59.91],[10.76,59.91],[10.76,59.92],[10.75,59.91]],[[10.755,59.912],[10.757,59.912],[10.757,59.913],[10.755,59.912]]]`},
			"<polygon>59.910000,10.750000 59.910000,10.760000 59.920000,10.760000 59.910000,10.750000</polygon>"},
		{"multipolygon", &pluginpb.Area{Type: "MultiPolygon", CoordinatesJson: `[[[[10.8,59.9],[10.81,59.9],[10.81,59.91],[10.8,59.9]]],[[[10.9,59.9],[10.91,59.9],[10.91,59.91],[10.9,59.9]]]]`},
			"<polygon>59.900000,10.900000"},
		{"circle", &pluginpb.Area{Type: "Point", CoordinatesJson: `[10.7,59.93]`, RadiusM: 300}, "<circle>59.930000,10.700000 0.300</circle>"},
	}
	lint := ""
	if p, err := exec.LookPath("xmllint"); err == nil {
		lint = p
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := event("alm-00000007", 1, "raised", "raised")
			ev.Alarm.ZoneId = "home"
			ev.Alarm.Area = c.area
			doc, err := build(ev).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(doc), c.want) || !strings.Contains(string(doc), "<areaDesc>Zone home</areaDesc>") {
				t.Fatalf("no %s in\n%s", c.want, doc)
			}
			if lint == "" {
				return
			}
			f := filepath.Join(t.TempDir(), "a.xml")
			os.WriteFile(f, doc, 0o600)
			if out, err := validate(t, lint, []string{f}); err != nil {
				t.Fatalf("does not validate: %v\n%s", err, out)
			}
		})
	}
	// Garbage coordinates give no zone area, never a broken document.
	ev := event("alm-00000008", 1, "raised", "raised")
	ev.Alarm.Area = &pluginpb.Area{Type: "Polygon", CoordinatesJson: `{"x":`}
	if _, ok := zoneArea(ev.Alarm); ok {
		t.Fatal("an area from garbage coordinates")
	}
}
