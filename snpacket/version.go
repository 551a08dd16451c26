package snpacket

import "strconv"

// Version is an MQTT-SN protocol version, numbered as the CONNECT carries
// it: ProtocolId 0x01 in 1.2, Protocol Version 0x02 in 2.0.
type Version uint8

// The protocol versions.
const (
	// VersionUnknown: the datagram does not say.
	VersionUnknown Version = 0
	// Version12 is MQTT-SN 1.2: [Decode], [Decoder], [Message].
	Version12 Version = ProtocolID
	// Version20 is MQTT-SN 2.0 (CSD01): [DecodeV2], [DecoderV2], [MessageV2].
	Version20 Version = ProtocolVersion2
)

// String returns "1.2", "2.0", "unknown", or "Version(n)".
func (v Version) String() string {
	switch v {
	case VersionUnknown:
		return "unknown"
	case Version12:
		return "1.2"
	case Version20:
		return "2.0"
	}
	return "Version(" + strconv.Itoa(int(v)) + ")"
}

// DetectVersion says which version's codec should decode datagram b, the
// first one from a sender that has no connection yet. Once a client has a
// connection, decode its datagrams with the version of its CONNECT: type
// numbers overlap, so only the connection can tell a 1.2 SUBSCRIBE (0x12)
// from a 2.0 PUBWOS.
//
// The rule (docs/mqttsn-2.md, digest C.10) looks only at the packets a
// client may send without a connection in either version:
//
//   - 0x01: a 1.2 SEARCHGW is exactly one octet after the type (Radius);
//     a 2.0 CONNECT has at least eight (Flags, Packet Identifier, Protocol
//     Version, Keep Alive, Maximum Packet Size). One octet is 1.2, eight or
//     more is 2.0 (the 2.0 codec then checks the Protocol Version and
//     answers a wrong one with CONNACK 0x84); anything between is neither.
//   - 0x04 (CONNECT), 0x02 (GWINFO), 0x16 (PINGREQ with a ClientId, from a
//     waking client), 0x0C with at least five octets (QoS -1 PUBLISH): 1.2.
//     The older 2.0 working draft's CONNECT also used 0x04 (with 0x02 in
//     the ProtocolId octet): the 1.2 codec refuses it with
//     ErrUnsupportedProtocol, which the gateway answers with CONNACK
//     "rejected: not supported".
//   - 0x18: a 1.2 DISCONNECT has 0 or 2 octets after the type, a 2.0 GWINFO
//     1 or at least 3.
//   - 0x12 (PUBWOS), 0x17 (SEARCHGW), 0xFC, 0xFD (forwarders) and 0xFF
//     (protection): 2.0. In 1.2 they are SUBSCRIBE and PINGRESP, which no
//     client sends without a connection, or reserved.
//   - 0xFE: the 1.2 forwarder envelope's Length covers the envelope alone,
//     so it is shorter than the datagram; the 2.0 Connection
//     Encapsulation's covers the whole datagram. (Eclipse Paho's Connection
//     Encapsulation uses the envelope-only Length too and so is classified
//     1.2; which senders are forwarders is configuration, see
//     docs/mqttsn-2.md.)
//
// Anything else, or a datagram too short to carry its header, is
// VersionUnknown: the gateway drops it or answers as its 1.2 rules say for
// an unknown sender.
func DetectVersion(b []byte) Version {
	length, hdr, err := parseLength(b)
	if err != nil {
		return VersionUnknown
	}
	t := b[hdr]
	switch t {
	case 0xFD: // Paho's forwarder: Length covers the envelope only
		if length < len(b) {
			return Version20
		}
		return VersionUnknown
	case 0xFE:
		switch {
		case length == len(b):
			return Version20
		case length < len(b):
			return Version12
		}
		return VersionUnknown
	}
	if length != len(b) {
		return VersionUnknown
	}
	n := len(b) - hdr - 1 // octets after the type
	switch t {
	case 0x01:
		switch {
		case n == 1:
			return Version12
		case n >= 8:
			return Version20
		}
	case 0x02, 0x04, 0x16:
		return Version12
	case 0x0C:
		if n >= 5 {
			return Version12
		}
	case 0x18:
		if n == 0 || n == 2 {
			return Version12
		}
		return Version20
	case 0x12, 0x17, 0xFC, 0xFF:
		return Version20
	}
	return VersionUnknown
}
