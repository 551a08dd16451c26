package listener

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener/internal/framing"
)

// handle dispatches one packet read after CONNECT. A non-nil error ends the
// connection: errClientDisconnect, a *closeErr, or a core error wrapping
// mqttcore.ErrDetached (the core closed the session's attachment).
func (c *client) handle(pk *packets.Packet) error {
	st := &c.srv.stats
	switch pk.FixedHeader.Type {
	case packets.Publish:
		return c.onPublish(pk)
	case packets.Puback:
		return c.acked(c.cc.Ack(pk.PacketID))
	case packets.Pubrec:
		if c.version == 5 && pk.ReasonCode >= 0x80 {
			// An error PUBREC ends the QoS 2 flow [MQTT-4.3.3].
			return c.acked(c.cc.Ack(pk.PacketID))
		}
		var code byte
		if err := c.acked(c.cc.Received(pk.PacketID)); err != nil {
			return err
		} else if c.lastAckUnknown {
			code = reasonPacketIDNotFound
		} else if c.cc.Sync(mqttcore.Ack{Kind: mqttcore.AckReceived, PacketID: pk.PacketID}) {
			return nil // PUBREL once the PUBREC is on disk
		}
		return c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: pk.PacketID, ReasonCode: code})
	case packets.Pubrel:
		var code byte
		if err := c.cc.Release(pk.PacketID); err != nil {
			if errors.Is(err, mqttcore.ErrDetached) {
				return err
			}
			// Unknown: already released, or refused by the ACL (3.1.1).
			code = reasonPacketIDNotFound
		} else if c.cc.Sync(mqttcore.Ack{Kind: mqttcore.AckRelease, PacketID: pk.PacketID}) {
			return nil // PUBCOMP once the release is on disk
		}
		return c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubcomp}, PacketID: pk.PacketID, ReasonCode: code})
	case packets.Pubcomp:
		return c.acked(c.cc.Complete(pk.PacketID))
	case packets.Subscribe:
		return c.onSubscribe(pk)
	case packets.Unsubscribe:
		return c.onUnsubscribe(pk)
	case packets.Pingreq:
		return c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingresp}})
	case packets.Disconnect:
		return c.onDisconnect(pk)
	case packets.Connect:
		// [MQTT-3.1.0-2]: a second CONNECT is a protocol error.
		return &closeErr{reason: byte(framing.ReasonProtocolError), counter: &st.protocol, err: errors.New("second CONNECT")}
	default:
		// AUTH without an authentication method, or a packet only a
		// server sends.
		return &closeErr{reason: byte(framing.ReasonProtocolError), counter: &st.protocol,
			err: fmt.Errorf("unexpected %s packet from client", framing.TypeName(pk.FixedHeader.Type))}
	}
}

// acked handles the result of an acknowledgement: an unknown packet id is
// counted and ignored (the peer may repeat an acknowledgement after a
// reconnect); a detached Conn ends the connection. It records in
// c.lastAckUnknown whether the id was unknown.
func (c *client) acked(err error) error {
	c.lastAckUnknown = false
	if err == nil {
		return nil
	}
	if errors.Is(err, mqttcore.ErrDetached) {
		return err
	}
	c.lastAckUnknown = true
	c.srv.stats.unknownAck.Add(1)
	if c.srv.log.Enabled(c.srv.ctx, slog.LevelDebug) {
		c.srv.log.Debug("mqtt acknowledgement ignored", "client_id", c.clientID, "err", err)
	}
	return nil
}

