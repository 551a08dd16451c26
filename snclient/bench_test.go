package snclient_test

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// sinkConn is a gateway stub that answers CONNECT and REGISTER at once and
// swallows everything else, without allocating: the cost measured is the
// client's alone.
type sinkConn struct {
	v2   bool      // answer in MQTT-SN 2.0
	ring [8][]byte // PUBACKs, reused in turn (one exchange is in flight at a time)
	next int
	in   chan []byte
	done chan struct{}
	once sync.Once
	sent atomic.Int64
}

func newSinkConn() *sinkConn { return &sinkConn{in: make(chan []byte, 4), done: make(chan struct{})} }

func (s *sinkConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-s.in:
		return copy(b, d), pipeAddr("gateway"), nil
	case <-s.done:
		return 0, nil, net.ErrClosed
	}
}

func (s *sinkConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	s.sent.Add(1)
	if s.v2 {
		switch snpacket.PacketType(b[1]) {
		case snpacket.PacketConnect: // CONNACK, same Packet Id (no will flags)
			s.in <- []byte{0x06, 0x02, 0x00, b[3], b[4], 0x00}
		case snpacket.PacketRegister: // REGACK session alias 1, same Packet Id
			s.in <- []byte{0x07, 0x11, 0x04, b[3], b[4], 0x00, 0x01}
		}
		return len(b), nil
	}
	switch snpacket.MsgType(b[1]) {
	case snpacket.TypeConnect:
		s.in <- []byte{0x03, 0x05, 0x00}
	case snpacket.TypeRegister: // REGACK topic id 1, same MsgId
		s.in <- []byte{0x07, 0x0B, 0x00, 0x01, b[4], b[5], 0x00}
	case snpacket.TypePublish:
		if (b[2]>>5)&3 == 1 { // QoS 1: PUBACK, same topic id and MsgId
			a := append(s.ring[s.next][:0], 0x07, 0x0D, b[3], b[4], b[5], b[6], 0x00)
			s.ring[s.next], s.next = a, (s.next+1)%len(s.ring)
			s.in <- a
		}
	}
	return len(b), nil
}

func (s *sinkConn) Close() error                       { s.once.Do(func() { close(s.done) }); return nil }
func (s *sinkConn) LocalAddr() net.Addr                { return pipeAddr("client") }
func (s *sinkConn) SetDeadline(t time.Time) error      { return nil }
func (s *sinkConn) SetReadDeadline(t time.Time) error  { return nil }
func (s *sinkConn) SetWriteDeadline(t time.Time) error { return nil }

func sinkClient(tb testing.TB) *snclient.Client { return sinkClientVersion(tb, snpacket.Version12) }

func sinkClientVersion(tb testing.TB, v snpacket.Version) *snclient.Client {
	tb.Helper()
	sink := newSinkConn()
	sink.v2 = v == snpacket.Version20
	c, err := snclient.New(sink, pipeAddr("gateway"), snclient.Options{
		Version:          v,
		ClientID:         "bench",
		PredefinedTopics: map[uint16]string{5: "pre/five"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		tb.Fatalf("Connect: %v", err)
	}
	if _, err := c.Register(ctx, "sensors/1/temp"); err != nil {
		tb.Fatalf("Register: %v", err)
	}
	return c
}

// The QoS 0 and -1 send path allocates nothing.
func TestPublishQoS0Allocs(t *testing.T) {
	c := sinkClient(t)
	ctx := context.Background()
	payload := []byte("21.5")
	tests := []struct {
		name  string
		topic snclient.Topic
		qos   snpacket.QoS
	}{
		{"registered name", snclient.Named("sensors/1/temp"), 0},
		{"predefined by name", snclient.Named("pre/five"), 0},
		{"predefined", snclient.Predefined(5), 0},
		{"short", snclient.Short("ab"), 0},
		{"short QoS -1", snclient.Short("ab"), -1},
	}
	for _, tt := range tests {
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			err = c.Publish(ctx, tt.topic, tt.qos, false, payload)
		})
		if err != nil {
			t.Fatalf("%s: Publish: %v", tt.name, err)
		}
		if allocs != 0 {
			t.Errorf("%s: Publish allocates %v times per call; want 0", tt.name, allocs)
		}
	}
}

