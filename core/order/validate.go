package order

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/skjold-alarm/skjold/core/geo"
)

// FieldError says what is wrong with an order and where, as a path into the JSON document
// ("zones[1].geometry.coordinates[0][3]").
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Limits that keep one order from exhausting a node.
const (
	MaxZones       = 64
	MaxProtected   = 16
	MaxVertices    = 20000 // per zone, all rings together
	MaxDistanceM   = 100000
	maxIDLen       = 64
	maxReferenceLn = 128
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

var weekdays = map[string]bool{"mon": true, "tue": true, "wed": true, "thu": true, "fri": true, "sat": true, "sun": true}

// Decode parses an order from JSON strictly: unknown fields and wrong types are errors naming the field.
func Decode(data []byte) (*Order, *FieldError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var o Order
	if err := dec.Decode(&o); err != nil {
		return nil, JSONErrorIn(data, err)
	}
	if dec.More() {
		return nil, &FieldError{"", "trailing data after the JSON object"}
	}
	return &o, nil
}

// JSONError turns an encoding/json error into a FieldError naming the field where possible.
func JSONError(err error) *FieldError {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case asErr(err, &te):
		return &FieldError{jsonPath(te.Field), fmt.Sprintf("expected %s, got JSON %s", te.Type, te.Value)}
	case asErr(err, &se):
		return &FieldError{"", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &FieldError{strings.Trim(f, `"`), "unknown field"}
	}
	if strings.Contains(msg, "parsing time") {
		return &FieldError{"", "invalid time (RFC 3339 expected): " + strings.TrimPrefix(msg, "parsing time ")}
	}
	return &FieldError{"", "invalid JSON: " + strings.TrimPrefix(msg, "json: ")}
}

func asErr[T error](err error, target *T) bool {
	t, ok := err.(T)
	if ok {
		*target = t
	}
	return ok
}

// JSONErrorIn is JSONError with array indices in the field path, found by walking data to the offset
// of the error (encoding/json reports "zones.radius_m" where the API says "zones[2].radius_m").
func JSONErrorIn(data []byte, err error) *FieldError {
	fe := JSONError(err)
	var te *json.UnmarshalTypeError
	if asErr(err, &te) {
		if p, ok := PathAt(data, te.Offset); ok {
			fe.Field = p
			fe.Message = fmt.Sprintf("expected %s, got JSON %s", te.Type, te.Value)
		}
	}
	return fe
}

// PathAt returns the path of the JSON value that ends at offset in data.
func PathAt(data []byte, offset int64) (string, bool) {
	type level struct {
		array bool
		index int
		key   string
	}
	var stack []level
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	expectKey := false
	path := func() string {
		var b strings.Builder
		for _, l := range stack {
			if l.array {
				fmt.Fprintf(&b, "[%d]", l.index)
			} else if l.key != "" {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(l.key)
			}
		}
		return b.String()
	}
	// value is called after a complete value at the current level; it advances the position.
	value := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				expectKey = true
			}
		}
	}
	for {
		before := path()
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				stack = append(stack, level{array: v == '['})
				expectKey = v == '{'
				if v == '[' {
					stack[len(stack)-1].index = 0
				}
				continue
			default:
				stack = stack[:len(stack)-1]
				if dec.InputOffset() >= offset {
					return before, true
				}
				value()
				continue
			}
		case string:
			if expectKey && len(stack) > 0 && !stack[len(stack)-1].array {
				stack[len(stack)-1].key = v
				expectKey = false
				continue
			}
		}
		if dec.InputOffset() >= offset {
			return path(), true
		}
		value()
	}
}

