package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// MQTT-SN 2.0 (OASIS CSD01, digest Part C; docs/mqttsn-2.md) beside 1.2 on
// the same links. Which version a sender speaks is decided once, by the
// datagram that creates its client (snpacket.DetectVersion, digest C.10),
// and kept in the client: a client with isV2 (and v2) set is a 2.0 client, and every
// datagram from its address is decoded with the 2.0 codec and every answer
// encoded in 2.0. The two versions share everything but the wire: the
// session states (state.go), the core session and its queue (sleep is the
// same detached core session), the one exchange in flight (deliver.go),
// topic ids (a 2.0 session alias is a normal topic id of the registry, a
// predefined alias a predefined id), admission and probation, and the ACL.
//
// A sender is never re-detected while its client exists: the type numbers
// overlap (a 1.2 SUBSCRIBE is a 2.0 PUBWOS). The one exception is a CONNECT
// of the other version from a known address, which the client's own codec
// cannot decode: it replaces the client, as a CONNECT with another client
// id does (switchVersion).

// v2conn is what a 2.0 client has beyond a 1.2 client, in one 32-byte
// allocation that client.v2 points to (nil for a 1.2 client, which pays
// nothing: the pointer takes the place the will dialogue had, and only 1.2
// has a will dialogue, will.go). A sleeping sensor's budget is 1 KiB
// (DEVELOPERS.md; TestV2ConnSize, TestMemoryAsleepSensors), so what few
// clients have (an authenticated user, a CONNACK waiting for a remote
// broker) is behind rare.
type v2conn struct {
	// expiry is the core session's expiry: the CONNECT's Session Expiry,
	// at most session_expiry (connect2.go), replaced by a DISCONNECT's.
	expiry time.Duration
	// rare holds the seldom-set fields, nil while all are zero.
	rare *v2rare
	// sleepFor is the SLEEPREQ's Sleep Duration, in seconds.
	sleepFor uint32
	// maxPacket is the CONNECT's Maximum Packet Size (0: no limit beyond
	// max_message_size).
	maxPacket uint16
	// pingID is the Packet Identifier of the PINGREQ that woke the client,
	// echoed by the PINGRESP that ends the awake period.
	pingID uint16
	// awakeMax is the CONNECT's Default Awake Messages (0: no limit);
	// awakeSent counts the messages started in this awake period.
	awakeMax, awakeSent uint8
	// allowMove: the CONNECT allowed network address changes.
	allowMove bool
	// paho: the client is behind a forwarder that uses Eclipse Paho's
	// 0xFD envelope; everything it is sent goes in that form (forward2.go).
	paho bool
	// expiryZero: the CONNECT's Session Expiry was 0 (or absent); a
	// DISCONNECT may then not set one (CSD01 3.14).
	expiryZero bool
}

// v2rare is the part of a 2.0 client's state that few clients have.
type v2rare struct {
	// user is the name the CONNECT authenticated (SASL PLAIN or
	// MQTT-BASIC, auth2.go), the client's ACL user; "" when the CONNECT
	// carried no authentication (the ACL user is then found as for 1.2).
	user string
	// connack is the CONNACK that waits for the remote broker of a
	// transparent session (upstream.go), nil otherwise.
	connack *sn.ConnackV2
}

// user returns the authenticated user, "" for none.
func (v *v2conn) user() string {
	if v.rare == nil {
		return ""
	}
	return v.rare.user
}

// setUser records the authenticated user ("" for none).
func (v *v2conn) setUser(u string) {
	if u != "" && v.rare == nil {
		v.rare = &v2rare{}
	}
	if v.rare != nil {
		v.rare.user = u
		v.tidy()
	}
}

// setConnack keeps ack until the remote broker answers.
func (v *v2conn) setConnack(ack *sn.ConnackV2) {
	if v.rare == nil {
		v.rare = &v2rare{}
	}
	v.rare.connack = ack
}

// takeConnack returns the waiting CONNACK, nil for none, and forgets it.
func (v *v2conn) takeConnack() *sn.ConnackV2 {
	if v.rare == nil {
		return nil
	}
	ack := v.rare.connack
	v.rare.connack = nil
	v.tidy()
	return ack
}

// tidy drops rare once it holds nothing.
func (v *v2conn) tidy() {
	if r := v.rare; r != nil && r.user == "" && r.connack == nil {
		v.rare = nil
	}
}

// setV2 makes c a 2.0 client.
func (c *client) setV2() {
	c.v2 = &v2conn{}
	c.isV2 = true
}

// loop-level 2.0 dispatch.

