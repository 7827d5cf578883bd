// Package device holds what Skjold knows of a tag or a protected person's unit: the observations its
// driver reports and the live state derived from them.
package device

import (
	"fmt"
	"math"
	"time"
)

// Strap is the state of an ankle tag's strap (or a unit's case).
type Strap string

const (
	StrapUnknown Strap = ""
	StrapClosed  Strap = "closed"
	StrapOpen    Strap = "open"
)

// Fix is a position reported by a device.
type Fix struct {
	Lat       float64   `json:"lat"`
	Lon       float64   `json:"lon"`
	AccuracyM float64   `json:"accuracy_m"`
	Time      time.Time `json:"time"`
}

// Observation is one report from a device: a fix, a status, or both. Optional fields are nil when the
// device did not report them. It is the unit that drivers send and the replicated log carries.
type Observation struct {
	Device     string    `json:"device"`
	Time       time.Time `json:"time"`
	Lat        *float64  `json:"lat,omitempty"`
	Lon        *float64  `json:"lon,omitempty"`
	AccuracyM  *float64  `json:"accuracy_m,omitempty"`
	SpeedMps   *float64  `json:"speed_mps,omitempty"`
	HeadingDeg *float64  `json:"heading_deg,omitempty"`
	BatteryPct *int      `json:"battery_pct,omitempty"`
	Strap      Strap     `json:"strap,omitempty"`
	Charging   *bool     `json:"charging,omitempty"`
	Source     string    `json:"source,omitempty"`
	// Driver and Node are filled by the node that received the observation, not by the device.
	Driver string `json:"driver,omitempty"`
	Node   string `json:"node,omitempty"`
}

// HasFix reports whether the observation carries a position.
func (o *Observation) HasFix() bool { return o.Lat != nil && o.Lon != nil }

// Fix returns the observation's position; ok is false when it carries none.
func (o *Observation) Fix() (f Fix, ok bool) {
	if !o.HasFix() {
		return Fix{}, false
	}
	f = Fix{Lat: *o.Lat, Lon: *o.Lon, Time: o.Time}
	if o.AccuracyM != nil {
		f.AccuracyM = *o.AccuracyM
	}
	return f, true
}

// FieldError names the field of an observation that is invalid.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// MaxDeviceIDLen bounds device ids (an IMEI is 15 digits; vendor ids are short).
const MaxDeviceIDLen = 64

// Validate checks an observation. Field names are relative to the observation ("lat", "battery_pct").
func (o *Observation) Validate() *FieldError {
	switch {
	case o.Device == "":
		return &FieldError{"device", "is required"}
	case len(o.Device) > MaxDeviceIDLen:
		return &FieldError{"device", fmt.Sprintf("is %d bytes long, at most %d are allowed", len(o.Device), MaxDeviceIDLen)}
	case o.Time.IsZero():
		return &FieldError{"time", "is required (RFC 3339)"}
	case (o.Lat == nil) != (o.Lon == nil):
		if o.Lat == nil {
			return &FieldError{"lat", "is required when lon is given"}
		}
		return &FieldError{"lon", "is required when lat is given"}
	}
	if o.Lat != nil {
		if !finite(*o.Lat) || *o.Lat < -90 || *o.Lat > 90 {
			return &FieldError{"lat", fmt.Sprintf("%v is out of range [-90, 90]", *o.Lat)}
		}
		if !finite(*o.Lon) || *o.Lon < -180 || *o.Lon > 180 {
			return &FieldError{"lon", fmt.Sprintf("%v is out of range [-180, 180]", *o.Lon)}
		}
	} else if o.AccuracyM != nil {
		return &FieldError{"accuracy_m", "given without a position"}
	}
	if o.AccuracyM != nil && (!finite(*o.AccuracyM) || *o.AccuracyM < 0 || *o.AccuracyM > 100000) {
		return &FieldError{"accuracy_m", fmt.Sprintf("%v is out of range [0, 100000]", *o.AccuracyM)}
	}
	if o.SpeedMps != nil && (!finite(*o.SpeedMps) || *o.SpeedMps < 0 || *o.SpeedMps > 350) {
		return &FieldError{"speed_mps", fmt.Sprintf("%v is out of range [0, 350]", *o.SpeedMps)}
	}
	if o.HeadingDeg != nil && (!finite(*o.HeadingDeg) || *o.HeadingDeg < 0 || *o.HeadingDeg >= 360) {
		return &FieldError{"heading_deg", fmt.Sprintf("%v is out of range [0, 360)", *o.HeadingDeg)}
	}
	if o.BatteryPct != nil && (*o.BatteryPct < 0 || *o.BatteryPct > 100) {
		return &FieldError{"battery_pct", fmt.Sprintf("%d is out of range [0, 100]", *o.BatteryPct)}
	}
	switch o.Strap {
	case StrapUnknown, StrapClosed, StrapOpen:
	default:
		return &FieldError{"strap", fmt.Sprintf("%q is not one of \"closed\", \"open\"", o.Strap)}
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Role is what a device's wearer is to its order.
type Role string

const (
	Offender  Role = "offender"
	Protected Role = "protected"
)

// State is the live state of a device bound to an order: what the API shows and the evaluator keeps.
type State struct {
	Device     string    `json:"device"`
	OrderID    string    `json:"order_id"`
	Role       Role      `json:"role"`
	BoundAt    time.Time `json:"bound_at"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	LastFix    *Fix      `json:"last_fix,omitempty"`
	SpeedMps   *float64  `json:"speed_mps,omitempty"`
	HeadingDeg *float64  `json:"heading_deg,omitempty"`
	BatteryPct *int      `json:"battery_pct,omitempty"`
	Strap      Strap     `json:"strap,omitempty"`
	Charging   *bool     `json:"charging,omitempty"`
	Driver     string    `json:"driver,omitempty"`
	Node       string    `json:"node,omitempty"`
}

// Command is an instruction to a device, produced by the evaluator and delivered through the driver that
// last heard the device: vibrate or warn the wearer, or change how often it reports.
type Command struct {
	ID     string            `json:"id"` // idempotency key
	Device string            `json:"device"`
	Kind   string            `json:"kind"` // "vibrate", "warn", "report_interval"
	Args   map[string]string `json:"args,omitempty"`
	Reason string            `json:"reason,omitempty"` // the alarm that caused it
	At     time.Time         `json:"at"`
}

// Command kinds.
const (
	CommandVibrate        = "vibrate"
	CommandWarn           = "warn"
	CommandReportInterval = "report_interval"
)