// onPublish handles an inbound PUBLISH: topic alias, ACL, the core, and
// the acknowledgement. It decides every acknowledgement of a client's
// PUBLISH: PUBACK or PUBREC through pubAck when Conn.Publish is done or
// refuses, or none now when the core holds it (PublishPending), in which
// case the writer sends it when the core calls Acked (sendDeferred in
// server_acks.go). PUBREL and its PUBCOMP are answered in handle.
func (c *client) onPublish(pk *packets.Packet) error {
	st := &c.srv.stats
	v5 := c.version == 5
	if v5 && len(pk.Properties.SubscriptionIdentifier) > 0 {
		// [MQTT-3.3.4-6]: only the server sends subscription identifiers.
		return &closeErr{reason: byte(framing.ReasonProtocolError), counter: &st.protocol,
			err: errors.New("publish from client carries a subscription identifier")}
	}
	topic := pk.TopicName
	if v5 && pk.Properties.TopicAliasFlag {
		a := int(pk.Properties.TopicAlias)
		if a == 0 || a > len(c.aliases) {
			// [MQTT-3.3.2-9] [MQTT-3.3.2-10]
			return &closeErr{reason: reasonTopicAliasInvalid, counter: &st.protocol,
				err: fmt.Errorf("topic alias %d, maximum %d", a, len(c.aliases))}
		}
		if topic == "" {
			if topic = c.aliases[a-1]; topic == "" {
				return &closeErr{reason: byte(framing.ReasonProtocolError), counter: &st.protocol,
					err: fmt.Errorf("topic alias %d used before it was set", a)}
			}
		} else {
			c.aliases[a-1] = topic
		}
	}
	qos := pk.FixedHeader.Qos
	m := &mqttcore.Message{
		Topic:   topic,
		Payload: pk.Payload, // the packet's own buffer, never reused
		QoS:     mqttcore.QoS(qos),
		Retain:  pk.FixedHeader.Retain,
	}
	if v5 {
		m.Props = messageProps(&pk.Properties)
	}
	status, err := c.cc.Publish(m, pk.PacketID, uint32(qos))
	if err != nil {
		var code byte
		switch {
		case errors.Is(err, mqttcore.ErrDetached):
			return err
		case errors.Is(err, mqttcore.ErrNotAuthorized):
			st.pubDenied.Add(1)
			c.srv.warnf("mqtt publish denied by acl", "client_id", c.clientID, "username", c.username, "topic", topic)
			// MQTT 3.1.1 has no refusal: acknowledge and drop, as Mosquitto
			// does.
			return c.pubAck(qos, pk.PacketID, reasonNotAuthorized)
		case errors.Is(err, mqttcore.ErrInflightFull):
			// [MQTT-3.3.4-9]
			return &closeErr{reason: reasonReceiveMaxExceeded, counter: &st.protocol, err: err}
		case errors.Is(err, mqttcore.ErrInvalidTopic):
			if !v5 {
				return &closeErr{counter: &st.pubRefused, err: err}
			}
			code = reasonTopicNameInvalid
		case errors.Is(err, mqttcore.ErrReservedTopic):
			code = reasonNotAuthorized
		case errors.Is(err, mqttcore.ErrPayloadTooLarge), errors.Is(err, mqttcore.ErrRetainedFull):
			code = reasonQuotaExceeded
		default:
			c.srv.log.Error("mqtt listener: publish", "client_id", c.clientID, "topic", topic, "err", err)
			code = reasonImplementation
		}
		st.pubRefused.Add(1)
		c.srv.warnf("mqtt publish refused", "client_id", c.clientID, "topic", topic, "err", err)
		return c.pubAck(qos, pk.PacketID, code)
	}
	if status == mqttcore.PublishPending {
		return nil // the writer acknowledges when the core says (Acked)
	}
	return c.pubAck(qos, pk.PacketID, reasonSuccess)
}

// pubAck answers a PUBLISH of the given QoS: PUBACK for 1, PUBREC for 2,
// nothing for 0. code is sent to MQTT 5 clients only.
func (c *client) pubAck(qos byte, pid uint16, code byte) error {
	if c.version != 5 {
		code = 0
	}
	switch qos {
	case 1:
		return c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pid, ReasonCode: code})
	case 2:
		return c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: pid, ReasonCode: code})
	}
	return nil
}

// onSubscribe handles SUBSCRIBE: the ACL and the core decide each filter's
// SUBACK code.
func (c *client) onSubscribe(pk *packets.Packet) error {
	st := &c.srv.stats
	v5 := c.version == 5
	var subID uint32
	if v5 && len(pk.Properties.SubscriptionIdentifier) > 0 {
		// One per SUBSCRIBE (checkProps refuses a repeat and 0); it applies
		// to every filter of the packet (MQTT 5.0 section 3.8.2.1.2).
		subID = uint32(pk.Properties.SubscriptionIdentifier[0])
	}
	failure := byte(reasonUnspecified) // 3.1.1: 0x80 for every failure
	codes := make([]byte, len(pk.Filters))
	for i, f := range pk.Filters {
		if v5 && f.NoLocal && strings.HasPrefix(f.Filter, "$share/") {
			// [MQTT-3.8.3-4]
			return &closeErr{reason: byte(framing.ReasonProtocolError), counter: &st.protocol, err: fmt.Errorf("no local on shared subscription %q", f.Filter)}
		}
		err := c.cc.Subscribe(f.Filter, mqttcore.SubOptions{
			QoS:               mqttcore.QoS(f.Qos),
			NoLocal:           f.NoLocal,
			RetainAsPublished: f.RetainAsPublished,
			RetainHandling:    mqttcore.RetainHandling(f.RetainHandling),
			SubscriptionID:    subID,
		})
		switch {
		case err == nil:
			codes[i] = f.Qos
		case errors.Is(err, mqttcore.ErrDetached):
			return err
		case errors.Is(err, mqttcore.ErrNotAuthorized):
			st.subDenied.Add(1)
			c.srv.warnf("mqtt subscribe denied by acl", "client_id", c.clientID, "username", c.username, "filter", f.Filter)
			codes[i] = pick(v5, reasonNotAuthorized, failure)
		case errors.Is(err, mqttcore.ErrInvalidFilter):
			st.subRefused.Add(1)
			codes[i] = pick(v5, reasonTopicFilterInvalid, failure)
		default:
			st.subRefused.Add(1)
			c.srv.log.Error("mqtt listener: subscribe", "client_id", c.clientID, "filter", f.Filter, "err", err)
			codes[i] = pick(v5, reasonImplementation, failure)
		}
	}
	// The core may already have queued retained messages: the server may
	// send them before the SUBACK [MQTT-3.8.4].
	suback := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Suback}, PacketID: pk.PacketID, ReasonCodes: codes}
	return c.sendSynced(suback)
}