// handleDatagramV2 decodes a datagram from c, a 2.0 client, and dispatches it.
func (l *loop) handleDatagramV2(c *client, b []byte) {
	m, err := l.dec2.Decode(b)
	if err != nil {
		if l.switchVersion(c, b) {
			return
		}
		l.malformedV2(c.key, b, err)
		return
	}
	if fe, ok := m.(*sn.ForwarderEncapsulation); ok && (!fe.Paho || l.g.pahoForwarder(c.key.addr)) {
		l.handleForwardedV2(c.key, fe, b) // a forwarder at a 2.0 client's address (forward2.go)
		return
	}
	if l.g.log.Enabled(context.Background(), slog.LevelDebug) {
		l.g.log.Debug("received", "remote", c.key.addr, "msg_type", m.Type(), "client_id", c.id, "version", "2.0")
	}
	if c.probation {
		switch m.(type) {
		case *sn.ConnectV2, *sn.SearchGWV2, *sn.Pubwos:
		default:
			l.verified(c) // probation.go
		}
	}
	c.handleV2(m)
	c.checkState()
}

// malformedV2 counts a 2.0 datagram that did not decode. A CONNECT with a
// Protocol Version other than 2 is answered CONNACK 0x84 (CSD01 3.1.2); any
// other malformed packet is dropped and counted, the virtual connection is
// kept (docs/mqttsn-2.md: one corrupted or spoofed datagram must not cost a
// sensor its session or publish its will).
func (l *loop) malformedV2(key clientKey, b []byte, err error) {
	l.g.stats.malformed.Add(1)
	if l.g.log.Enabled(context.Background(), slog.LevelDebug) {
		l.g.log.Debug("malformed datagram dropped", "remote", key.addr, "version", "2.0", "err", err)
	}
	if errors.Is(err, sn.ErrUnsupportedProtocol) {
		if id, ok := connectPacketID(b); ok {
			l.tx2.connack = sn.ConnackV2{PacketID: id, ReasonCode: sn.UnsupportedVersion}
			l.sendToV2(key, &l.tx2.connack)
		}
	}
}

// connectPacketID reads the Packet Identifier of a 2.0 CONNECT that did not
// decode (for its CONNACK 0x84); ok is false when b is not one.
func connectPacketID(b []byte) (uint16, bool) {
	hdr := 1
	if len(b) > 0 && b[0] == 0x01 {
		hdr = 3
	}
	if len(b) < hdr+4 || b[hdr] != byte(sn.PacketConnect) {
		return 0, false
	}
	at := hdr + 2 // after the type and the Connect Flags
	if b[hdr+1]&0x02 != 0 {
		at++ // Will Flags
	}
	if len(b) < at+2 {
		return 0, false
	}
	return uint16(b[at])<<8 | uint16(b[at+1]), true
}

// switchVersion handles a datagram that c's codec could not decode: when it
// is a CONNECT of the other version, the sensor at c's address changed its
// protocol (new firmware): c is lost as a client replaced by another client
// id is, and the datagram starts a new client. It reports whether it did.
func (l *loop) switchVersion(c *client, b []byte) bool {
	other := sn.Version20
	if c.isV2 {
		other = sn.Version12
	}
	if sn.DetectVersion(b) != other {
		return false
	}
	key := c.key
	if other == sn.Version20 {
		m, err := l.dec2.Decode(b)
		cm, ok := m.(*sn.ConnectV2)
		if err != nil || !ok {
			return false
		}
		c.lose("CONNECT in MQTT-SN 2.0")
		l.connectNewV2(key, nil, cm)
		return true
	}
	m, err := l.dec.Decode(b)
	cm, ok := m.(*sn.Connect)
	if err != nil || !ok {
		return false
	}
	c.lose("CONNECT in MQTT-SN 1.2")
	nc := l.admit(key, nil, cm.ClientID)
	if nc == nil {
		l.refuseFull(key, nil, cm.ClientID)
		return true
	}
	nc.onConnect(cm)
	nc.checkState()
	return true
}

// handleUnknownV2 answers a datagram from a sender with no client state
// that DetectVersion classified 2.0, or that the 1.2 codec refused. It
// reports false, leaving the datagram to the 1.2 rules, when the 2.0 codec
// refuses it and the 1.2 codec accepts it: a 1.2 SUBSCRIBE (0x12) from a sensor the gateway forgot
// (a restart) is then answered DISCONNECT as before, so it CONNECTs again
// (docs/spec-interpretation.md G21).
func (l *loop) handleUnknownV2(key clientKey, b []byte) bool {
	m, err := l.dec2.Decode(b)
	if err != nil {
		if _, err12 := l.dec.Decode(b); err12 == nil {
			return false
		}
		l.malformedV2(key, b, err)
		return true
	}
	if fe, ok := m.(*sn.ForwarderEncapsulation); ok && (!fe.Paho || l.g.pahoForwarder(key.addr)) {
		l.handleForwardedV2(key, fe, b) // forward2.go
		return true
	}
	l.unknownV2(key, nil, m, b)
	return true
}

