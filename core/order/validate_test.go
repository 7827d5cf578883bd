package order

import (
	"strings"
	"testing"
	"time"
)

const validOrder = `{
  "id": "ord-0001",
  "reference": "24-123456AST-TOSL/05",
  "basis": "straffeloven-57",
  "valid_from": "2026-11-26T00:00:00Z",
  "valid_until": "2027-05-26T00:00:00Z",
  "offender": {"device": "864717003283581"},
  "protected": [{"device": "unit-0017"}],
  "dynamic_zone": {"radius_m": 500, "warning_m": 1000},
  "zones": [
    {"id": "home", "kind": "exclusion", "warning_m": 200,
     "geometry": {"type": "Polygon", "coordinates": [[[10.75,59.91],[10.76,59.91],[10.76,59.92],[10.75,59.91]]]}},
    {"id": "work", "kind": "exclusion", "warning_m": 200, "radius_m": 300,
     "geometry": {"type": "Point", "coordinates": [10.70, 59.93]}},
    {"id": "night", "kind": "inclusion", "radius_m": 150,
     "geometry": {"type": "Point", "coordinates": [10.60, 59.95]},
     "schedule": {"timezone": "Europe/Oslo", "windows": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "from": "22:00", "to": "06:00"}]}}
  ]
}`

func TestTheAPIExampleIsValid(t *testing.T) {
	o, fe := Decode([]byte(validOrder))
	if fe != nil {
		t.Fatal(fe)
	}
	if fe := o.Validate(); fe != nil {
		t.Fatal(fe)
	}
	if len(o.Zones) != 3 || o.Zones[2].Schedule == nil {
		t.Fatalf("decoded %+v", o)
	}
}

func TestValidationNamesTheField(t *testing.T) {
	cases := []struct {
		name, from, to, field, msg string
	}{
		{"unclosed ring", `[10.76,59.92],[10.75,59.91]]]}`, `[10.76,59.92],[10.75,59.915]]]}`, "zones[0].geometry.coordinates[0]", "not closed"},
		{"too few positions", `[[[10.75,59.91],[10.76,59.91],[10.76,59.92],[10.75,59.91]]]`, `[[[10.75,59.91],[10.76,59.91],[10.75,59.91]]]`, "zones[0].geometry.coordinates[0]", "at least 4"},
		{"self-intersecting ring", `[[[10.75,59.91],[10.76,59.91],[10.76,59.92],[10.75,59.91]]]`, `[[[10.75,59.91],[10.76,59.92],[10.76,59.91],[10.75,59.92],[10.75,59.91]]]`, "zones[0].geometry.coordinates[0]", "intersect"},
		{"latitude out of range", `[10.70, 59.93]`, `[10.70, 95]`, "zones[1].geometry.coordinates", "95"},
		{"non-positive radius", `"radius_m": 300`, `"radius_m": 0`, "zones[1].radius_m", "positive"},
		{"negative radius", `"radius_m": 300`, `"radius_m": -5`, "zones[1].radius_m", "positive"},
		{"unknown kind", `"kind": "exclusion", "warning_m": 200, "radius_m"`, `"kind": "forbidden", "warning_m": 200, "radius_m"`, "zones[1].kind", "forbidden"},
		{"unknown geometry", `"type": "Point", "coordinates": [10.70`, `"type": "LineString", "coordinates": [10.70`, "zones[1].geometry.type", "LineString"},
		{"unknown basis", `"straffeloven-57"`, `"guesswork"`, "basis", "guesswork"},
		{"missing offender", `"offender": {"device": "864717003283581"}`, `"offender": {"device": ""}`, "offender.device", "required"},
		{"duplicate zone id", `{"id": "work"`, `{"id": "home"`, "zones[1].id", "zones[0]"},
		{"bad window day", `"sat","sun"]`, `"sat","sunday"]`, "zones[2].schedule.windows[0].days[6]", "sunday"},
		{"bad window time", `"from": "22:00"`, `"from": "25:00"`, "zones[2].schedule.windows[0].from", "25:00"},
		{"warning inside dynamic radius", `"warning_m": 1000}`, `"warning_m": 400}`, "dynamic_zone.warning_m", "larger"},
		{"end before start", `"valid_until": "2027-05-26T00:00:00Z"`, `"valid_until": "2025-05-26T00:00:00Z"`, "valid_until", "after"},
		{"same device twice", `[{"device": "unit-0017"}]`, `[{"device": "864717003283581"}]`, "protected[0].device", "offender"},
		{"unknown field", `"basis"`, `"colour": "red", "basis"`, "colour", "unknown field"},
		{"wrong type", `"radius_m": 150`, `"radius_m": "150"`, "zones[2].radius_m", "float64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(validOrder, c.from) {
				t.Fatalf("fixture does not contain %q", c.from)
			}
			src := strings.Replace(validOrder, c.from, c.to, 1)
			o, fe := Decode([]byte(src))
			if fe == nil {
				fe = o.Validate()
			}
			if fe == nil {
				t.Fatalf("accepted")
			}
			if fe.Field != c.field || !strings.Contains(fe.Error(), c.msg) {
				t.Fatalf("got field %q, message %q; want field %q and a message with %q", fe.Field, fe.Error(), c.field, c.msg)
			}
		})
	}
}

