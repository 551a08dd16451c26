// Package snpacket is the MQTT-SN 1.2 wire codec: one Go type per message type,
// decoding from and appending to byte slices. It does no I/O, keeps no state
// between calls and never logs.
//
// # Framing
//
// One datagram carries exactly one message. Every message starts with a Length
// field that counts the whole message: one octet, or the escape octet 0x01
// followed by two octets (big-endian). Decode accepts both forms for every
// message, including short ones, and rejects a datagram whose Length differs
// from its size. AppendBinary writes the one-octet form whenever the message
// fits in 255 octets and the three-octet form above that, up to 65535.
//
// The forwarder's Encapsulated message (0xFE) is the one exception: its Length
// covers only the envelope (Length, MsgType, Ctrl, Wireless Node Id), and the
// inner message that follows carries its own Length.
//
// # Decoding and aliasing
//
// [Decode] returns a freshly allocated message. A [Decoder] reuses one message
// value per type, so decoding with it allocates nothing; the message it returns
// is valid only until its next Decode call. Either way, byte-slice fields
// (client ids, topic names, payloads, ...) alias the input datagram: they stay
// valid only while the caller leaves that buffer alone. Call Clone on a message
// to keep it beyond that. Empty variable-length fields decode as nil.
//
// Decode checks the wire structure: lengths, message types, flag values that
// the specification leaves no room for (QoS in a will, reserved topic id
// types, QoS -1 with a normal topic id). Semantic rules that need a session
// (is this topic id registered, is a MsgId of 0 acceptable at QoS 1) belong to
// the gateway. Flag bits that a message does not use are ignored on decode and
// written as zero on encode, as the specification asks; so are the reserved
// bits of an Encapsulated message's Ctrl octet. The choices for the points the
// specification leaves open are in docs/spec-interpretation.md.
//
// # Errors
//
// Every error returned is an [*Error] naming the operation, the message type
// and the field, wrapping one of the sentinel errors in errors.go, so that
// errors.Is(err, ErrLengthMismatch) works and the text says where.
//
// # Versions
//
// This package speaks MQTT-SN 1.2 (CONNECT ProtocolId 0x01). MQTT-SN 2.0
// renumbers the message types, so it will come as a separate set of types and
// a version-aware decoder; a gateway decides the version per client from its
// CONNECT (see the spec notes, C.10). Nothing here assumes there is only one
// version.
package snpacket
