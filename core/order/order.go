// Package order defines a restraining order as Skjold enforces it: who wears the tag, who is protected,
// where the offender must not go (or must stay), and when. Orders come from court judgments
// (straffeloven § 57) or prosecutor decisions (straffeprosessloven § 222 g).
package order

import (
	"encoding/json"
	"time"
)

// Basis is the legal basis of an order.
type Basis string

const (
	Court      Basis = "straffeloven-57"
	Prosecutor Basis = "strpl-222g"
)

// State of an order. An order is active from creation until it is ended; it is in force while active and
// inside its validity window.
type State string

const (
	Active State = "active"
	Ended  State = "ended"
)

// ZoneKind says whether the offender must stay out of a zone or inside it.
type ZoneKind string

const (
	Exclusion ZoneKind = "exclusion"
	Inclusion ZoneKind = "inclusion"
)

// Party is a person bound by or protected by an order, known by the device they carry.
type Party struct {
	Device string `json:"device"`
	Name   string `json:"name,omitempty"`
}

// DynamicZone is the radius around each protected person's latest fix that the offender must not enter,
// with a warning buffer beyond it.
type DynamicZone struct {
	RadiusM  float64 `json:"radius_m"`
	WarningM float64 `json:"warning_m,omitempty"`
}

// Geometry is a GeoJSON geometry (RFC 7946): Polygon, MultiPolygon, or Point (a circle with the zone's
// radius_m). Coordinates are kept raw and decoded by type during validation.
type Geometry struct {
	Type        string          `json:"type"`
	Coordinates json.RawMessage `json:"coordinates"`
}

// Window is a weekly time window in the schedule's time zone. From may be after To: the window then
// crosses midnight and ends on the next day.
type Window struct {
	Days []string `json:"days"`
	From string   `json:"from"`
	To   string   `json:"to"`
}

// Exemption suspends a zone for a period, e.g. a court-authorised visit.
type Exemption struct {
	From   time.Time `json:"from"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
}

// Schedule limits when a zone applies. No schedule means always.
type Schedule struct {
	Timezone   string      `json:"timezone"`
	Windows    []Window    `json:"windows"`
	Exemptions []Exemption `json:"exemptions,omitempty"`
}

// Zone is one area of an order.
type Zone struct {
	ID       string    `json:"id"`
	Kind     ZoneKind  `json:"kind"`
	WarningM float64   `json:"warning_m,omitempty"`
	RadiusM  float64   `json:"radius_m,omitempty"`
	Geometry Geometry  `json:"geometry"`
	Schedule *Schedule `json:"schedule,omitempty"`
}

// Order is the API's view of an order, and what the replicated log carries.
type Order struct {
	ID          string       `json:"id"`
	Reference   string       `json:"reference"`
	Basis       Basis        `json:"basis"`
	ValidFrom   time.Time    `json:"valid_from"`
	ValidUntil  *time.Time   `json:"valid_until,omitempty"`
	Offender    Party        `json:"offender"`
	Protected   []Party      `json:"protected,omitempty"`
	DynamicZone *DynamicZone `json:"dynamic_zone,omitempty"`
	Zones       []Zone       `json:"zones"`
	// ApproachLeadS is how many seconds before the offender would reach a zone or a protected person an
	// approach alarm is raised (default 600: police response time is what zones are sized by).
	ApproachLeadS int `json:"approach_lead_s,omitempty"`

	// Set by Skjold, ignored on input.
	State     State      `json:"state,omitempty"`
	Version   int        `json:"version,omitempty"`
	CreatedAt time.Time  `json:"created_at,omitzero"`
	CreatedBy string     `json:"created_by,omitempty"`
	UpdatedAt time.Time  `json:"updated_at,omitzero"`
	UpdatedBy string     `json:"updated_by,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	EndedBy   string     `json:"ended_by,omitempty"`
	EndReason string     `json:"end_reason,omitempty"`
}

// InForce reports whether the order is enforced at time t.
func (o *Order) InForce(t time.Time) bool {
	if o.State != Active || t.Before(o.ValidFrom) {
		return false
	}
	return o.ValidUntil == nil || t.Before(*o.ValidUntil)
}

// Devices lists the order's devices, offender first.
func (o *Order) Devices() []string {
	ds := make([]string, 0, 1+len(o.Protected))
	ds = append(ds, o.Offender.Device)
	for _, p := range o.Protected {
		ds = append(ds, p.Device)
	}
	return ds
}
