package mqttcore_test

import (
	"strconv"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// fanout sets up n attached sessions subscribed to "fan/#" at qos.
func fanout(tb testing.TB, n int, qos mqttcore.QoS) (*mqttcore.Broker, []*mqttcore.Conn) {
	b := newBroker(tb, mqttcore.Config{})
	conns := make([]*mqttcore.Conn, n)
	for i := range conns {
		c, _ := attach(tb, b, persistent("c"+strconv.Itoa(i)))
		subscribe(tb, c, "fan/#", mqttcore.SubOptions{QoS: qos})
		conns[i] = c
	}
	return b, conns
}

// publishAndDrain publishes m and has every subscriber take it.
func publishAndDrain(tb testing.TB, in *mqttcore.Inline, m *mqttcore.Message, conns []*mqttcore.Conn) {
	if err := in.Publish(m); err != nil {
		tb.Fatal(err)
	}
	for _, c := range conns {
		d, ok := c.Next()
		if !ok {
			tb.Fatal("subscriber got nothing")
		}
		if d.QoS > 0 {
			if err := c.Ack(d.PacketID); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// TestFanoutDoesNotAllocate: publishing one message to 1,000 subscribers
// and delivering it allocates nothing per subscriber (nothing at all once
// the queues and scratch buffers are warm; the message itself is reused).
func TestFanoutDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	b, conns := fanout(t, 1000, 1)
	in := b.Inline("p")
	m := &mqttcore.Message{Topic: "fan/x", Payload: []byte("x"), QoS: 1}
	publishAndDrain(t, in, m, conns)
	if a := testing.AllocsPerRun(20, func() { publishAndDrain(t, in, m, conns) }); a != 0 {
		t.Errorf("publish to 1,000 subscribers: %.1f allocs; want 0", a)
	}
}

// BenchmarkFanout1000 publishes one QoS 0 message to 1,000 attached
// subscribers and delivers it to each through Next.
func BenchmarkFanout1000(b *testing.B) {
	br, conns := fanout(b, 1000, 0)
	in := br.Inline("p")
	m := &mqttcore.Message{Topic: "fan/x", Payload: []byte("x")}
	b.ReportAllocs()
	for b.Loop() {
		publishAndDrain(b, in, m, conns)
	}
}

// BenchmarkFanout1000QoS1 is BenchmarkFanout1000 at QoS 1, with the
// packet id allocation and the PUBACK.
func BenchmarkFanout1000QoS1(b *testing.B) {
	br, conns := fanout(b, 1000, 1)
	in := br.Inline("p")
	m := &mqttcore.Message{Topic: "fan/x", Payload: []byte("x"), QoS: 1}
	b.ReportAllocs()
	for b.Loop() {
		publishAndDrain(b, in, m, conns)
	}
}

// BenchmarkPublishQoS1 publishes a new QoS 1 message through the inline
// API to one attached QoS 1 subscriber, which takes and acknowledges it.
// The message allocation is the publisher's and is counted.
func BenchmarkPublishQoS1(b *testing.B) {
	br, conns := fanout(b, 1, 1)
	in := br.Inline("p")
	payload := []byte("21.5")
	b.ReportAllocs()
	for b.Loop() {
		publishAndDrain(b, in, &mqttcore.Message{Topic: "fan/temp", Payload: payload, QoS: 1}, conns)
	}
}
