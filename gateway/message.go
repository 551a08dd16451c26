package gateway

import "github.com/gannet-mqtt/gannet/mqttcore"

// A sensor's PUBLISH becomes a core message that outlives the datagram (it
// is queued, retained, delivered later), so its payload is copied. Most
// sensor payloads are a few dozen octets: up to smallPayload the copy shares
// one allocation with the message, which then fills exactly Go's 128-octet
// size class (a Message is 80 octets), the same memory as two allocations
// but one allocation fewer on the hot path. Larger payloads get their own,
// so a queued message never costs more than it would otherwise.
const smallPayload = 48

type messageWithPayload struct {
	m mqttcore.Message
	b [smallPayload]byte
}

// newMessage returns a core message for topic with a copy of payload.
func newMessage(topic string, payload []byte, q mqttcore.QoS, retain bool) *mqttcore.Message {
	var m *mqttcore.Message
	var p []byte
	switch n := len(payload); {
	case n == 0:
		m = &mqttcore.Message{}
	case n <= smallPayload:
		x := &messageWithPayload{}
		m, p = &x.m, x.b[:n:n]
	default:
		m, p = &mqttcore.Message{}, make([]byte, n)
	}
	copy(p, payload)
	*m = mqttcore.Message{Topic: topic, Payload: p, QoS: q, Retain: retain}
	return m
}