// unknownV2 answers a 2.0 packet m (in datagram b) from a sender with no
// client state: at key, or behind the forwarder at key with addressing
// information node (forward2.go).
func (l *loop) unknownV2(key clientKey, node []byte, m sn.MessageV2, b []byte) {
	if !l.g.allowUnknownV2(key.addr, m) {
		return
	}
	switch m := m.(type) {
	case *sn.ConnectV2:
		l.connectNewV2(key, node, m)
	case *sn.SearchGWV2:
		l.tx2.gwinfo = sn.GWInfoV2{GatewayID: l.g.live().GatewayID}
		l.sendToNodeV2(key, node, node != nil && l.pahoReply, &l.tx2.gwinfo)
	case *sn.Pubwos:
		l.publishPubwos(key, m) // publish2.go
	case *sn.PublishV2, *sn.PubackV2, *sn.PubrecV2, *sn.PubrelV2, *sn.PubcompV2, *sn.SubscribeV2,
		*sn.UnsubscribeV2, *sn.PingReqV2, *sn.DisconnectV2, *sn.Auth, *sn.RegisterV2, *sn.RegackV2,
		*sn.SleepReq:
		// Every packet but CONNECT, PUBWOS and discovery needs a virtual
		// connection (digest C.6): DISCONNECT "no virtual connection"
		// tells the sender to CONNECT; it is four octets, so a spoofed
		// source cannot use the gateway as an amplifier.
		l.refuseUnknownV2(key, node)
	case *sn.ConnEncapsulation:
		if node != nil {
			l.g.stats.v2Unsupported.Add(1) // a re-bind behind a forwarder: not served
			return
		}
		l.connEncapsulated(key, m, b) // connencap.go
	case *sn.ProtectionEncapsulation:
		l.refuseProtected(key, node)
	case *sn.ForwarderEncapsulation:
		// Eclipse Paho's 0xFD forwarder from a forwarder paho_forwarders
		// does not list, or a forwarder inside a forwarder: counted and
		// dropped, so a sender's next step is its own choice.
		l.g.stats.v2Unsupported.Add(1)
	default:
		// ADVERTISE, GWINFO and the server-to-client packets are not for
		// us; answering them could start a loop with another gateway.
		l.g.stats.unexpected.Add(1)
	}
}

// connectNewV2 starts a client for a 2.0 CONNECT from a sender with no
// client state; one with authentication first waits for its password
// check (auth2.go).
func (l *loop) connectNewV2(key clientKey, node []byte, m *sn.ConnectV2) {
	if m.Auth {
		l.connectAuthV2(key, node, m)
		return
	}
	l.startV2(key, node, m, "")
}

// startV2 admits a client for CONNECT m, which authenticated user (""
// for none), and connects it.
func (l *loop) startV2(key clientKey, node []byte, m *sn.ConnectV2, user string) {
	c := l.admit(key, node, m.ClientID) // probation.go
	if c == nil {
		l.g.stats.rejected.Add(1)
		l.g.limitHit(LimitClients, string(m.ClientID), key.addr, nil)
		l.tx2.connack = sn.ConnackV2{PacketID: m.PacketID, ReasonCode: sn.Congestion}
		l.sendToNodeV2(key, node, node != nil && l.pahoReply, &l.tx2.connack)
		return
	}
	c.setV2()
	c.v2.paho = node != nil && l.pahoReply // behind a Paho forwarder (forward2.go)
	c.connectChecked(m, user)
	c.checkState()
}

// refuseUnknownV2 answers a 2.0 packet that needs a virtual connection from
// a sender without one.
func (l *loop) refuseUnknownV2(key clientKey, node []byte) {
	l.g.stats.unknownClient.Add(1)
	l.tx2.disconnect = sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.NoVirtualConnection}
	l.sendToNodeV2(key, node, node != nil && l.pahoReply, &l.tx2.disconnect)
}

// sendToV2 encodes a 2.0 packet and writes it to key. It reports whether
// the packet fit in max_message_size and was written.
func (l *loop) sendToV2(key clientKey, m sn.MessageV2) bool {
	return l.sendToNodeV2(key, nil, false, m)
}

