package gateway_test

import (
	"net"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// The 2.0 counterparts of BenchmarkSessionPublish and
// BenchmarkE2EPublishLoopback (bench_test.go): the same core, link and
// payload, the sensor speaking MQTT-SN 2.0 and publishing by the session
// alias its REGISTER got (or by topic name, "byname").

// recv2 is pipeLink.recv for 2.0 packets.
func (l *pipeLink) recv2(b *testing.B, d *sn.DecoderV2, expired <-chan struct{}) sn.MessageV2 {
	b.Helper()
	select {
	case buf := <-l.out:
		m, err := d.Decode(buf)
		l.free <- buf
		if err != nil {
			b.Fatalf("decode reply %x: %v", buf, err)
		}
		return m
	case <-expired:
		b.Fatal("no reply from the gateway before the benchmark's deadline")
	}
	return nil
}

func BenchmarkSessionPublishV2(b *testing.B) {
	cases := []struct {
		name   string
		qos    sn.QoS
		byName bool
	}{
		{"qos0", sn.QoS0, false},
		{"qos1", sn.QoS1, false},
		{"qos1-byname", sn.QoS1, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			const topic = "bench/session"
			g, got := benchCore(b, topic)
			link := newPipeLink()
			served := make(chan error, 1)
			go func() { served <- g.Serve(link) }() // ends when the gateway closes the link
			b.Cleanup(func() { g.Close(); <-served })

			expired := benchContext(b).Done()
			var d sn.DecoderV2
			send := func(m sn.MessageV2) {
				f, err := m.AppendBinary(nil)
				if err != nil {
					b.Fatal(err)
				}
				link.in <- f
			}
			send(&sn.ConnectV2{CleanStart: true, PacketID: 1, KeepAlive: 600, ClientID: []byte("bench-sensor")})
			if m, ok := link.recv2(b, &d, expired).(*sn.ConnackV2); !ok || m.ReasonCode != sn.Success {
				b.Fatalf("CONNECT answered with %v; want CONNACK success", m)
			}
			send(&sn.RegisterV2{PacketID: 2, TopicName: []byte(topic)})
			ra, ok := link.recv2(b, &d, expired).(*sn.RegackV2)
			if !ok || ra.ReasonCode != sn.Success || !ra.HasTopicAlias {
				b.Fatalf("REGISTER answered with %v; want REGACK with an alias", ra)
			}
			alias := ra.TopicAlias
			payload := make([]byte, 64)
			frames := [2][]byte{make([]byte, 0, 128), make([]byte, 0, 128)}
			id := uint16(2)
			b.ResetTimer()
			cpu := startCPU(b)
			defer cpu.stop()
			for i := 0; b.Loop(); i++ {
				id++
				if id == 0 {
					id = 1
				}
				p := sn.PublishV2{QoS: tc.qos, TopicType: sn.TopicTypeSession, TopicAlias: alias, Data: payload}
				if tc.byName {
					p.TopicType, p.TopicAlias, p.TopicName = sn.TopicTypeName, 0, []byte(topic)
				}
				if tc.qos != sn.QoS0 {
					p.PacketID = id
				}
				f, _ := p.AppendBinary(frames[i%2][:0]) // alternate: the gateway may still hold the previous one
				link.in <- f
				waitGot(b, got, expired)
				if tc.qos == sn.QoS1 {
					if pa, ok := link.recv2(b, &d, expired).(*sn.PubackV2); !ok || pa.PacketID != id || pa.ReasonCode != sn.Success {
						b.Fatalf("PUBLISH %d answered with %v; want PUBACK", id, pa)
					}
				}
			}
		})
	}
}

func BenchmarkE2EPublishLoopbackV2(b *testing.B) {
	for _, qos := range []sn.QoS{sn.QoS0, sn.QoS1} {
		b.Run("qos"+qos.String(), func(b *testing.B) {
			b.ReportAllocs()
			const topic = "bench/e2e"
			g, got := benchCore(b, topic)
			udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- g.Serve(udp) }() // ends when the gateway closes udp
			b.Cleanup(func() { g.Close(); <-served })

			ctx := benchContext(b)
			c, err := snclient.Dial(ctx, "udp4", udp.LocalAddr().String(),
				snclient.Options{ClientID: "bench-e2e", KeepAlive: 10 * time.Minute, Version: sn.Version20})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if err := c.Connect(ctx); err != nil {
				b.Fatal(err)
			}
			t := snclient.Named(topic)
			if _, err := c.Register(ctx, topic); err != nil { // then PUBLISH by alias
				b.Fatal(err)
			}
			payload := make([]byte, 64)
			expired := ctx.Done()
			b.ResetTimer()
			cpu := startCPU(b)
			defer cpu.stop()
			for b.Loop() {
				if err := c.Publish(ctx, t, qos, false, payload); err != nil {
					b.Fatal(err)
				}
				waitGot(b, got, expired)
			}
		})
	}
}
