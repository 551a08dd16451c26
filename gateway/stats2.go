package gateway

import "sync/atomic"

// StatsV2 counts what only MQTT-SN 2.0 clients do (v2.go). Everything the
// two versions share (Received, Rejected, Denied, QoSMinus1 for PUBWOS, ...)
// is counted in Stats for both.
type StatsV2 struct {
	// Connects counts 2.0 CONNECTs accepted.
	Connects uint64
	// AuthRefused counts 2.0 CONNECTs (in Rejected too) and
	// re-authentications refused for their authentication: unknown method,
	// wrong user name or password.
	AuthRefused uint64
	// PahoDeviations counts packets accepted in Eclipse Paho's forms that
	// CSD01 does not allow: CONNECT with Packet Identifier 0, the 2-octet
	// DISCONNECT, the 0xFD forwarder envelope from a forwarder
	// paho_forwarders lists (docs/mqttsn-2.md).
	PahoDeviations uint64
	// ProtocolErrors counts 2.0 virtual connections the gateway ended for
	// a protocol error (DISCONNECT 0x82, 0x86, 0x87).
	ProtocolErrors uint64
	// Unsupported counts 2.0 envelopes refused because Gannet does not
	// implement them (Protection Encapsulation, answered DISCONNECT 0xF2;
	// Eclipse Paho's Connection Encapsulation and a re-bind behind a
	// forwarder, dropped) or does not accept from the sender (Paho's 0xFD
	// forwarder envelope from a forwarder paho_forwarders does not list,
	// dropped).
	Unsupported uint64
	// Rebound counts 2.0 clients re-bound to a new address by a
	// Connection Encapsulation (connencap.go).
	Rebound uint64
	// Wakeups counts WAKEUPs sent: one to an asleep 2.0 client when the
	// first message is queued for it after it went to sleep (sleep2.go).
	Wakeups uint64
	// AliasesResumed counts 2.0 CONNECTs that resumed a session and got
	// back the session aliases kept with it (persist.go).
	AliasesResumed uint64
}

type stats2 struct {
	v2Connects, authRefused, pahoDeviations atomic.Uint64
	v2ProtocolErrors, v2Unsupported         atomic.Uint64
	v2Rebound, v2Wakeups, v2AliasesResumed  atomic.Uint64
}

func (s *stats2) snapshot2() StatsV2 {
	return StatsV2{
		Connects: s.v2Connects.Load(), AuthRefused: s.authRefused.Load(),
		PahoDeviations: s.pahoDeviations.Load(), ProtocolErrors: s.v2ProtocolErrors.Load(),
		Unsupported: s.v2Unsupported.Load(), Rebound: s.v2Rebound.Load(),
		Wakeups: s.v2Wakeups.Load(), AliasesResumed: s.v2AliasesResumed.Load(),
	}
}
