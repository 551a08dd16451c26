package snpacket

import "strconv"

// ReasonCode is the MQTT-SN 2.0 Reason Code (spec digest C.4): below 0x80
// success, from 0x80 failure. Values the draft does not name decode
// unchanged, so a newer peer's codes are not lost.
type ReasonCode uint8

// The MQTT-SN 2.0 reason codes (CSD01). The draft reuses MQTT 5's names;
// 0x1A and 0xE6-0xF4 are MQTT-SN's own.
const (
	Success                  ReasonCode = 0x00 // success, normal disconnection, granted QoS 0
	GrantedQoS1              ReasonCode = 0x01 // SUBACK
	GrantedQoS2              ReasonCode = 0x02 // SUBACK
	DisconnectWithWill       ReasonCode = 0x04 // client DISCONNECT: publish my will
	NoMatchingSubscribers    ReasonCode = 0x10 // PUBACK, PUBREC
	NoSubscriptionExisted    ReasonCode = 0x11 // UNSUBACK
	ContinueAuthentication   ReasonCode = 0x18 // AUTH
	ReAuthenticate           ReasonCode = 0x19 // AUTH from the client
	TopicAliasExists         ReasonCode = 0x1A // REGACK: the name has a predefined alias
	UnspecifiedError         ReasonCode = 0x80
	MalformedPacket          ReasonCode = 0x81
	ProtocolError            ReasonCode = 0x82
	ImplementationError      ReasonCode = 0x83
	UnsupportedVersion       ReasonCode = 0x84
	ClientIDNotValid         ReasonCode = 0x85
	BadUserNameOrPassword    ReasonCode = 0x86
	NotAuthorized            ReasonCode = 0x87
	ServerUnavailable        ReasonCode = 0x88
	ServerBusy               ReasonCode = 0x89
	Banned                   ReasonCode = 0x8A
	ServerShuttingDown       ReasonCode = 0x8B
	BadAuthenticationMethod  ReasonCode = 0x8C
	KeepAliveTimeout         ReasonCode = 0x8D
	SessionTakenOver         ReasonCode = 0x8E
	TopicFilterInvalid       ReasonCode = 0x8F
	TopicNameInvalid         ReasonCode = 0x90
	PacketIDInUse            ReasonCode = 0x91
	PacketIDNotFound         ReasonCode = 0x92
	ReceiveMaximumExceeded   ReasonCode = 0x93
	TopicAliasInvalid        ReasonCode = 0x94
	PacketTooLarge           ReasonCode = 0x95
	PacketRateTooHigh        ReasonCode = 0x96
	QuotaExceeded            ReasonCode = 0x97
	AdministrativeAction     ReasonCode = 0x98
	PayloadFormatInvalid     ReasonCode = 0x99
	RetainNotSupported       ReasonCode = 0x9A
	QoSNotSupported          ReasonCode = 0x9B
	UseAnotherServer         ReasonCode = 0x9C
	ServerMoved              ReasonCode = 0x9D
	SharedSubsNotSupported   ReasonCode = 0x9E
	ConnectionRateExceeded   ReasonCode = 0x9F
	MaximumConnectTime       ReasonCode = 0xA0
	SubIDsNotSupported       ReasonCode = 0xA1
	WildcardSubsNotSupported ReasonCode = 0xA2
	OnlyProtectedPackets     ReasonCode = 0xE6
	ProtectionSchemeInvalid  ReasonCode = 0xE7
	UnknownSenderID          ReasonCode = 0xE8
	UnknownTopicAlias        ReasonCode = 0xF0
	Congestion               ReasonCode = 0xF1
	ProtectionNotSupported   ReasonCode = 0xF2
	ForwarderNotSupported    ReasonCode = 0xF3
	NoVirtualConnection      ReasonCode = 0xF4
)

var reasonNames = map[ReasonCode]string{
	Success: "success", GrantedQoS1: "granted QoS 1", GrantedQoS2: "granted QoS 2",
	DisconnectWithWill: "disconnect with will", NoMatchingSubscribers: "no matching subscribers",
	NoSubscriptionExisted: "no subscription existed", ContinueAuthentication: "continue authentication",
	ReAuthenticate: "re-authenticate", TopicAliasExists: "topic alias already exists",
	UnspecifiedError: "unspecified error", MalformedPacket: "malformed packet",
	ProtocolError: "protocol error", ImplementationError: "implementation specific error",
	UnsupportedVersion: "unsupported protocol version", ClientIDNotValid: "client identifier not valid",
	BadUserNameOrPassword: "bad user name or password", NotAuthorized: "not authorized",
	ServerUnavailable: "server unavailable", ServerBusy: "server busy", Banned: "banned",
	ServerShuttingDown: "server shutting down", BadAuthenticationMethod: "bad authentication method",
	KeepAliveTimeout: "keep alive timeout", SessionTakenOver: "session taken over",
	TopicFilterInvalid: "topic filter invalid", TopicNameInvalid: "topic name invalid",
	PacketIDInUse: "packet identifier in use", PacketIDNotFound: "packet identifier not found",
	ReceiveMaximumExceeded: "receive maximum exceeded", TopicAliasInvalid: "topic alias invalid",
	PacketTooLarge: "packet too large", PacketRateTooHigh: "packet rate too high",
	QuotaExceeded: "quota exceeded", AdministrativeAction: "administrative action",
	PayloadFormatInvalid: "payload format invalid", RetainNotSupported: "retain not supported",
	QoSNotSupported: "QoS not supported", UseAnotherServer: "use another server",
	ServerMoved: "server moved", SharedSubsNotSupported: "shared subscriptions not supported",
	ConnectionRateExceeded: "connection rate exceeded", MaximumConnectTime: "maximum connect time",
	SubIDsNotSupported:       "subscription identifiers not supported",
	WildcardSubsNotSupported: "wildcard subscriptions not supported",
	OnlyProtectedPackets:     "only protected packets accepted", ProtectionSchemeInvalid: "protection scheme invalid",
	UnknownSenderID: "unknown sender id", UnknownTopicAlias: "unknown topic alias",
	Congestion: "congestion", ProtectionNotSupported: "protection packet not supported",
	ForwarderNotSupported: "forwarder encapsulation not supported",
	NoVirtualConnection:   "no virtual connection exists",
}

// Failed reports whether rc is a failure (0x80 or above).
func (rc ReasonCode) Failed() bool { return rc >= 0x80 }

// String returns the draft's description, such as "unknown topic alias", or
// "reason(0xf9)" for a value it does not name.
func (rc ReasonCode) String() string {
	if s, ok := reasonNames[rc]; ok {
		return s
	}
	return "reason(0x" + strconv.FormatUint(uint64(rc), 16) + ")"
}
