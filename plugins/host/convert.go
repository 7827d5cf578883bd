package host

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// ConvertObservation turns a driver's observation into the node's, with Driver and Node filled, and
// validates it. The error names the field ("time", "lat", "strap").
func ConvertObservation(o *pluginpb.Observation, driver, node string) (device.Observation, *device.FieldError) {
	out := device.Observation{
		Device: o.GetDevice(),
		Source: o.GetSource(),
		Driver: driver,
		Node:   node,
	}
	if ts := o.GetTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return out, &device.FieldError{Field: "time", Message: err.Error()}
		}
		out.Time = ts.AsTime()
	}
	if o.GetHasFix() {
		lat, lon, acc := o.GetLat(), o.GetLon(), o.GetAccuracyM()
		out.Lat, out.Lon, out.AccuracyM = &lat, &lon, &acc
	}
	if o.SpeedMps != nil {
		v := o.GetSpeedMps()
		out.SpeedMps = &v
	}
	if o.HeadingDeg != nil {
		v := o.GetHeadingDeg()
		out.HeadingDeg = &v
	}
	if o.BatteryPct != nil {
		v := int(o.GetBatteryPct())
		out.BatteryPct = &v
	}
	if o.Charging != nil {
		v := o.GetCharging()
		out.Charging = &v
	}
	switch o.GetStrap() {
	case pluginpb.Strap_STRAP_UNKNOWN:
	case pluginpb.Strap_STRAP_CLOSED:
		out.Strap = device.StrapClosed
	case pluginpb.Strap_STRAP_OPEN:
		out.Strap = device.StrapOpen
	default:
		return out, &device.FieldError{Field: "strap", Message: fmt.Sprintf("unknown value %d", o.GetStrap())}
	}
	if fe := out.Validate(); fe != nil {
		return out, fe
	}
	return out, nil
}

// ConvertBatch converts every observation of a batch; the error names the observation and its field,
// e.g. "observations[3].lat: 91 is out of range [-90, 90]".
func ConvertBatch(b *pluginpb.ObservationBatch, driver, node string) ([]device.Observation, error) {
	out := make([]device.Observation, 0, len(b.GetObservations()))
	for i, o := range b.GetObservations() {
		obs, fe := ConvertObservation(o, driver, node)
		if fe != nil {
			return nil, fmt.Errorf("observations[%d].%s: %s", i, fe.Field, fe.Message)
		}
		out = append(out, obs)
	}
	return out, nil
}

func set(t interface{ IsZero() bool }) bool { return !t.IsZero() }

// AlarmEvent turns an alarm change into what hooks receive.
func AlarmEvent(ch alarm.Change) *pluginpb.AlarmEvent {
	a := ch.Alarm
	pa := &pluginpb.Alarm{
		Id:       a.ID,
		OrderId:  a.OrderID,
		Kind:     string(a.Kind),
		Class:    string(a.Class),
		Severity: string(a.Severity),
		State:    string(a.State),
		ZoneId:   a.ZoneID,
		Device:   a.Device,
		Message:  a.Message,
		Subject:  a.Subject,
		Active:   a.Active,
	}
	if set(a.RaisedAt) {
		pa.RaisedAt = timestamppb.New(a.RaisedAt)
	}
	if a.Position != nil {
		pa.Position = &pluginpb.Position{Lat: a.Position.Lat, Lon: a.Position.Lon, AccuracyM: a.Position.AccuracyM}
		if set(a.Position.Time) {
			pa.Position.Time = timestamppb.New(a.Position.Time)
		}
	}
	if a.DistanceM != nil {
		pa.DistanceM = *a.DistanceM
	}
	tr := ch.Transition
	pt := &pluginpb.Transition{Seq: tr.Seq, State: string(tr.State), Event: string(tr.Event), By: tr.By, Note: tr.Note}
	if set(tr.At) {
		pt.At = timestamppb.New(tr.At)
	}
	active := ch.ActivePolice
	if active < 0 {
		active = 0
	}
	if uint64(active) > math.MaxUint32 {
		active = math.MaxUint32
	}
	pa.Certainty, pa.Late = string(a.Certainty), a.Late
	if ar := ch.Area; ar != nil {
		pa.Area = &pluginpb.Area{Type: ar.Type, CoordinatesJson: string(ar.Coordinates), RadiusM: ar.RadiusM}
	}
	pa.Escalation = uint32(max(a.Escalation, 0))
	return &pluginpb.AlarmEvent{
		IdempotencyKey:     alarm.IdempotencyKey(a.ID, tr.Seq),
		Alarm:              pa,
		Transition:         pt,
		ActivePoliceAlarms: uint32(active),
		PoliceEscalation:   uint32(max(ch.PoliceEscalation, 0)),
		SirenAlarms:        uint32(max(ch.SirenAlarms, 0)),
	}
}
