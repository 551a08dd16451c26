package listener

import (
	"errors"
	"sync"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// deferredAcks holds the acknowledgements the core completed through
// FrontEnd.Acked (from its journal's goroutine, or flow control) until the
// connection's writer sends them. A deferred SUBACK or UNSUBACK waits here,
// fully built, for the commit of the subscription change.
type deferredAcks struct {
	mu     sync.Mutex
	ready  []mqttcore.Ack
	subAck map[uint16]packets.Packet // by packet id, until its Ack is ready
}

// Acked implements mqttcore.FrontEnd: queue the acknowledgement for the
// writer and wake it. It never blocks.
func (c *client) Acked(a mqttcore.Ack) {
	c.deferred.mu.Lock()
	c.deferred.ready = append(c.deferred.ready, a)
	c.deferred.mu.Unlock()
	c.Notify()
}

// deferSubAck keeps a SUBACK or UNSUBACK until the core reports the change
// durable (Conn.Sync reported true).
func (c *client) deferSubAck(pk packets.Packet) {
	pk.ProtocolVersion = c.version
	pk.Mods = c.mods
	c.deferred.mu.Lock()
	if c.deferred.subAck == nil {
		c.deferred.subAck = make(map[uint16]packets.Packet)
	}
	c.deferred.subAck[pk.PacketID] = pk
	c.deferred.mu.Unlock()
}

// errNotAcknowledged closes an MQTT 3.1.1 connection whose publish the core
// refused after deferring it: 3.1.1 has no negative PUBACK, and a PUBACK
// would promise a message that was not kept. The client sends it again
// after it reconnects.
var errNotAcknowledged = errors.New("publish refused after it was deferred; mqtt 3.1.1 cannot be told")

// sendDeferred writes the acknowledgements that became ready. It reports
// false when the connection was closed (a write failed, or a 3.1.1 client
// had to be disconnected).
func (c *client) sendDeferred() bool {
	c.deferred.mu.Lock()
	ready := c.deferred.ready
	c.deferred.ready = nil
	var subs []packets.Packet
	for _, a := range ready {
		if a.Kind == mqttcore.AckSubscribe {
			if pk, ok := c.deferred.subAck[a.PacketID]; ok {
				delete(c.deferred.subAck, a.PacketID)
				subs = append(subs, pk)
			}
		}
	}
	c.deferred.mu.Unlock()
	for _, pk := range subs {
		if !c.write(&pk) {
			return false
		}
	}
	for _, a := range ready {
		var pk packets.Packet
		switch a.Kind {
		case mqttcore.AckPublish:
			typ := packets.Puback
			if a.Tag == 2 {
				typ = packets.Pubrec
			}
			pk = packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}, PacketID: a.PacketID}
			if a.Err != nil {
				c.srv.stats.pubRefused.Add(1)
				c.srv.warnf("mqtt publish refused after it was held", "client_id", c.clientID, "err", a.Err)
				if c.version != 5 {
					c.srv.log.Debug("mqtt closing 3.1.1 connection", "client_id", c.clientID, "err", errNotAcknowledged)
					_ = c.nc.Close()
					return false
				}
				pk.ReasonCode = deferredReason(a.Err)
			}
		case mqttcore.AckRelease:
			pk = packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubcomp}, PacketID: a.PacketID}
		case mqttcore.AckReceived:
			pk = packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: a.PacketID}
		default:
			continue
		}
		pk.ProtocolVersion, pk.Mods = c.version, c.mods
		if !c.write(&pk) {
			return false
		}
	}
	return true
}

// deferredReason maps a deferred refusal to its MQTT 5 reason code: flow control,
// a failing store and an unavailable remote broker (a transparent session,
// mqttcore/upstream.go) mean "try later"; a remote broker's ACL refusal is
// passed on.
func deferredReason(err error) byte {
	switch {
	case errors.Is(err, mqttcore.ErrCongestion), errors.Is(err, mqttcore.ErrStoreFailed), errors.Is(err, mqttcore.ErrUnavailable):
		return reasonQuotaExceeded
	case errors.Is(err, mqttcore.ErrNotAuthorized):
		return reasonNotAuthorized
	}
	return reasonImplementation
}
