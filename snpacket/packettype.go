package snpacket

import "strconv"

// PacketType is the MQTT-SN 2.0 Packet Type octet (CSD01, spec digest
// C.2). Its values overlap the 1.2 [MsgType] values with other meanings
// (0x01 is a 2.0 CONNECT but a 1.2 SEARCHGW), so the two are distinct Go
// types and a datagram must be decoded with its sender's version.
type PacketType uint8

// The MQTT-SN 2.0 packet types. Values not listed are reserved.
const (
	PacketConnect     PacketType = 0x01
	PacketConnack     PacketType = 0x02
	PacketPublish     PacketType = 0x03
	PacketPuback      PacketType = 0x04
	PacketPubrec      PacketType = 0x05
	PacketPubrel      PacketType = 0x06
	PacketPubcomp     PacketType = 0x07
	PacketSubscribe   PacketType = 0x08
	PacketSuback      PacketType = 0x09
	PacketUnsubscribe PacketType = 0x0A
	PacketUnsuback    PacketType = 0x0B
	PacketPingReq     PacketType = 0x0C
	PacketPingResp    PacketType = 0x0D
	PacketDisconnect  PacketType = 0x0E
	PacketAuth        PacketType = 0x0F
	PacketRegister    PacketType = 0x10
	PacketRegack      PacketType = 0x11
	PacketPubwos      PacketType = 0x12
	PacketSleepReq    PacketType = 0x13
	PacketSleepResp   PacketType = 0x14
	PacketWakeup      PacketType = 0x15
	PacketAdvertise   PacketType = 0x16
	PacketSearchGW    PacketType = 0x17
	PacketGWInfo      PacketType = 0x18
	// PacketForwarder is the Forwarder Encapsulation (1.2 used 0xFE).
	PacketForwarder PacketType = 0xFC
	// PacketForwarderPaho is reserved in CSD01, but Eclipse Paho's 2.0
	// gateway and tools still wrap forwarded packets at 0xFD, with 1.2's
	// envelope-only Length. Decoded only for tolerance; see
	// docs/mqttsn-2.md.
	PacketForwarderPaho PacketType = 0xFD
	// PacketConnEncapsulation is the Connection Encapsulation, client to
	// server only.
	PacketConnEncapsulation PacketType = 0xFE
	// PacketProtection is the Protection Encapsulation.
	PacketProtection PacketType = 0xFF
)

var packetTypeNames = [...]string{
	PacketConnect:     "CONNECT",
	PacketConnack:     "CONNACK",
	PacketPublish:     "PUBLISH",
	PacketPuback:      "PUBACK",
	PacketPubrec:      "PUBREC",
	PacketPubrel:      "PUBREL",
	PacketPubcomp:     "PUBCOMP",
	PacketSubscribe:   "SUBSCRIBE",
	PacketSuback:      "SUBACK",
	PacketUnsubscribe: "UNSUBSCRIBE",
	PacketUnsuback:    "UNSUBACK",
	PacketPingReq:     "PINGREQ",
	PacketPingResp:    "PINGRESP",
	PacketDisconnect:  "DISCONNECT",
	PacketAuth:        "AUTH",
	PacketRegister:    "REGISTER",
	PacketRegack:      "REGACK",
	PacketPubwos:      "PUBWOS",
	PacketSleepReq:    "SLEEPREQ",
	PacketSleepResp:   "SLEEPRESP",
	PacketWakeup:      "WAKEUP",
	PacketAdvertise:   "ADVERTISE",
	PacketSearchGW:    "SEARCHGW",
	PacketGWInfo:      "GWINFO",
}

// Known reports whether t is a packet type this codec decodes: the types
// CSD01 defines, plus 0xFD for Paho's forwarder.
func (t PacketType) Known() bool {
	if t >= PacketForwarder {
		return true
	}
	return int(t) < len(packetTypeNames) && packetTypeNames[t] != ""
}

// String returns the draft's name of t, such as "PUBLISH", or
// "PacketType(0x19)" for a reserved value.
func (t PacketType) String() string {
	switch t {
	case PacketForwarder:
		return "FORWARDER"
	case PacketForwarderPaho:
		return "FORWARDER(0xFD)"
	case PacketConnEncapsulation:
		return "CONNECTION-ENCAPSULATION"
	case PacketProtection:
		return "PROTECTION"
	}
	if int(t) < len(packetTypeNames) && packetTypeNames[t] != "" {
		return packetTypeNames[t]
	}
	return "PacketType(0x" + strconv.FormatUint(uint64(t), 16) + ")"
}
