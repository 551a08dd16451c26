package gateway_test

import (
	"testing"

	"github.com/gannet-mqtt/gannet/gateway"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// A forwarder may wrap a client's messages with an empty Wireless Node Id.
// The client is still a forwarded one: every answer goes back wrapped,
// also when it is the first forwarded client its loop serves (loop has one
// loop here, so nothing else has used the loop's node-id scratch buffer).
func TestForwarderEmptyNodeID(t *testing.T) {
	run(t, gateway.Config{Loops: 1}, func(t *testing.T, h *harness) {
		fwd := h.sensor("10.0.0.9:7000")
		n := &sensor{h: h, link: fwd.link, node: []byte{}}
		n.connect("node-empty", true, 60) // the CONNACK must come back Encapsulated
		id := n.register("n/empty", 1)
		n.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: 2, Data: []byte("x")})
		n.expect(&sn.Puback{TopicID: id, MsgID: 2})
	})
}
