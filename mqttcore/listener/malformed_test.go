package listener_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// Raw CONNECT packets: client id "raw", clean start, no keep alive.
var (
	connect5   = []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 0, 0, 0, 3, 'r', 'a', 'w'}
	connect311 = []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0, 0, 3, 'r', 'a', 'w'}
	connect31  = []byte{0x10, 17, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 0, 0, 3, 'r', 'a', 'w'}
)

// rawPacket is one packet read back from the server.
type rawPacket struct {
	typ  byte // upper four bits of the first byte
	body []byte
}

// String describes the packet for failure messages.
func (p rawPacket) String() string { return fmt.Sprintf("type %d body %x", p.typ, p.body) }

// splitPackets splits what the server sent into packets (Remaining Length
// up to 4 bytes).
func splitPackets(b []byte) ([]rawPacket, error) {
	var out []rawPacket
	for len(b) > 0 {
		if len(b) < 2 {
			return out, fmt.Errorf("trailing %x", b)
		}
		n, mul, i := 0, 1, 1
		for ; i < len(b) && i <= 4; i++ {
			n += int(b[i]&0x7f) * mul
			mul *= 128
			if b[i]&0x80 == 0 {
				break
			}
		}
		start := i + 1
		if start+n > len(b) {
			return out, fmt.Errorf("truncated packet %x", b)
		}
		out = append(out, rawPacket{typ: b[0] >> 4, body: b[start : start+n]})
		b = b[start+n:]
	}
	return out, nil
}

// reasonOf returns the reason code of a CONNACK (MQTT 5 reason or 3.1.1
// return code) or DISCONNECT.
func reasonOf(p rawPacket) (byte, bool) {
	switch {
	case p.typ == 2 && len(p.body) >= 2:
		return p.body[1], true
	case p.typ == 14 && len(p.body) == 0:
		return 0, true
	case p.typ == 14:
		return p.body[0], true
	}
	return 0, false
}

