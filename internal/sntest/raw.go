package sntest

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// Raw is a scripted MQTT-SN peer on its own UDP socket: it sends exactly
// the frames a test gives it and returns the frames that come back, for
// procedures snclient handles out of sight (retransmission, duplicates,
// forwarders, wrong topic ids).
type Raw struct {
	conn *net.UDPConn
	buf  []byte
}

// Raw opens a UDP socket connected to the gateway; it is closed at
// cleanup.
func (e *Env) Raw(t testing.TB) *Raw {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(e.UDPAddr)))
	if err != nil {
		t.Fatalf("dial %s: %v", e.UDPAddr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Raw{conn: c, buf: make([]byte, 65536)}
}

// Send encodes and sends m.
func (r *Raw) Send(t testing.TB, m snpacket.Message) {
	t.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatalf("encode %v: %v", m.Type(), err)
	}
	if _, err := r.conn.Write(b); err != nil {
		t.Fatalf("send %v: %v", m.Type(), err)
	}
}

// Recv returns the next frame from the gateway, decoded and cloned,
// failing the test when ctx ends first or the frame does not decode.
func (r *Raw) Recv(t testing.TB, ctx context.Context) snpacket.Message {
	t.Helper()
	m, ok := r.recv(t, ctx)
	if !ok {
		t.Fatalf("raw peer %v: no frame from the gateway: %v", r.conn.LocalAddr(), ctx.Err())
	}
	return m
}

func (r *Raw) recv(t testing.TB, ctx context.Context) (snpacket.Message, bool) {
	t.Helper()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(Timeout)
	}
	if err := r.conn.SetReadDeadline(dl); err != nil {
		t.Fatalf("set read deadline: %v", err)
	}
	n, err := r.conn.Read(r.buf)
	if err != nil {
		return nil, false
	}
	m, err := snpacket.Decode(r.buf[:n])
	if err != nil {
		t.Fatalf("raw peer: undecodable frame %x from the gateway: %v", r.buf[:n], err)
	}
	return m.Clone(), true
}
