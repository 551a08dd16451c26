package snclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// readLoop is the client's reader goroutine. It exits when the link is
// closed (by Close) and then closes readerDone.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	var dec snpacket.Decoder
	var dec2 snpacket.DecoderV2
	buf := make([]byte, c.opts.MaxMessageSize)
	for {
		n, ok, err := c.read(buf)
		if err != nil {
			select {
			case <-c.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient: an ICMP "port unreachable" on a connected socket
			// while the gateway is down, for example. Keep reading.
			c.debug("read failed", err)
			continue
		}
		if !ok {
			c.stats.dropped.Add(1) // not from the gateway
			continue
		}
		if c.v2 {
			m, err := dec2.Decode(buf[:n])
			if err != nil {
				c.stats.dropped.Add(1)
				c.debug("undecodable datagram", err)
				continue
			}
			c.stats.received.Add(1)
			c.handleV2(m)
			continue
		}
		m, err := dec.Decode(buf[:n])
		if err != nil {
			c.stats.dropped.Add(1)
			c.debug("undecodable datagram", err)
			continue
		}
		c.stats.received.Add(1)
		c.handle(m)
	}
}

// read reads one datagram and reports whether it came from the gateway.
func (c *Client) read(buf []byte) (n int, fromGW bool, err error) {
	if c.conn != nil { // connected: only the gateway's datagrams arrive, and read(2) skips the address
		n, err := c.conn.Read(buf)
		return n, err == nil, err
	}
	if c.udp != nil {
		n, from, err := c.udp.ReadFromUDPAddrPort(buf)
		if err != nil || c.conn != nil {
			return n, err == nil, err
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		return n, from == c.gw, nil
	}
	n, from, err := c.pc.ReadFrom(buf)
	if err != nil {
		return n, false, err
	}
	return n, sameAddr(from, c.addr), nil
}

func sameAddr(a, b net.Addr) bool {
	if ua, ok := a.(*net.UDPAddr); ok {
		if ub, ok := b.(*net.UDPAddr); ok {
			return ua.Port == ub.Port && ua.IP.Equal(ub.IP)
		}
	}
	return a != nil && b != nil && a.Network() == b.Network() && a.String() == b.String()
}

// debug logs a problem at Debug level. The client logs only what the
// caller can do nothing about at once (a bad datagram, a failed answer that
// the gateway will ask for again); everything else is returned as an error.
func (c *Client) debug(msg string, err error) {
	if c.log != nil && c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug("snclient: "+msg, "client_id", c.opts.ClientID, "remote", c.addr.String(), "err", err)
	}
}

// handle processes one message from the gateway. It runs on the reader
// goroutine; m is valid only during the call.
func (c *Client) handle(m snpacket.Message) {
	switch m := m.(type) {
	case *snpacket.Publish:
		c.handlePublish(m)
	case *snpacket.Pubrel:
		c.handlePubrel(m)
	case *snpacket.Register:
		c.handleRegister(m)
	case *snpacket.PingReq:
		c.handlePingReq()
	case *snpacket.PingResp:
		if !c.offer(reply{typ: snpacket.TypePingResp}) {
			c.keepAliveAnswered()
		}
	case *snpacket.Disconnect:
		if !c.offer(reply{typ: snpacket.TypeDisconnect}) {
			c.connectionEnded(StateDisconnected,
				fmt.Errorf("snclient: gateway %v sent DISCONNECT: %w", c.addr, ErrGatewayDisconnected))
		}
	case *snpacket.Puback:
		if !c.offer(reply{typ: m.Type(), msgID: m.MsgID, topicID: m.TopicID, rc: m.ReturnCode}) &&
			m.ReturnCode == snpacket.RejectedInvalidTopicID {
			// The answer to a QoS 0 publish: forget the id so that the
			// next publish registers the name again.
			c.forgetTopicID(m.TopicID)
		}
	case *snpacket.Pubrec:
		c.offer(reply{typ: m.Type(), msgID: m.MsgID})
	case *snpacket.Pubcomp:
		c.offer(reply{typ: m.Type(), msgID: m.MsgID})
	case *snpacket.Regack:
		c.offer(reply{typ: m.Type(), msgID: m.MsgID, topicID: m.TopicID, rc: m.ReturnCode})
	case *snpacket.Suback:
		c.offer(reply{typ: m.Type(), msgID: m.MsgID, topicID: m.TopicID, rc: m.ReturnCode, qos: m.QoS})
	case *snpacket.Unsuback:
		c.offer(reply{typ: m.Type(), msgID: m.MsgID})
	case *snpacket.Connack:
		c.offer(reply{typ: m.Type(), rc: m.ReturnCode})
	case *snpacket.WillTopicResp:
		c.offer(reply{typ: m.Type(), rc: m.ReturnCode})
	case *snpacket.WillMsgResp:
		c.offer(reply{typ: m.Type(), rc: m.ReturnCode})
	case *snpacket.WillTopicReq, *snpacket.WillMsgReq:
		c.offer(reply{typ: m.Type()})
	default:
		// ADVERTISE, GWINFO and messages only a client sends: nothing to do.
	}
}

