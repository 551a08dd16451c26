package gateway

import (
	"bytes"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// sinkMessage keeps newMessage's result on the heap, as the core keeps it.
var sinkMessage *mqttcore.Message

func TestNewMessage(t *testing.T) {
	for _, n := range []int{0, 1, smallPayload, smallPayload + 1, 1400} {
		payload := bytes.Repeat([]byte{'x'}, n)
		m := newMessage("a/b", payload, mqttcore.AtLeastOnce, true)
		if m.Topic != "a/b" || !bytes.Equal(m.Payload, payload) || m.QoS != mqttcore.AtLeastOnce || !m.Retain {
			t.Fatalf("newMessage(%d octets) = %+v", n, m)
		}
		if n > 0 {
			payload[0] = 'y' // the datagram buffer is reused: the message must not see it
			if m.Payload[0] != 'x' {
				t.Fatalf("newMessage(%d octets) aliases its input", n)
			}
			if cap(m.Payload) != n {
				t.Fatalf("newMessage(%d octets): cap %d lets an append write into the shared buffer", n, cap(m.Payload))
			}
		}
		want := 1.0
		if n > smallPayload {
			want = 2
		}
		if got := testing.AllocsPerRun(100, func() { sinkMessage = newMessage("a/b", payload, 0, false) }); got != want {
			t.Errorf("newMessage(%d octets): %v allocations; want %v", n, got, want)
		}
	}
}
