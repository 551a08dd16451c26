package snclient_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// udpGW is a scripted gateway on a real loopback UDP socket, for the tests
// that check the client over the kernel's sockets (real time, bounded by
// deadlines).
type udpGW struct {
	t    *testing.T
	pc   net.PacketConn
	peer net.Addr
}

func newUDPGW(t *testing.T) *udpGW {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	return &udpGW{t: t, pc: pc}
}

func (g *udpGW) recv() snpacket.Message {
	g.t.Helper()
	buf := make([]byte, 2048)
	g.pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := g.pc.ReadFrom(buf)
	if err != nil {
		g.t.Fatalf("gateway: read: %v", err)
	}
	g.peer = from
	m, err := snpacket.Decode(buf[:n])
	if err != nil {
		g.t.Fatalf("gateway: Decode(%x) = %v", buf[:n], err)
	}
	return m
}

func (g *udpGW) send(m snpacket.Message) {
	g.t.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		g.t.Fatal(err)
	}
	if _, err := g.pc.WriteTo(b, g.peer); err != nil {
		g.t.Fatalf("gateway: send: %v", err)
	}
}

// The client over real UDP, through Dial: connect, publish, subscribe and
// receive, disconnect; after Close no goroutine is left behind.
func TestDialUDP(t *testing.T) {
	before := runtime.NumGoroutine()
	g := newUDPGW(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan snclient.Message, 1)
	c, err := snclient.Dial(ctx, "udp", g.pc.LocalAddr().String(), snclient.Options{
		ClientID: "udp1",
		Handler: func(m snclient.Message) {
			m.Payload = append([]byte(nil), m.Payload...)
			got <- m
		},
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	// Datagrams from anyone but the gateway are ignored.
	other, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	step := func(name string, f func() error, script func()) {
		t.Helper()
		errc := async(f)
		script()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		case <-ctx.Done():
			t.Fatalf("%s did not return", name)
		}
	}
	step("Connect", func() error { return c.Connect(ctx) }, func() {
		if m, ok := g.recv().(*snpacket.Connect); !ok || string(m.ClientID) != "udp1" {
			t.Fatalf("gateway got %+v; want CONNECT from udp1", m)
		}
		g.send(&snpacket.Connack{})
	})
	step("Publish", func() error { return c.Publish(ctx, snclient.Named("a/b"), 1, false, []byte("hi")) }, func() {
		r := g.recv().(*snpacket.Register)
		g.send(&snpacket.Regack{TopicID: 1, MsgID: r.MsgID})
		p := g.recv().(*snpacket.Publish)
		if p.TopicID != 1 || string(p.Data) != "hi" {
			t.Fatalf("gateway got %+v", p)
		}
		g.send(&snpacket.Puback{TopicID: 1, MsgID: p.MsgID})
	})
	fake, _ := (&snpacket.Publish{TopicIDType: snpacket.TopicIDShort, TopicID: 0x7878, Data: []byte("spoof")}).AppendBinary(nil)
	if _, err := other.WriteTo(fake, c2addr(t, g)); err != nil {
		t.Fatal(err)
	}
	g.send(&snpacket.Publish{QoS: 1, TopicIDType: snpacket.TopicIDShort, TopicID: 0x6162, MsgID: 5, Data: []byte("real")})
	select {
	case m := <-got:
		if m.Topic != "ab" || string(m.Payload) != "real" {
			t.Fatalf("handler got %+v; want ab real", m)
		}
	case <-ctx.Done():
		t.Fatal("no message delivered")
	}
	if p, ok := g.recv().(*snpacket.Puback); !ok || p.MsgID != 5 {
		t.Fatalf("gateway got %+v; want PUBACK 5", p)
	}
	step("Disconnect", func() error { return c.Disconnect(ctx) }, func() {
		if _, ok := g.recv().(*snpacket.Disconnect); !ok {
			t.Fatal("gateway: want DISCONNECT")
		}
		g.send(&snpacket.Disconnect{})
	})
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Publish(ctx, snclient.Short("ab"), -1, false, nil); !errors.Is(err, snclient.ErrClosed) {
		t.Fatalf("Publish after Close = %v; want ErrClosed", err)
	}
	checkNoLeak(t, before)
}

// c2addr returns the client's address as the gateway saw it.
func c2addr(t *testing.T, g *udpGW) net.Addr {
	t.Helper()
	if g.peer == nil {
		t.Fatal("gateway has not heard from the client")
	}
	return g.peer
}

// An unconnected socket given to New: the client filters by source address.
func TestNewUnconnectedUDP(t *testing.T) {
	before := runtime.NumGoroutine()
	g := newUDPGW(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 2)
	c, err := snclient.New(pc, g.pc.LocalAddr(), snclient.Options{
		Handler: func(m snclient.Message) { got <- string(m.Payload) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := async(func() error { return c.Connect(ctx) })
	g.recv()
	g.send(&snpacket.Connack{})
	if err := <-errc; err != nil {
		t.Fatalf("Connect: %v", err)
	}
	other, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	spoof, _ := (&snpacket.Publish{TopicIDType: snpacket.TopicIDShort, TopicID: 0x6162, Data: []byte("spoof")}).AppendBinary(nil)
	other.WriteTo(spoof, pc.LocalAddr())
	// Two sockets' datagrams are not ordered against each other: wait until
	// the client has read and dropped the spoofed one before the gateway
	// sends, so that "real" first means the spoof was not delivered.
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Dropped != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the spoofed datagram was not dropped: Stats() = %+v", c.Stats())
		}
		time.Sleep(time.Millisecond) // polling a counter, bounded by deadline
	}
	g.send(&snpacket.Publish{TopicIDType: snpacket.TopicIDShort, TopicID: 0x6162, Data: []byte("real")})
	select {
	case p := <-got:
		if p != "real" {
			t.Fatalf("handler got %q; want real", p)
		}
	case <-ctx.Done():
		t.Fatal("no message delivered")
	}
	c.Close()
	checkNoLeak(t, before)
}

// checkNoLeak waits, bounded, for the goroutine count to fall back to
// before: a goroutine that has signalled its end may still be unwinding.
func checkNoLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}

func TestSearchGateway(t *testing.T) {
	gw := newUDPGW(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		info snclient.GatewayInfo
		err  error
	}
	res := make(chan result, 1)
	go func() {
		info, err := snclient.SearchGateway(ctx, pc, gw.pc.LocalAddr(), 1, 20*time.Millisecond)
		res <- result{info, err}
	}()
	buf := make([]byte, 64)
	for i := range 2 { // the first SEARCHGW goes unanswered: it is repeated
		gw.pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := gw.pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("gateway read %d: %v", i, err)
		}
		if want := []byte{0x03, 0x01, 0x01}; !bytes.Equal(buf[:n], want) {
			t.Fatalf("SEARCHGW = %x; want %x", buf[:n], want)
		}
		gw.peer = from
	}
	gw.send(&snpacket.GWInfo{GatewayID: 7})
	r := <-res
	if r.err != nil || r.info.ID != 7 || r.info.From.String() != gw.pc.LocalAddr().String() {
		t.Fatalf("SearchGateway() = %+v, %v; want gateway 7 from %v", r.info, r.err, gw.pc.LocalAddr())
	}

	// Nobody answers: the context ends the search.
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := snclient.SearchGateway(short, pc, gw.pc.LocalAddr(), 0, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SearchGateway() = %v; want DeadlineExceeded", err)
	}
}