// onUnsubscribe handles UNSUBSCRIBE.
func (c *client) onUnsubscribe(pk *packets.Packet) error {
	codes := make([]byte, len(pk.Filters))
	for i, f := range pk.Filters {
		existed, err := c.cc.Unsubscribe(f.Filter)
		switch {
		case err == nil && existed:
			codes[i] = reasonSuccess
		case err == nil:
			codes[i] = reasonNoSubscriptionExists
		case errors.Is(err, mqttcore.ErrDetached):
			return err
		default:
			codes[i] = reasonTopicFilterInvalid
		}
	}
	return c.sendSynced(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsuback}, PacketID: pk.PacketID, ReasonCodes: codes})
}

// sendSynced sends a SUBACK or UNSUBACK once the subscription change is
// durable: at once without a journal, else when the core's Ack comes.
func (c *client) sendSynced(pk packets.Packet) error {
	c.deferSubAck(pk)
	if c.cc.Sync(mqttcore.Ack{Kind: mqttcore.AckSubscribe, PacketID: pk.PacketID}) {
		return nil
	}
	c.Acked(mqttcore.Ack{Kind: mqttcore.AckSubscribe, PacketID: pk.PacketID})
	return nil
}

// onDisconnect handles the client's DISCONNECT.
func (c *client) onDisconnect(pk *packets.Packet) error {
	if c.version == 5 {
		if pk.Properties.SessionExpiryIntervalFlag {
			if c.expiryZero && pk.Properties.SessionExpiryInterval != 0 {
				// [MQTT-3.14.2-2]
				return &closeErr{reason: byte(framing.ReasonProtocolError), counter: &c.srv.stats.protocol,
					err: errors.New("disconnect sets a session expiry after connect set 0")}
			}
			if err := c.cc.SetSessionExpiry(expiryDuration(pk.Properties.SessionExpiryInterval)); err != nil {
				return err
			}
		}
		c.disconnectWill = pk.ReasonCode == reasonDisconnectWithWill
	}
	return errClientDisconnect
}

// pick returns a for MQTT 5, b otherwise.
func pick(v5 bool, a, b byte) byte {
	if v5 {
		return a
	}
	return b
}

// messageProps converts the forwarded MQTT 5 PUBLISH (or will) properties,
// returning nil when there are none.
func messageProps(p *packets.Properties) *mqttcore.Properties {
	if !p.PayloadFormatFlag && p.MessageExpiryInterval == 0 && p.ContentType == "" &&
		p.ResponseTopic == "" && len(p.CorrelationData) == 0 && len(p.User) == 0 {
		return nil
	}
	mp := &mqttcore.Properties{
		MessageExpiry:   time.Duration(p.MessageExpiryInterval) * time.Second,
		ContentType:     p.ContentType,
		ResponseTopic:   p.ResponseTopic,
		CorrelationData: p.CorrelationData,
	}
	if p.PayloadFormatFlag {
		mp.PayloadFormat = p.PayloadFormat
	}
	if len(p.User) > 0 {
		mp.User = make([]mqttcore.UserProperty, len(p.User))
		for i, u := range p.User {
			mp.User[i] = mqttcore.UserProperty{Key: u.Key, Value: u.Val}
		}
	}
	return mp
}

// publishProps fills an outbound PUBLISH's properties from a message's.
func publishProps(dst *packets.Properties, p *mqttcore.Properties) {
	if p.PayloadFormat != 0 {
		dst.PayloadFormat, dst.PayloadFormatFlag = p.PayloadFormat, true
	}
	dst.ContentType = p.ContentType
	dst.ResponseTopic = p.ResponseTopic
	dst.CorrelationData = p.CorrelationData
	if len(p.User) > 0 {
		dst.User = make([]packets.UserProperty, len(p.User))
		for i, u := range p.User {
			dst.User[i] = packets.UserProperty{Key: u.Key, Val: u.Value}
		}
	}
}
