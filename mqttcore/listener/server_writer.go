package listener

import (
	"errors"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener/internal/framing"
)

// writeLoop is the connection's writer goroutine. It owns c.w and c.bw and
// is the only goroutine that writes to the network once CONNACK is sent:
// control packets queued by the reader (acknowledgements first), then
// deliveries pulled from the core with Conn.Next, flushed whenever there is
// nothing more to write. It exits when the reader closes c.stop (after
// sending what is queued), when the core closes the attachment (kick), or
// on a write error (after closing the connection so the reader stops too).
func (c *client) writeLoop() {
	defer close(c.writerDone)
	for {
		select {
		case pk := <-c.out:
			if !c.write(&pk) {
				return
			}
			continue
		default:
		}
		select {
		case <-c.notify:
			if !c.drain() {
				return
			}
			continue
		default:
		}
		if c.bw.Buffered() > 0 && !c.flush() {
			return
		}
		select {
		case pk := <-c.out:
			if !c.write(&pk) {
				return
			}
		case <-c.notify:
			if !c.drain() {
				return
			}
		case reason := <-c.kick:
			c.closeFromCore(reason)
			return
		case <-c.stop:
			for {
				select {
				case pk := <-c.out:
					if !c.write(&pk) {
						return
					}
					continue
				default:
				}
				break
			}
			c.flush()
			return
		}
	}
}

// write encodes one control packet into the buffer. It reports false after
// a write error, having closed the connection.
func (c *client) write(pk *packets.Packet) bool {
	if err := c.w.WritePacket(pk); err != nil {
		if errors.Is(err, framing.ErrPacketTooLarge) {
			// Only a packet with a reason string or user properties can
			// grow past the client's maximum; ours have none.
			c.srv.stats.outTooLarge.Add(1)
			return true
		}
		c.writeFailed(err)
		return false
	}
	c.srv.stats.sent.Add(1)
	return true
}

// flush writes the buffer to the network within the write timeout.
func (c *client) flush() bool {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.conf().WriteTimeout))
	if err := c.bw.Flush(); err != nil {
		c.writeFailed(err)
		return false
	}
	return true
}

// writeFailed closes the connection after a write error; the reader then
// ends and detaches the session as lost.
func (c *client) writeFailed(err error) {
	c.srv.log.Debug("mqtt write failed", "client_id", c.clientID, "remote", c.remote, "err", err)
	_ = c.nc.Close()
}

// drain sends up to maxDrain deliveries, interleaving queued control
// packets. If more may be waiting it re-arms notify, because the core only
// notifies again after Next has reported nothing.
func (c *client) drain() bool {
	if !c.sendDeferred() {
		return false
	}
	for range maxDrain {
		d, ok := c.cc.Next()
		if !ok {
			return true
		}
		if !c.deliver(&d) {
			return false
		}
		select {
		case pk := <-c.out:
			if !c.write(&pk) {
				return false
			}
		default:
		}
	}
	c.Notify()
	return true
}

// deliver encodes one delivery: a PUBLISH, or a PUBREL being resent.
func (c *client) deliver(d *mqttcore.Delivery) bool {
	if d.Release {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: d.PacketID, ProtocolVersion: c.version, Mods: c.mods}
		return c.write(&pk)
	}
	m := d.Message
	var newAlias uint16 // an alias this PUBLISH teaches the client
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: byte(d.QoS), Dup: d.Dup, Retain: d.Retain},
		TopicName:       m.Topic,
		Payload:         m.Payload,
		PacketID:        d.PacketID,
		ProtocolVersion: c.version,
		Mods:            c.mods,
	}
	if c.version == 5 {
		// Response Topic and Correlation Data pass through unaltered
		// [MQTT-3.3.2-15] [MQTT-3.3.2-16].
		pk.Mods.AllowResponseInfo = true
		if m.Props != nil {
			publishProps(&pk.Properties, m.Props)
		}
		if d.ExpiryLeft > 0 {
			// [MQTT-3.3.2-6]: the remaining lifetime, rounded up.
			pk.Properties.MessageExpiryInterval = uint32((d.ExpiryLeft + time.Second - 1) / time.Second)
		}
		// [MQTT-3.3.4-3] [MQTT-3.3.4-4]: every matching subscription's
		// identifier, in one PUBLISH; buffers owned by the writer.
		if c.subIDs = c.cc.SubscriptionIDs(m, c.subIDs[:0]); len(c.subIDs) > 0 {
			c.subIDInts = c.subIDInts[:0]
			for _, id := range c.subIDs {
				c.subIDInts = append(c.subIDInts, int(id))
			}
			pk.Properties.SubscriptionIdentifier = c.subIDInts
		}
		if a, known := c.outAliases.lookup(m.Topic); a != 0 {
			// [MQTT-3.3.2-12]: the client allowed aliases up to its
			// Topic Alias Maximum; a known one replaces the topic.
			pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = a, true
			if known {
				pk.TopicName = ""
			} else {
				newAlias = a
			}
		}
	}
	if err := c.w.WritePacket(&pk); err != nil {
		if newAlias != 0 {
			c.outAliases.forget(m.Topic, newAlias) // the client never saw it
		}
		if !errors.Is(err, framing.ErrPacketTooLarge) {
			c.writeFailed(err)
			return false
		}
		// Too large for the client: act as if delivered [MQTT-3.1.2-25].
		c.srv.stats.outTooLarge.Add(1)
		if d.QoS > 0 {
			_ = c.cc.Ack(d.PacketID)
		}
		return true
	}
	c.srv.stats.sent.Add(1)
	return true
}

// closeFromCore handles FrontEnd.Close: tell an MQTT 5 client why and
// close gracefully (graceful.go); close an MQTT 3.1.x connection at once.
// The reader then ends without detaching (the core already did).
func (c *client) closeFromCore(reason error) {
	st := &c.srv.stats
	code := byte(reasonServerShuttingDown)
	switch {
	case errors.Is(reason, mqttcore.ErrTakenOver):
		st.takenOver.Add(1)
		code = reasonSessionTakenOver
	case errors.Is(reason, mqttcore.ErrKicked):
		st.kicked.Add(1)
		code = reasonAdministrative
	default:
		st.kicked.Add(1)
	}
	c.srv.log.Debug("mqtt connection closed by the broker", "client_id", c.clientID, "remote", c.remote, "err", reason)
	if c.version == 5 {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ProtocolVersion: 5, ReasonCode: code, Mods: c.mods}
		if c.write(&pk) && c.flush() {
			// The reader ends on its next packet or the drain deadline,
			// drains and closes (graceful.go).
			c.startLinger()
			return
		}
	}
	_ = c.nc.Close()
}
