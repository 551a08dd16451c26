package benchfleet

import (
	"testing"
	"time"
)

func TestMerge(t *testing.T) {
	var h1, h2, c1, c2 Histogram
	for range 90 {
		h1.Record(time.Millisecond)
	}
	for range 10 {
		h2.Record(100 * time.Millisecond)
	}
	c1.Record(2 * time.Second)
	c2.Record(3 * time.Second)
	a := &Report{Scenario: ScenarioPublish, Sensors: 2, Sent: 90, Expected: 90, Delivered: 90, Errors: 1,
		FirstErrors: []string{"e1"}, SentPerSec: 45, DeliveredPerSec: 45, SendSeconds: 2,
		Latency: h1.Summary(), Histogram: h1.Buckets(), Timeline: []Slot{{0, 10, 10}},
		Connect: &ConnectReport{Connected: 2, StartUnixNano: 1e9, EndUnixNano: 3e9, Latency: c1.Summary(), Histogram: c1.Buckets()}}
	b := &Report{Scenario: ScenarioPublish, Sensors: 3, Sent: 12, Expected: 12, Delivered: 10, Lost: 2,
		SentPerSec: 6, DeliveredPerSec: 5, SendSeconds: 2.5,
		Latency: h2.Summary(), Histogram: h2.Buckets(), Timeline: []Slot{{0, 1, 1}, {1, 2, 2}},
		Connect: &ConnectReport{Connected: 3, Failed: 1, StartUnixNano: 1.5e9, EndUnixNano: 5e9, Latency: c2.Summary(), Histogram: c2.Buckets()}}
	m, err := Merge([]*Report{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if m.Sensors != 5 || m.Sent != 102 || m.Delivered != 100 || m.Lost != 2 || m.Errors != 1 || m.SentPerSec != 51 || m.SendSeconds != 2.5 {
		t.Errorf("merged counts %+v; want sensors 5, sent 102, delivered 100, lost 2, errors 1, 51 sent/s, 2.5 s", m)
	}
	if m.Latency.Count != 100 || m.Latency.P50Ms > 1.07 || m.Latency.P99Ms < 99 || m.Latency.MaxMs != 100 {
		t.Errorf("merged latency %+v; want 100 samples, p50 ~1 ms, p99 ~100 ms, max 100 ms", m.Latency)
	}
	if c := m.Connect; c == nil || c.Connected != 5 || c.Failed != 1 || c.Seconds != 4 || c.Latency.MaxMs != 3000 {
		t.Errorf("merged connect %+v; want 5 connected, 1 failed, 4 s from first start to last CONNACK, max 3 s", c)
	}
	if len(m.Timeline) != 2 || m.Timeline[0].SentPerSec != 11 {
		t.Errorf("merged timeline %+v; want 2 slots, 11 sent/s in the first", m.Timeline)
	}
	if _, err := Merge([]*Report{a, {Scenario: ScenarioIdle}}); err == nil {
		t.Error("Merge of different scenarios = nil error; want one")
	}
	if _, err := Merge(nil); err == nil {
		t.Error("Merge(nil) = nil error; want one")
	}
}