// The 2.0 QoS 0 and -1 (PUBWOS) send path allocates nothing either, by
// session alias, by predefined alias and by full topic name.
func TestPublishQoS0AllocsV2(t *testing.T) {
	c := sinkClientVersion(t, snpacket.Version20)
	if id, ok := c.TopicID("sensors/1/temp"); !ok || id != 1 {
		t.Fatalf("TopicID = %d, %v; want session alias 1 from the REGACK", id, ok)
	}
	ctx := context.Background()
	payload := []byte("21.5")
	for _, tt := range []struct {
		name  string
		topic snclient.Topic
		qos   snpacket.QoS
	}{
		{"session alias", snclient.Named("sensors/1/temp"), 0},
		{"predefined by name", snclient.Named("pre/five"), 0},
		{"predefined", snclient.Predefined(5), 0},
		{"topic name", snclient.Named("sensors/2/temp"), 0},
		{"PUBWOS predefined", snclient.Predefined(5), -1},
		{"PUBWOS topic name", snclient.Named("sensors/2/temp"), -1},
	} {
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			err = c.Publish(ctx, tt.topic, tt.qos, false, payload)
		})
		if err != nil {
			t.Fatalf("%s: Publish: %v", tt.name, err)
		}
		if allocs != 0 {
			t.Errorf("%s: Publish allocates %v times per call; want 0", tt.name, allocs)
		}
	}
}

