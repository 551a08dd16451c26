package listener

import "sync/atomic"

// serverCounters are a Server's atomic counters.
type serverCounters struct {
	accepted       atomic.Uint64
	current        atomic.Int64
	connected      atomic.Uint64
	refusedLimit   atomic.Uint64
	connectTimeout atomic.Uint64
	refusedAuth    atomic.Uint64
	refusedID      atomic.Uint64
	refusedKA      atomic.Uint64
	refusedOther   atomic.Uint64
	keepAlive      atomic.Uint64
	malformed      atomic.Uint64
	protocol       atomic.Uint64
	tooLarge       atomic.Uint64
	badVersion     atomic.Uint64
	pubDenied      atomic.Uint64
	subDenied      atomic.Uint64
	pubRefused     atomic.Uint64
	subRefused     atomic.Uint64
	outTooLarge    atomic.Uint64
	unknownAck     atomic.Uint64
	takenOver      atomic.Uint64
	kicked         atomic.Uint64
	received       atomic.Uint64
	sent           atomic.Uint64
}

// Stats is a snapshot of a Server's counters. Each value is read
// atomically; the snapshot as a whole is not.
type Stats struct {
	// ConnectionsAccepted counts network connections accepted (TCP, TLS and
	// WebSocket), including those refused afterwards.
	ConnectionsAccepted uint64
	// ConnectionsCurrent is the number of open connections.
	ConnectionsCurrent int64
	// ConnectionsEstablished counts CONNECTs answered with a successful
	// CONNACK.
	ConnectionsEstablished uint64
	// RefusedMaxConnections counts connections closed at accept because
	// MaxConnections were open.
	RefusedMaxConnections uint64
	// ConnectTimeouts counts connections closed because no complete
	// CONNECT arrived within ConnectTimeout.
	ConnectTimeouts uint64
	// RefusedAuth counts CONNECTs refused for bad credentials, refused
	// anonymous access, an unsupported authentication method or a will
	// topic the ACL does not allow.
	RefusedAuth uint64
	// RefusedClientID counts CONNECTs refused for their client identifier
	// (MQTT 3.1: empty or longer than 23 characters).
	RefusedClientID uint64
	// RefusedKeepAlive counts MQTT 3.1 and 3.1.1 CONNECTs refused because
	// their keep alive exceeded server_keep_alive (or was 0 with one set).
	RefusedKeepAlive uint64
	// RefusedOther counts CONNECTs the core refused (session limit, bad
	// will, broker closed).
	RefusedOther uint64
	// KeepAliveTimeouts counts connections closed because nothing arrived
	// within 1.5 times the keep alive [MQTT-3.1.2-24].
	KeepAliveTimeouts uint64
	// Malformed counts connections closed for a malformed packet (0x81).
	Malformed uint64
	// ProtocolErrors counts connections closed for a protocol error (0x82,
	// and the MQTT 5 codes for a bad topic alias and receive maximum
	// exceeded).
	ProtocolErrors uint64
	// PacketsTooLarge counts connections closed for a packet above the
	// maximum packet size (0x95).
	PacketsTooLarge uint64
	// UnsupportedVersion counts CONNECTs with a protocol other than MQTT 3.1
	// ("MQIsdp" 3), 3.1.1 or 5.0 ("MQTT" 4 or 5).
	UnsupportedVersion uint64
	// PublishDenied counts PUBLISHes the ACL refused (MQTT 5: PUBACK or
	// PUBREC 0x87; MQTT 3.1.1: acknowledged and dropped).
	PublishDenied uint64
	// SubscribeDenied counts topic filters the ACL refused (SUBACK 0x87,
	// 3.1.1: 0x80).
	SubscribeDenied uint64
	// PublishRefused counts PUBLISHes the core refused: invalid or
	// reserved topic, payload too large, retained store full.
	PublishRefused uint64
	// SubscribeRefused counts topic filters the core refused as invalid.
	SubscribeRefused uint64
	// OutboundTooLarge counts deliveries dropped because they exceeded the
	// client's Maximum Packet Size [MQTT-3.1.2-25].
	OutboundTooLarge uint64
	// UnknownPacketIDs counts acknowledgements naming a packet id not in
	// flight.
	UnknownPacketIDs uint64
	// TakenOver counts connections closed because another connection took
	// their session over.
	TakenOver uint64
	// Kicked counts connections closed by the broker (Broker.Kick or
	// Broker.Close).
	Kicked uint64
	// PacketsReceived and PacketsSent count MQTT control packets.
	PacketsReceived uint64
	PacketsSent     uint64
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		ConnectionsAccepted:    c.accepted.Load(),
		ConnectionsCurrent:     c.current.Load(),
		ConnectionsEstablished: c.connected.Load(),
		RefusedMaxConnections:  c.refusedLimit.Load(),
		ConnectTimeouts:        c.connectTimeout.Load(),
		RefusedAuth:            c.refusedAuth.Load(),
		RefusedClientID:        c.refusedID.Load(),
		RefusedKeepAlive:       c.refusedKA.Load(),
		RefusedOther:           c.refusedOther.Load(),
		KeepAliveTimeouts:      c.keepAlive.Load(),
		Malformed:              c.malformed.Load(),
		ProtocolErrors:         c.protocol.Load(),
		PacketsTooLarge:        c.tooLarge.Load(),
		UnsupportedVersion:     c.badVersion.Load(),
		PublishDenied:          c.pubDenied.Load(),
		SubscribeDenied:        c.subDenied.Load(),
		PublishRefused:         c.pubRefused.Load(),
		SubscribeRefused:       c.subRefused.Load(),
		OutboundTooLarge:       c.outTooLarge.Load(),
		UnknownPacketIDs:       c.unknownAck.Load(),
		TakenOver:              c.takenOver.Load(),
		Kicked:                 c.kicked.Load(),
		PacketsReceived:        c.received.Load(),
		PacketsSent:            c.sent.Load(),
	}
}