// jsonPath turns encoding/json's dotted field path ("zones.0.kind") into the API's ("zones[0].kind").
func jsonPath(p string) string {
	parts := strings.Split(p, ".")
	var b strings.Builder
	for i, s := range parts {
		if s == "" {
			continue
		}
		if isIndex(s) {
			b.WriteString("[" + s + "]")
			continue
		}
		if i > 0 && b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

func isIndex(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// Validate checks an order as submitted. It does not check bindings against other orders; the state
// machine does that.
func (o *Order) Validate() *FieldError {
	if o.ID != "" {
		if err := checkID("id", o.ID); err != nil {
			return err
		}
	}
	if strings.TrimSpace(o.Reference) == "" {
		return &FieldError{"reference", "is required"}
	}
	if len(o.Reference) > maxReferenceLn {
		return &FieldError{"reference", fmt.Sprintf("is longer than %d bytes", maxReferenceLn)}
	}
	switch o.Basis {
	case Court, Prosecutor:
	case "":
		return &FieldError{"basis", `is required: "straffeloven-57" or "strpl-222g"`}
	default:
		return &FieldError{"basis", fmt.Sprintf(`%q is not "straffeloven-57" or "strpl-222g"`, o.Basis)}
	}
	if o.ValidFrom.IsZero() {
		return &FieldError{"valid_from", "is required (RFC 3339)"}
	}
	if o.ValidUntil != nil && !o.ValidUntil.After(o.ValidFrom) {
		return &FieldError{"valid_until", "must be after valid_from"}
	}
	if err := checkDevice("offender.device", o.Offender.Device); err != nil {
		return err
	}
	if len(o.Protected) > MaxProtected {
		return &FieldError{"protected", fmt.Sprintf("has %d entries, at most %d are allowed", len(o.Protected), MaxProtected)}
	}
	seen := map[string]string{o.Offender.Device: "offender.device"}
	for i, p := range o.Protected {
		f := fmt.Sprintf("protected[%d].device", i)
		if err := checkDevice(f, p.Device); err != nil {
			return err
		}
		if prev, dup := seen[p.Device]; dup {
			return &FieldError{f, fmt.Sprintf("device %q is already used by %s", p.Device, prev)}
		}
		seen[p.Device] = f
	}
	if dz := o.DynamicZone; dz != nil {
		if len(o.Protected) == 0 {
			return &FieldError{"dynamic_zone", "needs at least one protected person's device"}
		}
		if err := checkDistance("dynamic_zone.radius_m", dz.RadiusM, true); err != nil {
			return err
		}
		if err := checkDistance("dynamic_zone.warning_m", dz.WarningM, false); err != nil {
			return err
		}
		if dz.WarningM != 0 && dz.WarningM <= dz.RadiusM {
			return &FieldError{"dynamic_zone.warning_m", "must be larger than radius_m (it is measured from the protected person)"}
		}
	}
	if o.ApproachLeadS < 0 || o.ApproachLeadS > 7200 {
		return &FieldError{"approach_lead_s", fmt.Sprintf("%d is not in [0, 7200] seconds", o.ApproachLeadS)}
	}
	if len(o.Zones) == 0 && o.DynamicZone == nil {
		return &FieldError{"zones", "an order needs at least one zone or a dynamic_zone"}
	}
	if len(o.Zones) > MaxZones {
		return &FieldError{"zones", fmt.Sprintf("has %d zones, at most %d are allowed", len(o.Zones), MaxZones)}
	}
	ids := map[string]int{}
	for i := range o.Zones {
		z := &o.Zones[i]
		p := fmt.Sprintf("zones[%d]", i)
		if err := checkID(p+".id", z.ID); err != nil {
			return err
		}
		if j, dup := ids[z.ID]; dup {
			return &FieldError{p + ".id", fmt.Sprintf("%q is also the id of zones[%d]", z.ID, j)}
		}
		ids[z.ID] = i
		if err := z.validate(p); err != nil {
			return err
		}
	}
	return nil
}

func (z *Zone) validate(p string) *FieldError {
	switch z.Kind {
	case Exclusion, Inclusion:
	case "":
		return &FieldError{p + ".kind", `is required: "exclusion" or "inclusion"`}
	default:
		return &FieldError{p + ".kind", fmt.Sprintf(`%q is not "exclusion" or "inclusion"`, z.Kind)}
	}
	if err := checkDistance(p+".warning_m", z.WarningM, false); err != nil {
		return err
	}
	if z.Kind == Inclusion && z.WarningM != 0 {
		return &FieldError{p + ".warning_m", "applies to exclusion zones only"}
	}
	g := p + ".geometry"
	if len(z.Geometry.Coordinates) == 0 || string(z.Geometry.Coordinates) == "null" {
		if z.Geometry.Type == "" {
			return &FieldError{g, "is required"}
		}
		return &FieldError{g + ".coordinates", "is required"}
	}
	switch z.Geometry.Type {
	case "Point":
		var c []float64
		if err := json.Unmarshal(z.Geometry.Coordinates, &c); err != nil {
			return &FieldError{g + ".coordinates", "a Point needs [lon, lat]"}
		}
		if err := geo.ValidatePoint(c); err != nil {
			return &FieldError{g + "." + err.Path, err.Message}
		}
		if err := checkDistance(p+".radius_m", z.RadiusM, true); err != nil {
			return err
		}
	case "Polygon":
		var c [][][]float64
		if err := json.Unmarshal(z.Geometry.Coordinates, &c); err != nil {
			return &FieldError{g + ".coordinates", "a Polygon needs an array of rings of [lon, lat] positions"}
		}
		if n := vertices3(c); n > MaxVertices {
			return &FieldError{g + ".coordinates", fmt.Sprintf("has %d positions, at most %d are allowed", n, MaxVertices)}
		}
		if err := geo.ValidatePolygon(c); err != nil {
			return &FieldError{g + "." + err.Path, err.Message}
		}
		if z.RadiusM != 0 {
			return &FieldError{p + ".radius_m", "applies to Point zones only"}
		}
	case "MultiPolygon":
		var c [][][][]float64
		if err := json.Unmarshal(z.Geometry.Coordinates, &c); err != nil {
			return &FieldError{g + ".coordinates", "a MultiPolygon needs an array of polygons"}
		}
		n := 0
		for _, pc := range c {
			n += vertices3(pc)
		}
		if n > MaxVertices {
			return &FieldError{g + ".coordinates", fmt.Sprintf("has %d positions, at most %d are allowed", n, MaxVertices)}
		}
		if err := geo.ValidateMultiPolygon(c); err != nil {
			return &FieldError{g + "." + err.Path, err.Message}
		}
		if z.RadiusM != 0 {
			return &FieldError{p + ".radius_m", "applies to Point zones only"}
		}
	case "":
		return &FieldError{g + ".type", `is required: "Polygon", "MultiPolygon" or "Point"`}
	default:
		return &FieldError{g + ".type", fmt.Sprintf(`%q is not "Polygon", "MultiPolygon" or "Point"`, z.Geometry.Type)}
	}
	if z.Schedule != nil {
		return z.Schedule.validate(p + ".schedule")
	}
	return nil
}

func (s *Schedule) validate(p string) *FieldError {
	if s.Timezone != "Europe/Oslo" {
		return &FieldError{p + ".timezone", fmt.Sprintf(`%q is not supported: use "Europe/Oslo"`, s.Timezone)}
	}
	if len(s.Windows) == 0 {
		return &FieldError{p + ".windows", "a schedule needs at least one window"}
	}
	for i, w := range s.Windows {
		wp := fmt.Sprintf("%s.windows[%d]", p, i)
		if len(w.Days) == 0 {
			return &FieldError{wp + ".days", "needs at least one day"}
		}
		for j, d := range w.Days {
			if !weekdays[d] {
				return &FieldError{fmt.Sprintf("%s.days[%d]", wp, j), fmt.Sprintf("%q is not one of mon, tue, wed, thu, fri, sat, sun", d)}
			}
		}
		from, ok1 := ClockMinutes(w.From)
		if !ok1 {
			return &FieldError{wp + ".from", fmt.Sprintf("%q is not a time of day HH:MM", w.From)}
		}
		to, ok2 := ClockMinutes(w.To)
		if !ok2 {
			return &FieldError{wp + ".to", fmt.Sprintf("%q is not a time of day HH:MM (24:00 is allowed)", w.To)}
		}
		if from == to {
			return &FieldError{wp + ".to", "must differ from from"}
		}
	}
	for i, e := range s.Exemptions {
		ep := fmt.Sprintf("%s.exemptions[%d]", p, i)
		if e.From.IsZero() {
			return &FieldError{ep + ".from", "is required"}
		}
		if !e.Until.After(e.From) {
			return &FieldError{ep + ".until", "must be after from"}
		}
	}
	return nil
}

// ClockMinutes parses "HH:MM" (00:00 to 24:00) into minutes after midnight.
func ClockMinutes(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		if s == "24:00" {
			return 24 * 60, true
		}
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

func vertices3(c [][][]float64) int {
	n := 0
	for _, r := range c {
		n += len(r)
	}
	return n
}

func checkID(field, id string) *FieldError {
	switch {
	case id == "":
		return &FieldError{field, "is required"}
	case len(id) > maxIDLen:
		return &FieldError{field, fmt.Sprintf("is longer than %d bytes", maxIDLen)}
	case !idPattern.MatchString(id):
		return &FieldError{field, fmt.Sprintf("%q may contain only letters, digits and . _ : -", id)}
	}
	return nil
}

func checkDevice(field, d string) *FieldError {
	if d == "" {
		return &FieldError{field, "is required"}
	}
	return checkID(field, d)
}

func checkDistance(field string, v float64, required bool) *FieldError {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return &FieldError{field, "must be a finite number of metres"}
	case required && v <= 0:
		return &FieldError{field, fmt.Sprintf("must be a positive number of metres, got %v", v)}
	case v < 0:
		return &FieldError{field, fmt.Sprintf("must not be negative, got %v", v)}
	case v > MaxDistanceM:
		return &FieldError{field, fmt.Sprintf("%v is more than %d m", v, MaxDistanceM)}
	}
	return nil
}
