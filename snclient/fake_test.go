package snclient_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// The fake gateway: an in-memory datagram pipe and a scripted peer that the
// test drives step by step. Both live inside a testing/synctest bubble, so
// blocking on the pipe is durable and fake time advances whenever client and
// test are both waiting: retransmission timers fire without real sleeps.

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// pipeConn is one end of an in-memory datagram link. Like UDP it drops a
// datagram when the receiver's queue is full.
type pipeConn struct {
	local, remote pipeAddr
	in            chan []byte
	peer          *pipeConn
	done          chan struct{}
	once          sync.Once
}

func newPipe() (client, gateway *pipeConn) {
	client = &pipeConn{local: "client", remote: "gateway", in: make(chan []byte, 64), done: make(chan struct{})}
	gateway = &pipeConn{local: "gateway", remote: "client", in: make(chan []byte, 64), done: make(chan struct{})}
	client.peer, gateway.peer = gateway, client
	return client, gateway
}

func (p *pipeConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-p.in:
		return copy(b, d), p.remote, nil
	case <-p.done:
		return 0, nil, net.ErrClosed
	}
}

func (p *pipeConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-p.done:
		return 0, net.ErrClosed
	default:
	}
	if addr.String() != string(p.remote) {
		return len(b), nil // nobody there
	}
	select {
	case p.peer.in <- append([]byte(nil), b...):
	default: // queue full: dropped, as UDP would
	}
	return len(b), nil
}

func (p *pipeConn) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *pipeConn) LocalAddr() net.Addr                { return p.local }
func (p *pipeConn) SetDeadline(t time.Time) error      { return nil }
func (p *pipeConn) SetReadDeadline(t time.Time) error  { return nil }
func (p *pipeConn) SetWriteDeadline(t time.Time) error { return nil }

// waitLimit bounds every wait of the fake gateway, in (fake) time. It is far
// longer than any retry schedule in these tests.
const waitLimit = time.Hour

// fakeGW is the scripted gateway end of a pipe.
type fakeGW struct {
	t    *testing.T
	conn *pipeConn
}

// recvRaw returns the next datagram from the client.
func (g *fakeGW) recvRaw() []byte {
	g.t.Helper()
	select {
	case b := <-g.conn.in:
		return b
	case <-time.After(waitLimit):
		g.t.Fatalf("gateway: no datagram from the client within %v", waitLimit)
		return nil
	}
}

// recv returns the next message from the client, decoded.
func (g *fakeGW) recv() snpacket.Message {
	g.t.Helper()
	b := g.recvRaw()
	m, err := snpacket.Decode(b)
	if err != nil {
		g.t.Fatalf("gateway: Decode(%x) = %v", b, err)
	}
	return m
}

// expect returns the next message from the client, which must be an M.
func expect[M snpacket.Message](g *fakeGW) M {
	g.t.Helper()
	m := g.recv()
	mm, ok := m.(M)
	if !ok {
		var want M
		g.t.Fatalf("gateway: got %v %+v; want %T", m.Type(), m, want)
	}
	return mm
}

// expectRaw returns the next datagram, which must decode to an M.
func expectRaw[M snpacket.Message](g *fakeGW) (M, []byte) {
	g.t.Helper()
	b := g.recvRaw()
	m, err := snpacket.Decode(b)
	if err != nil {
		g.t.Fatalf("gateway: Decode(%x) = %v", b, err)
	}
	mm, ok := m.(M)
	if !ok {
		var want M
		g.t.Fatalf("gateway: got %v %+v; want %T", m.Type(), m, want)
	}
	return mm, b
}

// quiet asserts that the client sends nothing for d.
func (g *fakeGW) quiet(d time.Duration) {
	g.t.Helper()
	select {
	case b := <-g.conn.in:
		m, err := snpacket.Decode(b)
		g.t.Fatalf("gateway: unexpected datagram %x (%v, %v) within %v", b, m, err, d)
	case <-time.After(d):
	}
}

func (g *fakeGW) send(m snpacket.Message) {
	g.t.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		g.t.Fatalf("gateway: encode %v: %v", m.Type(), err)
	}
	if _, err := g.conn.WriteTo(b, g.conn.remote); err != nil {
		g.t.Fatalf("gateway: send %v: %v", m.Type(), err)
	}
}

// Test timing: short values keep the fake clock readable in failures.
const (
	tRetry    = 2 * time.Second
	nRetry    = 3
	keepAlive = 30 * time.Second
)

// baseOptions returns the options most tests use.
func baseOptions() snclient.Options {
	return snclient.Options{
		ClientID:      "dev1",
		KeepAlive:     keepAlive,
		RetryInterval: tRetry,
		MaxRetries:    nRetry,
	}
}

// newClient returns a client over a pipe and the fake gateway at its other
// end. The client is closed when the test ends.
func newClient(t *testing.T, opts snclient.Options) (*snclient.Client, *fakeGW) {
	t.Helper()
	cc, gc := newPipe()
	c, err := snclient.New(cc, pipeAddr("gateway"), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c, &fakeGW{t: t, conn: gc}
}

// async runs f on its own goroutine; wait collects its result.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func wait(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("call did not return within %v", waitLimit)
		return nil
	}
}

// connect runs a plain CONNECT/CONNACK exchange.
func connect(t *testing.T, c *snclient.Client, g *fakeGW) {
	t.Helper()
	done := async(func() error { return c.Connect(context.Background()) })
	expect[*snpacket.Connect](g)
	g.send(&snpacket.Connack{ReturnCode: snpacket.Accepted})
	if err := wait(t, done); err != nil {
		t.Fatalf("Connect: %v", err)
	}
}

// connected returns a client connected to a fake gateway.
func connected(t *testing.T, opts snclient.Options) (*snclient.Client, *fakeGW) {
	t.Helper()
	c, g := newClient(t, opts)
	connect(t, c, g)
	return c, g
}

// inbox collects the messages a handler receives, copying payloads.
type inbox chan snclient.Message

func (in inbox) handler(m snclient.Message) {
	m.Payload = append([]byte(nil), m.Payload...)
	in <- m
}

func (in inbox) next(t *testing.T) snclient.Message {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(waitLimit):
		t.Fatalf("handler: no message within %v", waitLimit)
		return snclient.Message{}
	}
}

// advance moves the bubble's fake clock on by d, modelling a slow gateway.
// Inside synctest, time.Sleep returns as soon as every goroutine in the
// bubble is blocked and the clock has reached the deadline; it is not used
// to wait for other goroutines (channels do that).
func advance(d time.Duration) { time.Sleep(d) }