// BenchmarkPublishQoS1Sink measures one QoS 1 PUBLISH and its PUBACK,
// answered at once by an in-memory gateway stub: the client's own cost per
// acknowledged message (the send, the reader's hand-over, the wait).
func BenchmarkPublishQoS1Sink(b *testing.B) {
	payload := make([]byte, 64)
	ctx := context.Background()
	c := sinkClient(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Publish(ctx, snclient.Named("sensors/1/temp"), 1, false, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishQoS0 measures one QoS 0 PUBLISH to a registered topic:
// "sink" is the client's own cost (an in-memory link that discards), "udp"
// adds a real loopback UDP socket (the gateway end does not read, so the
// kernel drops what overflows its buffer).
func BenchmarkPublishQoS0(b *testing.B) {
	payload := []byte("21.5")
	ctx := context.Background()
	b.Run("sink", func(b *testing.B) {
		c := sinkClient(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if err := c.Publish(ctx, snclient.Named("sensors/1/temp"), 0, false, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("udp", func(b *testing.B) {
		gw, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer gw.Close()
		c, err := snclient.Dial(ctx, "udp", gw.LocalAddr().String(), snclient.Options{ClientID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		errc := async(func() error { return c.Connect(ctx) })
		buf := make([]byte, 64)
		gw.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, from, err := gw.ReadFrom(buf); err != nil {
			b.Fatal(err)
		} else {
			gw.WriteTo([]byte{0x03, 0x05, 0x00}, from)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if err := c.Publish(ctx, snclient.Predefined(1), 0, false, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// injectConn feeds prebuilt datagrams to the client and reports each
// datagram the client writes with a token, allocating nothing itself.
type injectConn struct {
	v2   bool // answer CONNECT in MQTT-SN 2.0
	in   chan []byte
	out  chan snpacket.MsgType
	done chan struct{}
	once sync.Once
}

func newInjectConn() *injectConn {
	return &injectConn{in: make(chan []byte, 1), out: make(chan snpacket.MsgType, 1), done: make(chan struct{})}
}

func (s *injectConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-s.in:
		return copy(b, d), pipeAddr("gateway"), nil
	case <-s.done:
		return 0, nil, net.ErrClosed
	}
}

func (s *injectConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if s.v2 && snpacket.PacketType(b[1]) == snpacket.PacketConnect {
		s.in <- []byte{0x06, 0x02, 0x00, b[3], b[4], 0x00} // CONNACK, same Packet Id
		return len(b), nil
	}
	if !s.v2 && snpacket.MsgType(b[1]) == snpacket.TypeConnect {
		s.in <- []byte{0x03, 0x05, 0x00}
		return len(b), nil
	}
	s.out <- snpacket.MsgType(b[1])
	return len(b), nil
}

func (s *injectConn) Close() error                       { s.once.Do(func() { close(s.done) }); return nil }
func (s *injectConn) LocalAddr() net.Addr                { return pipeAddr("client") }
func (s *injectConn) SetDeadline(t time.Time) error      { return nil }
func (s *injectConn) SetReadDeadline(t time.Time) error  { return nil }
func (s *injectConn) SetWriteDeadline(t time.Time) error { return nil }

// exchange feeds one datagram and waits for the client's answer of type want.
func (s *injectConn) exchange(tb testing.TB, d []byte, want snpacket.MsgType) {
	s.in <- d
	if got := <-s.out; got != want {
		tb.Fatalf("client answered %v; want %v", got, want)
	}
}

// receiver returns a client on an injectConn, connected, that knows topic
// id 1 from a gateway REGISTER and counts deliveries in *n.
func receiver(tb testing.TB, n *int) (*snclient.Client, *injectConn) {
	tb.Helper()
	conn := newInjectConn()
	c, err := snclient.New(conn, pipeAddr("gateway"), snclient.Options{
		ClientID: "recv",
		Handler:  func(m snclient.Message) { *n += len(m.Payload) },
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		tb.Fatalf("Connect: %v", err)
	}
	reg, _ := (&snpacket.Register{TopicID: 1, MsgID: 1, TopicName: []byte("sensors/1/temp")}).AppendBinary(nil)
	conn.exchange(tb, reg, snpacket.TypeRegack)
	return c, conn
}

func encode(tb testing.TB, m snpacket.Message) []byte {
	b, err := m.AppendBinary(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// receiverV2 is receiver for a 2.0 client: session alias 1 comes from a
// gateway REGISTER.
func receiverV2(tb testing.TB, n *int) (*snclient.Client, *injectConn) {
	tb.Helper()
	conn := newInjectConn()
	conn.v2 = true
	c, err := snclient.New(conn, pipeAddr("gateway"), snclient.Options{
		Version:  snpacket.Version20,
		ClientID: "recv",
		Handler:  func(m snclient.Message) { *n += len(m.Payload) },
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		tb.Fatalf("Connect: %v", err)
	}
	reg, _ := (&snpacket.RegisterV2{PacketID: 1, HasTopicAlias: true, TopicAlias: 1, TopicName: []byte("sensors/1/temp")}).AppendBinary(nil)
	conn.exchange(tb, reg, snpacket.MsgType(snpacket.PacketRegack))
	return c, conn
}

// Receiving, acknowledging and delivering a 2.0 message by session alias
// allocates nothing; by full topic name it costs the topic string.
func TestReceiveAllocsV2(t *testing.T) {
	var n int
	_, conn := receiverV2(t, &n)
	enc := func(m snpacket.MessageV2) []byte {
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pub1 := enc(&snpacket.PublishV2{QoS: 1, PacketID: 7, TopicAlias: 1, Data: []byte("21.5")})
	pubName := enc(&snpacket.PublishV2{QoS: 1, PacketID: 9, TopicType: snpacket.TopicTypeName, TopicName: []byte("a/b"), Data: []byte("21.5")})
	pub2 := enc(&snpacket.PublishV2{QoS: 2, PacketID: 8, TopicAlias: 1, Data: []byte("21.5")})
	rel := enc(&snpacket.PubrelV2{PacketID: 8})
	puback, pubrec, pubcomp := snpacket.MsgType(snpacket.PacketPuback), snpacket.MsgType(snpacket.PacketPubrec), snpacket.MsgType(snpacket.PacketPubcomp)
	if allocs := testing.AllocsPerRun(100, func() { conn.exchange(t, pub1, puback) }); allocs != 0 {
		t.Errorf("receiving QoS 1 by alias allocates %v times per message; want 0", allocs)
	}
	// By name, Message.Topic is a string made from the datagram: one
	// allocation. A gateway sends by alias whenever one exists, as 2.0 asks.
	if allocs := testing.AllocsPerRun(100, func() { conn.exchange(t, pubName, puback) }); allocs != 1 {
		t.Errorf("receiving QoS 1 by name allocates %v times per message; want 1 (the topic string)", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		conn.exchange(t, pub2, pubrec)
		conn.exchange(t, rel, pubcomp)
	}); allocs != 0 {
		t.Errorf("receiving QoS 2 allocates %v times per message; want 0", allocs)
	}
	if n != 4*3*101 {
		t.Errorf("handler saw %d payload octets; want %d", n, 4*3*101)
	}
}

// Receiving, acknowledging and delivering a message allocates nothing.
func TestReceiveAllocs(t *testing.T) {
	var n int
	_, conn := receiver(t, &n)
	pub1 := encode(t, &snpacket.Publish{QoS: 1, TopicID: 1, MsgID: 7, Data: []byte("21.5")})
	pub2 := encode(t, &snpacket.Publish{QoS: 2, TopicID: 1, MsgID: 8, Data: []byte("21.5")})
	rel := encode(t, &snpacket.Pubrel{MsgID: 8})
	if allocs := testing.AllocsPerRun(100, func() { conn.exchange(t, pub1, snpacket.TypePuback) }); allocs != 0 {
		t.Errorf("receiving QoS 1 allocates %v times per message; want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		conn.exchange(t, pub2, snpacket.TypePubrec)
		conn.exchange(t, rel, snpacket.TypePubcomp)
	}); allocs != 0 {
		t.Errorf("receiving QoS 2 allocates %v times per message; want 0", allocs)
	}
	if n != 4*(101+101) { // AllocsPerRun runs f once more than asked
		t.Errorf("handler saw %d payload octets; want %d", n, 4*(101+101))
	}
}

// BenchmarkReceive measures one incoming PUBLISH to a registered topic id:
// decode, resolve the name, call the handler, acknowledge.
func BenchmarkReceive(b *testing.B) {
	for _, qos := range []snpacket.QoS{1, 2} {
		b.Run("QoS "+qos.String(), func(b *testing.B) {
			var n int
			_, conn := receiver(b, &n)
			pub := encode(b, &snpacket.Publish{QoS: qos, TopicID: 1, MsgID: 7, Data: []byte("21.5")})
			rel := encode(b, &snpacket.Pubrel{MsgID: 7})
			b.ReportAllocs()
			for b.Loop() {
				if qos == 1 {
					conn.exchange(b, pub, snpacket.TypePuback)
					continue
				}
				conn.exchange(b, pub, snpacket.TypePubrec)
				conn.exchange(b, rel, snpacket.TypePubcomp)
			}
		})
	}
}

// BenchmarkIdleClient reports the memory one connected, idle client costs
// (gannet bench runs thousands): its goroutine stack, buffers, decoder and
// timer, over an in-memory link.
func BenchmarkIdleClient(b *testing.B) {
	const n = 1000
	b.ReportAllocs()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		clients := make([]*snclient.Client, n)
		for i := range clients {
			c, err := snclient.New(newSinkConn(), pipeAddr("gateway"), snclient.Options{ClientID: "idle"})
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Connect(context.Background()); err != nil {
				b.Fatal(err)
			}
			clients[i] = c
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/n, "B/client")
		for _, c := range clients {
			c.Close()
		}
	}
}
