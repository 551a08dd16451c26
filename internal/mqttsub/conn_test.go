package mqttsub

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// streamConn reads a fixed stream and records what is written.
type streamConn struct {
	net.Conn // nil: only the methods below are used
	r        io.Reader
	mu       sync.Mutex
	written  bytes.Buffer
	writes   int
}

func (c *streamConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *streamConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.written.Write(p)
}
func (c *streamConn) Close() error                       { return nil }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return nil }

// publish5 encodes an MQTT 5 PUBLISH with the given first octet.
func publish5(first byte, topic string, id uint16, props, payload []byte) []byte {
	var body []byte
	body = append(body, byte(len(topic)>>8), byte(len(topic)))
	body = append(body, topic...)
	if first&0x06 != 0 {
		body = append(body, byte(id>>8), byte(id))
	}
	body = append(body, byte(len(props)))
	body = append(body, props...)
	body = append(body, payload...)
	out := []byte{first}
	for rl := len(body); ; {
		b := byte(rl & 0x7F)
		if rl >>= 7; rl > 0 {
			out = append(out, b|0x80)
			continue
		}
		out = append(out, b)
		break
	}
	return append(out, body...)
}

func TestMQTTConnTakesQoS1PublishesAndPassesTheRest(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 300) // a two-octet remaining length
	connack := []byte{0x20, 0x03, 0x00, 0x00, 0x00}
	q0 := publish5(0x30, "bench/q0", 0, nil, []byte("zero"))
	q2 := publish5(0x34, "bench/q2", 9, nil, []byte("two"))
	var stream []byte
	stream = append(stream, connack...)
	stream = append(stream, publish5(0x32, "bench/a", 1, nil, []byte("one"))...)
	stream = append(stream, q0...)
	stream = append(stream, publish5(0x3B, "bench/b", 0x0102, []byte{0x01, 0x01}, big)...) // DUP, RETAIN, a property
	stream = append(stream, q2...)
	sc := &streamConn{r: bytes.NewReader(stream)}
	var got [][]byte
	m := NewConn(sc, func(p []byte) { got = append(got, append([]byte(nil), p...)) })
	passed, err := io.ReadAll(readerFunc(m.Read))
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	if want := append(append(append([]byte(nil), connack...), q0...), q2...); !bytes.Equal(passed, want) {
		t.Errorf("passed to paho %x; want CONNACK, the QoS 0 and the QoS 2 PUBLISH %x", passed, want)
	}
	if len(got) != 2 || string(got[0]) != "one" || !bytes.Equal(got[1], big) {
		t.Errorf("onPublish got %q; want \"one\" and the 300-octet payload", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	want := []byte{0x40, 0x02, 0x00, 0x01, 0x40, 0x02, 0x01, 0x02}
	if !bytes.Equal(sc.written.Bytes(), want) {
		t.Errorf("written %x; want the two PUBACKs %x", sc.written.Bytes(), want)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
