package listener_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// rawClient is a minimal MQTT 3.1.1 client over a raw TCP connection, so
// that a benchmark measures the server and not a client library: it
// writes prebuilt packets and parses only fixed headers.
type rawClient struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte // body scratch
}

// dialRaw connects and completes an MQTT 3.1.1 CONNECT (clean session).
func dialRaw(tb testing.TB, addr, clientID string) *rawClient {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { _ = nc.Close() })
	rc := &rawClient{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), buf: make([]byte, 0, 256)}
	body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0}, byte(len(clientID)>>8), byte(len(clientID)))
	body = append(body, clientID...)
	if _, err := nc.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		tb.Fatalf("write CONNECT: %v", err)
	}
	typ, b, err := rc.read()
	if err != nil || typ != 2 || len(b) != 2 || b[1] != 0 {
		tb.Fatalf("CONNACK: type %d body %x err %v", typ, b, err)
	}
	return rc
}

// read reads one packet and returns its type and body (valid until the
// next read).
func (rc *rawClient) read() (byte, []byte, error) {
	h, err := rc.br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; i < 4; i++ {
		c, err := rc.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(c&0x7f) * mul
		mul *= 128
		if c&0x80 == 0 {
			break
		}
	}
	if cap(rc.buf) < n {
		rc.buf = make([]byte, n)
	}
	b := rc.buf[:n]
	if _, err := io.ReadFull(rc.br, b); err != nil {
		return 0, nil, err
	}
	return h >> 4, b, nil
}

// subscribe subscribes to filter at QoS 1 and waits for the SUBACK.
func (rc *rawClient) subscribe(tb testing.TB, filter string) {
	tb.Helper()
	body := append([]byte{0, 1, byte(len(filter) >> 8), byte(len(filter))}, filter...)
	body = append(body, 1)
	if _, err := rc.nc.Write(append([]byte{0x82, byte(len(body))}, body...)); err != nil {
		tb.Fatalf("write SUBSCRIBE: %v", err)
	}
	typ, b, err := rc.read()
	if err != nil || typ != 9 || len(b) != 3 || b[2] != 1 {
		tb.Fatalf("SUBACK: type %d body %x err %v", typ, b, err)
	}
}

// BenchmarkQoS1PublishTCP publishes QoS 1 messages (17-byte topic, 32-byte
// payload) over one MQTT 3.1.1 TCP connection on loopback and waits for
// each PUBACK, with one or 32 PUBLISHes in flight; "sub" variants also
// deliver every message to a QoS 1 subscriber on a second TCP connection,
// which acknowledges it. Allocations are the whole process's: the server's
// reader, writer and core, and the raw clients' (which allocate nothing per
// message). ns/op is per message.
func BenchmarkQoS1PublishTCP(b *testing.B) {
	for _, bc := range []struct {
		name    string
		window  int
		withSub bool
	}{
		{"inflight1", 1, false},
		{"inflight32", 32, false},
		{"inflight32_sub", 32, true},
	} {
		b.Run(bc.name, func(b *testing.B) { benchQoS1TCP(b, bc.window, bc.withSub) })
	}
}

func benchQoS1TCP(b *testing.B, window int, withSub bool) {
	ts := startServer(b, listener.Config{}, mqttcore.Config{MaxInflight: 64})
	pub := dialRaw(b, ts.addr, "bench-pub")
	const topic = "bench/sensor/0001"
	payload := []byte("0123456789abcdef0123456789abcdef")
	varLen := 2 + len(topic) + 2
	pkt := append([]byte{0x32, byte(varLen + len(payload))}, 0, byte(len(topic)))
	pkt = append(pkt, topic...)
	pidAt := len(pkt)
	pkt = append(pkt, 0, 0)
	pkt = append(pkt, payload...)

	subDone := make(chan error, 1)
	// credits bounds how far the publisher may run ahead of the
	// subscriber (16 batches of up to 32, well below the default queue of
	// 1,000), so the subscriber's queue never overflows and drops: the
	// publisher takes a credit per batch, the subscriber returns one per
	// window messages received.
	credits := make(chan struct{}, 16)
	stop := make(chan struct{})
	b.Cleanup(func() { close(stop) })
	if withSub {
		sub := dialRaw(b, ts.addr, "bench-sub")
		sub.subscribe(b, "bench/sensor/+")
		n := b.N
		go func() { // exits after n messages or on a read error (connection closed at cleanup)
			ack := []byte{0x40, 2, 0, 0}
			for i := 0; i < n; i++ {
				typ, body, err := sub.read()
				if err != nil {
					subDone <- err
					return
				}
				if typ != 3 || len(body) < 2+len(topic)+2 {
					subDone <- fmt.Errorf("subscriber got type %d body %x", typ, body)
					return
				}
				ack[2], ack[3] = body[2+len(topic)], body[2+len(topic)+1]
				if _, err := sub.nc.Write(ack); err != nil {
					subDone <- err
					return
				}
				if (i+1)%window == 0 {
					select {
					case <-credits:
					case <-stop:
						subDone <- errors.New("benchmark ended early")
						return
					}
				}
			}
			subDone <- nil
		}()
	}

	// A batch of up to window PUBLISHes is written at once, then its
	// PUBACKs are read.
	batch := make([]byte, 0, window*len(pkt))
	pid := uint16(0)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		k := min(window, b.N-sent)
		if withSub {
			credits <- struct{}{}
		}
		batch = batch[:0]
		for range k {
			pid++
			if pid == 0 {
				pid = 1
			}
			pkt[pidAt], pkt[pidAt+1] = byte(pid>>8), byte(pid)
			batch = append(batch, pkt...)
		}
		if _, err := pub.nc.Write(batch); err != nil {
			b.Fatalf("write PUBLISH: %v", err)
		}
		for range k {
			typ, body, err := pub.read()
			if err != nil || typ != 4 || len(body) != 2 {
				b.Fatalf("PUBACK: type %d body %x err %v", typ, body, err)
			}
		}
		sent += k
	}
	if withSub {
		if d := ts.broker.Stats().Dropped; d != 0 {
			b.Errorf("broker dropped %d messages", d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		select {
		case err := <-subDone:
			if err != nil {
				b.Fatalf("subscriber: %v", err)
			}
		case <-ctx.Done():
			b.Fatalf("subscriber did not receive %d messages: %v", b.N, ctx.Err())
		}
	}
	b.StopTimer()
}