// sendToNodeV2 is sendToV2 for a client behind a forwarder when node is
// not nil: the packet goes in a Forwarder Encapsulation with the client's
// addressing information, in Eclipse Paho's 0xFD form when paho is set
// (forward2.go).
func (l *loop) sendToNodeV2(key clientKey, node []byte, paho bool, m sn.MessageV2) bool {
	if node != nil {
		l.tx2.fwd = sn.ForwarderEncapsulation{Paho: paho, Addr: node, Inner: m}
		m = &l.tx2.fwd
	}
	out, err := m.AppendBinary(l.out[:0])
	l.tx2.fwd.Inner = nil
	if err != nil || len(out) > l.g.live().MaxMessageSize {
		l.g.limitHit(LimitMessageSizeOut, "", key.addr, err)
		return false
	}
	l.out = out
	if err := l.write(key, out); err != nil { // loop.go: queued with the 1.2 sends, in order
		l.g.log.Debug("write failed", "remote", key.addr, "msg_type", m.Type(), "err", err)
		return false
	}
	return true
}

// allowUnknownV2 is allowUnknown for a 2.0 packet: PUBWOS is limited by the
// QoS -1 limiter, packets the gateway ignores are not limited.
func (g *Gateway) allowUnknownV2(src netip.AddrPort, m sn.MessageV2) bool {
	lim, which := g.opts.UnknownSourceLimiter, LimitUnknownSourceRate
	switch m.(type) {
	case *sn.Pubwos:
		lim, which = g.opts.QoSMinus1Limiter, LimitQoSMinus1Rate
	case *sn.AdvertiseV2, *sn.GWInfoV2, *sn.ConnackV2, *sn.SubackV2, *sn.UnsubackV2, *sn.PingRespV2,
		*sn.SleepResp, *sn.Wakeup, *sn.ForwarderEncapsulation, *sn.ProtectionEncapsulation:
		return true // ignored, and counted, by handleUnknownV2
	}
	if lim == nil || lim.Allow(src.Addr(), time.Now()) {
		return true
	}
	g.limitHit(which, "", src, nil)
	return false
}

// client-level 2.0 dispatch.

// handleV2 dispatches one 2.0 packet from the client.
func (c *client) handleV2(m sn.MessageV2) {
	c.lastSeen = c.l.now()
	if c.state == StateAsleep {
		// Asleep, a client may CONNECT, wake (PINGREQ), DISCONNECT or
		// sleep again (SLEEPREQ while asleep restarts the sleep timer,
		// digest C.8); PUBWOS and SEARCHGW need no session.
		switch m.(type) {
		case *sn.ConnectV2, *sn.PingReqV2, *sn.DisconnectV2, *sn.SleepReq, *sn.SearchGWV2, *sn.Pubwos, *sn.ConnEncapsulation,
			*sn.ProtectionEncapsulation:
		default:
			c.unexpectedV2(m)
			return
		}
	}
	switch m := m.(type) {
	case *sn.ConnectV2:
		c.onConnectV2(m)
	case *sn.Auth:
		c.onAuth(m)
	case *sn.RegisterV2:
		c.onRegisterV2(m)
	case *sn.PublishV2:
		c.onPublishV2(m)
	case *sn.Pubwos:
		c.onPubwos(m)
	case *sn.PubackV2:
		c.onPubackV2(m)
	case *sn.PubrecV2:
		c.onPubrecV2(m)
	case *sn.PubrelV2:
		c.onPubrelV2(m)
	case *sn.PubcompV2:
		c.onPubcompV2(m)
	case *sn.SubscribeV2:
		c.onSubscribeV2(m)
	case *sn.UnsubscribeV2:
		c.onUnsubscribeV2(m)
	case *sn.PingReqV2:
		c.onPingReqV2(m)
	case *sn.SleepReq:
		c.onSleepReq(m)
	case *sn.DisconnectV2:
		c.onDisconnectV2(m)
	case *sn.SearchGWV2:
		c.l.tx2.gwinfo = sn.GWInfoV2{GatewayID: c.l.g.live().GatewayID}
		c.sendV2(&c.l.tx2.gwinfo)
	case *sn.ConnEncapsulation:
		c.onConnEncapsulation(m) // connencap.go
	case *sn.ProtectionEncapsulation:
		c.onProtected()
	default:
		// REGACK (the gateway sends no REGISTER in 2.0), server packets,
		// envelopes from a connected client.
		c.unexpectedV2(m)
	}
}

func (c *client) unexpectedV2(m sn.MessageV2) {
	c.l.g.stats.unexpected.Add(1)
	if c.l.g.log.Enabled(context.Background(), slog.LevelDebug) {
		c.l.g.log.Debug("unexpected message ignored", "client_id", c.id, "remote", c.key.addr,
			"msg_type", m.Type(), "state", c.state, "version", "2.0")
	}
}