// TestMalformedPacketsOverTCP sends bad packets on raw TCP connections and
// checks that each connection gets the specified answer (MQTT 5 CONNACK or
// DISCONNECT reason code, 3.1.1 return code, or nothing) and is closed,
// that the failure is counted, and that a healthy paho client on the same
// server keeps working throughout.
func TestMalformedPacketsOverTCP(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{MaxPacketSize: 256}, mqttcore.Config{})
	healthy := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "healthy", CleanStart: true, KeepAlive: 0})
	healthy.subscribe(t, ctx, 1, 1, "health/#")
	feeder := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "feeder", CleanStart: true})

	const (
		connack    = 2
		disconnect = 14
		none       = 0
	)
	type counter func(listener.Stats) uint64
	malformed := func(s listener.Stats) uint64 { return s.Malformed }
	protocol := func(s listener.Stats) uint64 { return s.ProtocolErrors }
	tooLarge := func(s listener.Stats) uint64 { return s.PacketsTooLarge }
	badVersion := func(s listener.Stats) uint64 { return s.UnsupportedVersion }

	tests := []struct {
		name     string
		connect  []byte // sent first and answered with CONNACK 0; nil: none
		send     []byte
		halfOpen bool // close our write side after send (truncation)
		wantType byte // last packet from the server: connack, disconnect or none
		wantCode byte
		count    counter
	}{
		// Before CONNECT.
		{name: "remaining length of 5 bytes", send: []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x01}, wantType: none, count: malformed},
		{name: "remaining length not shortest form", send: []byte{0x10, 0x80, 0x00}, wantType: none, count: malformed},
		{name: "wrong protocol name", send: []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'X', 5, 0x02, 0, 0, 0, 0, 3, 'r', 'a', 'w'}, wantType: none, count: protocol},
		{name: "MQIsdp level 4", send: []byte{0x10, 17, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 4, 0x02, 0, 0, 0, 3, 'r', 'a', 'w'}, wantType: connack, wantCode: 0x01, count: badVersion},
		{name: "MQTT level 3", send: []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 3, 0x02, 0, 0, 0, 3, 'r', 'a', 'w'}, wantType: connack, wantCode: 0x01, count: badVersion},
		{name: "protocol level 6", send: []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 0, 0, 0, 3, 'r', 'a', 'w'}, wantType: connack, wantCode: 0x01, count: badVersion},
		{name: "first packet not CONNECT", send: []byte{0xc0, 0x00}, wantType: none, count: protocol},
		{name: "oversized MQTT 5 CONNECT", send: []byte{0x10, 0xe8, 0x07, 0, 4, 'M', 'Q', 'T', 'T', 5}, wantType: connack, wantCode: 0x95, count: tooLarge},
		{name: "oversized MQTT 3.1.1 CONNECT", send: []byte{0x10, 0xe8, 0x07, 0, 4, 'M', 'Q', 'T', 'T', 4}, wantType: none, count: tooLarge},
		{name: "truncated MQTT 5 CONNECT", send: connect5[:10], halfOpen: true, wantType: connack, wantCode: 0x81, count: malformed},
		{name: "truncated MQTT 3.1.1 CONNECT", send: connect311[:10], halfOpen: true, wantType: none, count: malformed},
		{name: "MQTT 5 CONNECT reserved flag", send: []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x03, 0, 0, 0, 0, 3, 'r', 'a', 'w'}, wantType: connack, wantCode: 0x81, count: malformed},

		// After an MQTT 5 CONNECT: DISCONNECT with the reason code.
		{name: "v5 bad remaining length", connect: connect5, send: []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, wantType: disconnect, wantCode: 0x81, count: malformed},
		{name: "v5 oversized PUBLISH", connect: connect5, send: []byte{0x30, 0xe8, 0x07, 0, 1, 'a'}, wantType: disconnect, wantCode: 0x95, count: tooLarge},
		{name: "v5 truncated PUBLISH", connect: connect5, send: []byte{0x32, 20, 0, 3, 'a', '/'}, halfOpen: true, wantType: disconnect, wantCode: 0x81, count: malformed},
		{name: "v5 PUBLISH QoS 3", connect: connect5, send: []byte{0x36, 6, 0, 1, 'a', 0, 1, 0}, wantType: disconnect, wantCode: 0x81, count: malformed},
		{name: "v5 topic length past the end", connect: connect5, send: []byte{0x30, 4, 0, 9, 'a', 0}, wantType: disconnect, wantCode: 0x81, count: malformed},
		{name: "v5 wildcard in topic name", connect: connect5, send: []byte{0x30, 4, 0, 1, '#', 0}, wantType: disconnect, wantCode: 0x82, count: protocol},
		{name: "v5 SUBSCRIBE without filters", connect: connect5, send: []byte{0x82, 3, 0, 1, 0}, wantType: disconnect, wantCode: 0x82, count: protocol},
		{name: "v5 second CONNECT", connect: connect5, send: connect5, wantType: disconnect, wantCode: 0x82, count: protocol},

		// After an MQTT 3.1.1 CONNECT: closed without a word.
		{name: "v311 bad remaining length", connect: connect311, send: []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, wantType: none, count: malformed},
		{name: "v311 oversized PUBLISH", connect: connect311, send: []byte{0x30, 0xe8, 0x07, 0, 1, 'a'}, wantType: none, count: tooLarge},
		{name: "v311 truncated PUBLISH", connect: connect311, send: []byte{0x32, 20, 0, 3, 'a', '/'}, halfOpen: true, wantType: none, count: malformed},
		{name: "v311 PINGREQ with a body", connect: connect311, send: []byte{0xc0, 1, 0}, wantType: none, count: malformed},

		// After an MQTT 3.1 CONNECT: closed without a word, as 3.1.1.
		{name: "v31 bad remaining length", connect: connect31, send: []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, wantType: none, count: malformed},
		{name: "v31 AUTH", connect: connect31, send: []byte{0xf0, 0}, wantType: none, count: malformed},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.count(ts.srv.Stats())
			got := exchange(t, ctx, ts.addr, tt.connect, tt.send, tt.halfOpen)
			pks, err := splitPackets(got)
			if err != nil {
				t.Fatalf("server sent %x: %v", got, err)
			}
			if tt.connect != nil {
				if len(pks) == 0 || pks[0].typ != connack {
					t.Fatalf("server sent %v; want CONNACK first", pks)
				}
				if code, _ := reasonOf(pks[0]); code != 0 {
					t.Fatalf("CONNACK code 0x%02x; want 0", code)
				}
				pks = pks[1:]
			}
			switch {
			case tt.wantType == none && len(pks) != 0:
				t.Errorf("server sent %v before closing; want nothing", pks)
			case tt.wantType != none && len(pks) != 1:
				t.Errorf("server sent %v before closing; want one packet of type %d with code 0x%02x", pks, tt.wantType, tt.wantCode)
			case tt.wantType != none:
				code, ok := reasonOf(pks[0])
				if pks[0].typ != tt.wantType || !ok || code != tt.wantCode {
					t.Errorf("server sent %v; want type %d with code 0x%02x", pks[0], tt.wantType, tt.wantCode)
				}
			}
			// Counted, and the counter is read after the connection is
			// gone: the server counts before it closes.
			if after := tt.count(ts.srv.Stats()); after != before+1 {
				t.Errorf("counter went from %d to %d; want +1", before, after)
			}
			// The healthy client is unaffected.
			payload := fmt.Sprintf("still here %d", i)
			feeder.publish(t, ctx, "health/check", payload, 1, false)
			healthy.expectMsg(t, ctx, "health/check", payload, 1)
		})
	}
	if st, _ := ts.sessionState("healthy"); st != mqttcore.StateActive {
		t.Errorf("healthy session state %v; want active", st)
	}
}

// exchange dials addr, sends connect (if any), reads its CONNACK, sends
// send, optionally closes its write side, and returns everything the
// server sent until it closed the connection. It fails the test if the
// server does not close the connection in time.
func exchange(t *testing.T, ctx context.Context, addr string, connect, send []byte, halfOpen bool) []byte {
	t.Helper()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer nc.Close()
	deadline, _ := ctx.Deadline()
	if dl := time.Now().Add(5 * time.Second); dl.Before(deadline) {
		deadline = dl
	}
	_ = nc.SetDeadline(deadline)
	if connect != nil {
		if _, err := nc.Write(connect); err != nil {
			t.Fatalf("write CONNECT: %v", err)
		}
	}
	if _, err := nc.Write(send); err != nil {
		t.Fatalf("write: %v", err)
	}
	if halfOpen {
		if err := nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
	}
	got, err := io.ReadAll(nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) { // a reset is a close with our bytes unread
		t.Fatalf("reading until the server closes: %v (got %x)", err, got)
	}
	return got
}