// handlePublish delivers an application message and acknowledges it.
func (c *Client) handlePublish(p *snpacket.Publish) {
	c.offer(reply{typ: snpacket.TypePublish}) // activity while awake
	topic, known := c.resolve(p.TopicIDType, p.TopicID)
	if !known {
		// MQTT-SN 1.2 §6.7: unknown topic id -> PUBACK "invalid topic id".
		c.replyEncoded((&snpacket.Puback{TopicID: p.TopicID, MsgID: p.MsgID,
			ReturnCode: snpacket.RejectedInvalidTopicID}).AppendBinary(c.getBuf()))
		return
	}
	qos := p.QoS
	if qos == snpacket.QoSMinus1 {
		qos = snpacket.QoS0
	}
	if qos == snpacket.QoS2 {
		c.mu.Lock()
		_, dup := c.inQoS2[p.MsgID]
		if !dup {
			if c.inQoS2 == nil {
				c.inQoS2 = make(map[uint16]struct{})
			}
			c.inQoS2[p.MsgID] = struct{}{}
		}
		c.mu.Unlock()
		if dup { // delivered already; the gateway lost our PUBREC
			c.replyEncoded((&snpacket.Pubrec{MsgID: p.MsgID}).AppendBinary(c.getBuf()))
			return
		}
	}
	if h := c.opts.Handler; h != nil {
		h(Message{Topic: topic, TopicIDType: p.TopicIDType, TopicID: p.TopicID,
			QoS: qos, Retain: p.Retain, Dup: p.Dup, Payload: p.Data})
	}
	switch qos {
	case snpacket.QoS1:
		c.replyEncoded((&snpacket.Puback{TopicID: p.TopicID, MsgID: p.MsgID}).AppendBinary(c.getBuf()))
	case snpacket.QoS2:
		c.replyEncoded((&snpacket.Pubrec{MsgID: p.MsgID}).AppendBinary(c.getBuf()))
	}
}

// handlePubrel completes an incoming QoS 2 delivery.
func (c *Client) handlePubrel(m *snpacket.Pubrel) {
	c.offer(reply{typ: snpacket.TypePubrel})
	c.mu.Lock()
	delete(c.inQoS2, m.MsgID)
	c.mu.Unlock()
	c.replyEncoded((&snpacket.Pubcomp{MsgID: m.MsgID}).AppendBinary(c.getBuf()))
}

// handleRegister answers the gateway's REGISTER.
func (c *Client) handleRegister(m *snpacket.Register) {
	c.offer(reply{typ: snpacket.TypeRegister})
	name := string(m.TopicName)
	rc := snpacket.Accepted
	if f := c.opts.RegisterFilter; f != nil {
		rc = f(m.TopicID, name)
	}
	if m.TopicID == 0 || m.TopicID == 0xFFFF {
		rc = snpacket.RejectedInvalidTopicID
	}
	if rc == snpacket.Accepted {
		c.mu.Lock()
		c.storeTopicLocked(name, m.TopicID)
		c.mu.Unlock()
	}
	c.replyEncoded((&snpacket.Regack{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: rc}).AppendBinary(c.getBuf()))
}

// handlePingReq answers the gateway's PINGREQ while connected (§6.15).
func (c *Client) handlePingReq() {
	c.offer(reply{typ: snpacket.TypePingReq})
	c.mu.Lock()
	s := c.state
	c.mu.Unlock()
	if s == StateActive || s == StateAwake {
		c.replyEncoded((&snpacket.PingResp{}).AppendBinary(c.getBuf()))
	}
}

// replyEncoded sends an answer the reader encoded into a buffer from getBuf
// (encoding each concrete type in place keeps the receive path free of
// allocations). A failure is only logged: the gateway retransmits.
func (c *Client) replyEncoded(b []byte, err error) {
	if err == nil {
		err = c.write(b)
	}
	c.putBuf(b)
	if err != nil {
		c.debug("answer failed", err)
	}
}