// sendV2 writes a 2.0 packet to the client.
func (c *client) sendV2(m sn.MessageV2) bool {
	return c.l.sendToNodeV2(c.key, c.nodeID(), c.fwd && c.v2.paho, m)
}

// Protection Encapsulation (0xFF, CSD01's optional OSCORE-like envelope) is
// not implemented: Gannet holds no keys, so it can neither verify a tag nor
// decrypt. A protected packet is refused with the draft's own reason code,
// DISCONNECT 0xF2 "protection packet not supported" (four octets: no
// amplification), and counted in Stats.V2.Unsupported, so a sensor that can
// fall back to unprotected packets knows to (docs/mqttsn-2.md G2-27).

// refuseProtected answers a Protection Encapsulation from a sender without
// a connection (at key, or behind the forwarder at key with node).
func (l *loop) refuseProtected(key clientKey, node []byte) {
	l.g.stats.v2Unsupported.Add(1)
	if l.g.log.Enabled(context.Background(), slog.LevelDebug) {
		l.g.log.Debug("protection encapsulation refused", "remote", key.addr, "version", "2.0")
	}
	l.tx2.disconnect = sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.ProtectionNotSupported}
	l.sendToNodeV2(key, node, node != nil && l.pahoReply, &l.tx2.disconnect)
}

// onProtected answers a Protection Encapsulation from a client: DISCONNECT
// 0xF2 ends its virtual connection (a server's DISCONNECT always does), so
// the client is lost, its will published as for every end but its own
// DISCONNECT 0x00.
func (c *client) onProtected() {
	c.l.g.stats.v2Unsupported.Add(1)
	c.l.tx2.disconnect = sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.ProtectionNotSupported}
	c.sendV2(&c.l.tx2.disconnect)
	c.lose("protection encapsulation not supported")
}

// protocolError ends the client's virtual connection for a protocol error
// (CSD01 4.12): DISCONNECT with rc, then the client is lost (its will is
// published, as for every end but a DISCONNECT 0x00).
func (c *client) protocolError(rc sn.ReasonCode, why string) {
	c.l.g.stats.v2ProtocolErrors.Add(1)
	c.l.tx2.disconnect = sn.DisconnectV2{HasReasonCode: true, ReasonCode: rc}
	c.sendV2(&c.l.tx2.disconnect)
	c.lose(why)
}

// reasonCode maps a core error to the MQTT-SN 2.0 reason code for the
// client: the one place where that mapping lives (returnCode is 1.2's).
func reasonCode(err error) sn.ReasonCode {
	switch {
	case err == nil:
		return sn.Success
	case errors.Is(err, mqttcore.ErrNotAuthorized):
		return sn.NotAuthorized
	case errors.Is(err, mqttcore.ErrInvalidTopic), errors.Is(err, mqttcore.ErrReservedTopic):
		return sn.TopicNameInvalid
	case errors.Is(err, mqttcore.ErrInvalidFilter):
		return sn.TopicFilterInvalid
	case errors.Is(err, mqttcore.ErrInvalidClientID):
		return sn.ClientIDNotValid
	case errors.Is(err, mqttcore.ErrTooManySessions):
		return sn.ServerBusy
	case errors.Is(err, mqttcore.ErrClosed):
		return sn.ServerUnavailable
	case errors.Is(err, mqttcore.ErrInflightFull), errors.Is(err, mqttcore.ErrQueueFull),
		errors.Is(err, mqttcore.ErrCongestion), errors.Is(err, mqttcore.ErrStoreFailed),
		errors.Is(err, mqttcore.ErrUnavailable):
		return sn.Congestion // "try again later", as 1.2's congestion
	}
	return sn.ImplementationError // payload too large, retained full, ...
}

// txScratch2 holds the loop's outgoing 2.0 packet values, reused so that
// sending allocates nothing.
type txScratch2 struct {
	publish    sn.PublishV2
	puback     sn.PubackV2
	pubrec     sn.PubrecV2
	pubrel     sn.PubrelV2
	pubcomp    sn.PubcompV2
	regack     sn.RegackV2
	suback     sn.SubackV2
	unsuback   sn.UnsubackV2
	connack    sn.ConnackV2
	pingresp   sn.PingRespV2
	sleepresp  sn.SleepResp
	disconnect sn.DisconnectV2
	auth       sn.Auth
	gwinfo     sn.GWInfoV2
	wakeup     sn.Wakeup
	fwd        sn.ForwarderEncapsulation
}
