package gateway_test

// Benchmarks of the gateway's hot paths with b.ReportAllocs(). Each runs a
// real broker core with an inline subscriber (mqttcore.Inline) as the MQTT
// end, so a message counts as handled only when the core has delivered it.
//
//   - BenchmarkSessionPublish: one connected session handling PUBLISH at
//     QoS 0 and 1 over an in-process link that allocates nothing itself, so
//     ns/op and allocs/op are the gateway's and the core's (and the inline
//     callback's) alone.
//   - BenchmarkE2EPublishLoopback: an snclient sensor on a real UDP socket
//     -> the gateway on 127.0.0.1 -> core -> inline subscriber: one message
//     in flight (latency) or a window of 64 (throughput).
//
// allocs/op counts every allocation in the process: sensor, gateway and core.

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// pipeLink is a gateway.Link to one simulated sensor through channels. The
// sensor's datagrams are handed over as they are (the gateway copies them
// into its own buffer); the gateway's replies are copied into buffers from a
// free list, so the link allocates nothing in steady state.
type pipeLink struct {
	in    chan []byte // sensor -> gateway
	out   chan []byte // gateway -> sensor
	free  chan []byte
	done  chan struct{}
	once  sync.Once
	peer  netip.AddrPort
	local *net.UDPAddr
}

func newPipeLink() *pipeLink {
	l := &pipeLink{
		in: make(chan []byte, 1), out: make(chan []byte, 64), free: make(chan []byte, 64),
		done:  make(chan struct{}),
		peer:  netip.MustParseAddrPort("10.0.0.2:40000"),
		local: &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1884},
	}
	for range cap(l.free) {
		l.free <- make([]byte, 0, 1600)
	}
	return l
}

func (l *pipeLink) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-l.in:
		return copy(b, d), l.peer, nil
	case <-l.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (l *pipeLink) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) {
	var buf []byte
	select {
	case buf = <-l.free:
	default:
		return len(b), nil // nobody reads the replies: dropped, as UDP would
	}
	select {
	case l.out <- append(buf[:0], b...):
	default:
		l.free <- buf
	}
	return len(b), nil
}

func (l *pipeLink) LocalAddr() net.Addr { return l.local }

func (l *pipeLink) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// recv returns the next datagram from the gateway, decoded with d, and
// recycles its buffer. It fails the benchmark when expired closes first.
func (l *pipeLink) recv(b *testing.B, d *sn.Decoder, expired <-chan struct{}) sn.Message {
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

// benchCore starts a core, a gateway in front of it and an inline
// subscriber to topic that signals every delivery on the returned channel.
func benchCore(b *testing.B, topic string) (*gateway.Gateway, <-chan struct{}) {
	b.Helper()
	core, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1024)
	if _, err := core.Inline("bench-sub").Subscribe(topic, mqttcore.SubOptions{QoS: 1}, func(*mqttcore.Message) {
		got <- struct{}{}
	}); err != nil {
		b.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{}, core, gateway.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		g.Close()
		core.Close()
	})
	return g, got
}

// waitGot waits for one delivery to the inline subscriber, failing the
// benchmark when expired closes first.
func waitGot(b *testing.B, got <-chan struct{}, expired <-chan struct{}) {
	select {
	case <-got:
	case <-expired:
		b.Fatal("the inline subscriber got nothing before the benchmark's deadline")
	}
}

// benchContext bounds one benchmark run.
func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

func BenchmarkSessionPublish(b *testing.B) {
	for _, qos := range []sn.QoS{sn.QoS0, sn.QoS1} {
		b.Run("qos"+qos.String(), func(b *testing.B) {
			b.ReportAllocs()
			const topic = "bench/session"
			g, got := benchCore(b, topic)
			link := newPipeLink()
			served := make(chan error, 1)
			go func() { served <- g.Serve(link) }() // ends when the gateway closes the link
			b.Cleanup(func() { g.Close(); <-served })

			expired := benchContext(b).Done()
			var d sn.Decoder
			send := func(m sn.Message) {
				f, err := m.AppendBinary(nil)
				if err != nil {
					b.Fatal(err)
				}
				link.in <- f
			}
			send(&sn.Connect{CleanSession: true, Duration: 600, ClientID: []byte("bench-sensor")})
			if m, ok := link.recv(b, &d, expired).(*sn.Connack); !ok || m.ReturnCode != sn.Accepted {
				b.Fatalf("CONNECT answered with %v; want an accepting CONNACK", m)
			}
			send(&sn.Register{MsgID: 1, TopicName: []byte(topic)})
			ra, ok := link.recv(b, &d, expired).(*sn.Regack)
			if !ok || ra.ReturnCode != sn.Accepted {
				b.Fatalf("REGISTER answered with %v; want an accepting REGACK", ra)
			}
			topicID := ra.TopicID
			payload := make([]byte, 64)
			frames := [2][]byte{make([]byte, 0, 128), make([]byte, 0, 128)}
			msgID := uint16(1)
			b.ResetTimer()
			cpu := startCPU(b)
			defer cpu.stop()
			for i := 0; b.Loop(); i++ {
				msgID++
				if msgID == 0 {
					msgID = 1
				}
				p := sn.Publish{QoS: qos, TopicIDType: sn.TopicIDNormal, TopicID: topicID, MsgID: msgID, Data: payload}
				if qos == sn.QoS0 {
					p.MsgID = 0
				}
				f, _ := p.AppendBinary(frames[i%2][:0]) // alternate: the gateway may still hold the previous one
				link.in <- f
				waitGot(b, got, expired)
				if qos == sn.QoS1 {
					if pa, ok := link.recv(b, &d, expired).(*sn.Puback); !ok || pa.MsgID != msgID || pa.ReturnCode != sn.Accepted {
						b.Fatalf("PUBLISH %d answered with %v; want PUBACK", msgID, pa)
					}
				}
			}
		})
	}
}

func BenchmarkE2EPublishLoopback(b *testing.B) {
	cases := []struct {
		name   string
		qos    sn.QoS
		window int64
	}{
		{"qos0", sn.QoS0, 1},
		{"qos1", sn.QoS1, 1},
		{"qos0-window64", sn.QoS0, 64},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
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
			c, err := snclient.Dial(ctx, "udp4", udp.LocalAddr().String(), snclient.Options{ClientID: "bench-e2e", KeepAlive: 10 * time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if err := c.Connect(ctx); err != nil {
				b.Fatal(err)
			}
			t := snclient.Named(topic)
			if _, err := c.Register(ctx, topic); err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 64)
			// A token per message allowed in flight: taken before each
			// PUBLISH, given back by each delivery.
			tokens := make(chan struct{}, tc.window)
			done := make(chan struct{})
			go func() { // gives a token back per delivery until done closes
				for {
					select {
					case <-got:
						tokens <- struct{}{}
					case <-done:
						return
					}
				}
			}()
			defer close(done)
			for range tc.window {
				tokens <- struct{}{}
			}
			b.ResetTimer()
			cpu := startCPU(b)
			defer cpu.stop()
			for b.Loop() {
				select {
				case <-tokens:
				case <-ctx.Done():
					b.Fatal("deliveries stalled")
				}
				if err := c.Publish(ctx, t, tc.qos, false, payload); err != nil {
					b.Fatal(err)
				}
			}
			for range tc.window { // every message delivered
				select {
				case <-tokens:
				case <-ctx.Done():
					b.Fatal("messages lost: not every PUBLISH reached the subscriber")
				}
			}
		})
	}
}
