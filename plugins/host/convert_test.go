package host

import (
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/device"
	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

func f64(v float64) *float64 { return &v }
func i32(v int32) *int32     { return &v }
func bl(v bool) *bool        { return &v }

func TestConvertObservation(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	o, fe := ConvertObservation(&pluginpb.Observation{
		Device: "864717003283581", Time: timestamppb.New(at), HasFix: true, Lat: 59.9, Lon: 10.7, AccuracyM: 8,
		SpeedMps: f64(1.5), HeadingDeg: f64(270), BatteryPct: i32(42), Strap: pluginpb.Strap_STRAP_OPEN,
		Charging: bl(true), Source: "gt06:0x22",
	}, "gt06", "node-b")
	if fe != nil {
		t.Fatal(fe)
	}
	if o.Device != "864717003283581" || !o.Time.Equal(at) || *o.Lat != 59.9 || *o.Lon != 10.7 || *o.AccuracyM != 8 ||
		*o.SpeedMps != 1.5 || *o.HeadingDeg != 270 || *o.BatteryPct != 42 || o.Strap != device.StrapOpen ||
		!*o.Charging || o.Source != "gt06:0x22" || o.Driver != "gt06" || o.Node != "node-b" {
		t.Fatalf("%+v", o)
	}

	// Without a fix, position fields stay nil even if the driver left numbers in them; unset optionals
	// stay nil.
	o, fe = ConvertObservation(&pluginpb.Observation{Device: "d", Time: timestamppb.New(at), Lat: 1, Lon: 2}, "sim", "n")
	if fe != nil || o.HasFix() || o.AccuracyM != nil || o.SpeedMps != nil || o.BatteryPct != nil || o.Charging != nil || o.Strap != device.StrapUnknown {
		t.Fatalf("%+v %v", o, fe)
	}
}

func TestConvertObservationErrors(t *testing.T) {
	now := timestamppb.Now()
	cases := []struct {
		o     *pluginpb.Observation
		field string
	}{
		{&pluginpb.Observation{Time: now}, "device"},
		{&pluginpb.Observation{Device: "d"}, "time"},
		{&pluginpb.Observation{Device: "d", Time: &timestamppb.Timestamp{Seconds: 1, Nanos: -5}}, "time"},
		{&pluginpb.Observation{Device: "d", Time: now, HasFix: true, Lat: 91}, "lat"},
		{&pluginpb.Observation{Device: "d", Time: now, HasFix: true, Lon: math.NaN()}, "lon"},
		{&pluginpb.Observation{Device: "d", Time: now, HasFix: true, AccuracyM: -1}, "accuracy_m"},
		{&pluginpb.Observation{Device: "d", Time: now, HeadingDeg: f64(360)}, "heading_deg"},
		{&pluginpb.Observation{Device: "d", Time: now, BatteryPct: i32(101)}, "battery_pct"},
		{&pluginpb.Observation{Device: "d", Time: now, Strap: pluginpb.Strap(7)}, "strap"},
	}
	for _, c := range cases {
		_, fe := ConvertObservation(c.o, "x", "n")
		if fe == nil || fe.Field != c.field {
			t.Errorf("%v: error %v, want one on %q", c.o, fe, c.field)
		}
	}
	_, err := ConvertBatch(&pluginpb.ObservationBatch{Id: 3, Observations: []*pluginpb.Observation{
		{Device: "d", Time: now}, {Device: "d", Time: now, HasFix: true, Lat: 95},
	}}, "x", "n")
	if err == nil || !strings.HasPrefix(err.Error(), "observations[1].lat: 95 is out of range") {
		t.Fatalf("batch error %v", err)
	}
}

func TestAlarmEvent(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	d := 12.5
	ch := alarm.Change{
		Alarm: alarm.Alarm{ID: "alm-7", OrderID: "ord-1", Kind: alarm.MonitoringFault, Class: alarm.Technical, Severity: alarm.Major,
			State: alarm.Acknowledged, Active: true, ZoneID: "z1", Device: "dev", Subject: "plugin:sim", RaisedAt: at,
			Position: &device.Fix{Lat: 59.9, Lon: 10.7, AccuracyM: 4, Time: at}, DistanceM: &d, Message: "sim is down"},
		Transition:   alarm.Transition{Seq: 3, State: alarm.Acknowledged, Event: alarm.EventAcknowledged, At: at.Add(time.Minute), By: "op:kari", Note: "on it"},
		ActivePolice: 2,
	}
	ev := AlarmEvent(ch)
	a, tr := ev.GetAlarm(), ev.GetTransition()
	if ev.GetIdempotencyKey() != "alm-7:3" || ev.GetActivePoliceAlarms() != 2 {
		t.Fatalf("%v", ev)
	}
	if a.GetId() != "alm-7" || a.GetOrderId() != "ord-1" || a.GetKind() != "monitoring_fault" || a.GetClass() != "technical" ||
		a.GetSeverity() != "major" || a.GetState() != "acknowledged" || !a.GetActive() || a.GetSubject() != "plugin:sim" ||
		a.GetZoneId() != "z1" || a.GetDevice() != "dev" || !a.GetRaisedAt().AsTime().Equal(at) || a.GetDistanceM() != 12.5 ||
		a.GetPosition().GetLat() != 59.9 || a.GetPosition().GetAccuracyM() != 4 || a.GetMessage() != "sim is down" {
		t.Fatalf("alarm %v", a)
	}
	if tr.GetSeq() != 3 || tr.GetEvent() != "acknowledged" || tr.GetBy() != "op:kari" || tr.GetNote() != "on it" || !tr.GetAt().AsTime().Equal(at.Add(time.Minute)) {
		t.Fatalf("transition %v", tr)
	}
	// A negative count (never expected) does not wrap around to a huge number that sounds the siren.
	ch.ActivePolice = -1
	if AlarmEvent(ch).GetActivePoliceAlarms() != 0 {
		t.Fatal("negative count wrapped")
	}
	if AlarmEvent(alarm.Change{}).GetAlarm().GetRaisedAt() != nil {
		t.Fatal("zero time sent as a timestamp")
	}
}
