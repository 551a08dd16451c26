package gateway_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/memlink"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// BenchmarkInspect100k measures the read API on a gateway with 100,000
// sleeping sensors (over memlink): Stats is what a /metrics scrape reads,
// Counts the walk over every client it did before (and Counts' callers
// still do), SensorsPage what a status page refresh costs.
//
//	go test -run NONE -bench Inspect100k -benchtime 20x ./gateway/
func BenchmarkInspect100k(b *testing.B) {
	const n = 100_000
	br, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	g, err := gateway.New(gateway.Config{Loops: 2}, br, gateway.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	nw := memlink.New()
	link, err := nw.Listen("10.0.0.1:1884")
	if err != nil {
		b.Fatal(err)
	}
	go g.Serve(link) // returns when g.Close closes the link
	buf := make([]byte, 64)
	frame := make([]byte, 0, 64)
	for i := range n {
		s, err := nw.Listen(fmt.Sprintf("10.%d.%d.%d:5000", 1+i/65536, (i/256)%256, i%256))
		if err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("sensor-%06d", i)
		for _, m := range []sn.Message{
			&sn.Connect{Duration: 60, ClientID: []byte(id)},
			&sn.Disconnect{HasDuration: true, Duration: 3600},
		} {
			frame, _ = m.AppendBinary(frame[:0])
			if _, err := s.WriteToUDPAddrPort(frame, link.AddrPort()); err != nil {
				b.Fatal(err)
			}
			if _, _, err := s.ReadFromUDPAddrPort(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	// Stats is what a /metrics scrape reads now: gauges kept as clients
	// change, no walk.
	b.Run("Stats", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if st := g.Stats(); st.Asleep != n {
				b.Fatalf("Stats().Asleep = %d; want %d", st.Asleep, n)
			}
		}
	})
	b.Run("Counts", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := g.Counts(ctx)
			if err != nil || c.Asleep != n {
				b.Fatalf("Counts = %+v, %v", c, err)
			}
		}
	})
	b.Run("SensorsPage", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := g.Sensors(ctx, gateway.SensorQuery{Offset: 50_000, Limit: 50})
			if err != nil || len(p.Sensors) != 50 || p.Matching != n {
				b.Fatalf("Sensors = %d of %d, %v", len(p.Sensors), p.Matching, err)
			}
		}
	})
	b.Run("SensorsSearch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := g.Sensors(ctx, gateway.SensorQuery{Search: "sensor-0999", Limit: 50})
			if err != nil || p.Matching != 100 {
				b.Fatalf("Sensors = %d, %v", p.Matching, err)
			}
		}
	})
}