func TestScheduleAcrossMidnightAndDST(t *testing.T) {
	night := &Schedule{Timezone: "Europe/Oslo", Windows: []Window{{Days: []string{"fri"}, From: "22:00", To: "06:00"}}}
	oslo := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, oslo)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	cases := []struct {
		at   string
		want bool
	}{
		{"2026-11-27 21:59", false}, // Friday before the window
		{"2026-11-27 22:00", true},
		{"2026-11-28 05:59", true}, // Saturday morning: Friday's window still open
		{"2026-11-28 06:00", false},
		{"2026-11-28 22:30", false}, // Saturday night is not listed
	}
	for _, c := range cases {
		if got := night.Applies(oslo(c.at)); got != c.want {
			t.Errorf("%s: applies = %v, want %v", c.at, got, c.want)
		}
	}
	// Spring forward (29 March 2026, 02:00 → 03:00): a window 02:00–03:00 does not exist that night, and
	// 01:59 CET and 03:00 CEST are one minute apart.
	spring := &Schedule{Timezone: "Europe/Oslo", Windows: []Window{{Days: []string{"sun"}, From: "01:00", To: "03:00"}}}
	before := time.Date(2026, 3, 29, 0, 59, 0, 0, time.UTC) // 01:59 CET
	after := before.Add(time.Minute)                        // 03:00 CEST
	if !spring.Applies(before) || spring.Applies(after) {
		t.Errorf("spring: applies(01:59)=%v applies(03:00)=%v, want true, false", spring.Applies(before), spring.Applies(after))
	}
	// Fall back (25 October 2026, 03:00 CEST → 02:00 CET): 02:30 happens twice; a window 02:00–03:00 is open
	// both times, two hours of real time.
	fall := &Schedule{Timezone: "Europe/Oslo", Windows: []Window{{Days: []string{"sun"}, From: "02:00", To: "03:00"}}}
	first := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC) // 02:30 CEST
	second := first.Add(time.Hour)                          // 02:30 CET
	if !fall.Applies(first) || !fall.Applies(second) || fall.Applies(second.Add(time.Hour)) {
		t.Errorf("fall: %v %v %v", fall.Applies(first), fall.Applies(second), fall.Applies(second.Add(time.Hour)))
	}
	// An exemption switches the zone off.
	ex := &Schedule{Timezone: "Europe/Oslo", Windows: night.Windows, Exemptions: []Exemption{{From: oslo("2026-11-27 21:00"), Until: oslo("2026-11-28 01:00")}}}
	if ex.Applies(oslo("2026-11-27 23:00")) || !ex.Applies(oslo("2026-11-28 01:00")) {
		t.Error("exemption not honoured")
	}
}
