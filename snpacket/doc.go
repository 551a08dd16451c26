// Package snpacket is the MQTT-SN wire codec, for versions 1.2 and 2.0: one
// Go type per message type, decoding from and appending to byte slices. It
// does no I/O, keeps no state between calls and never logs.
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
// The 1.2 forwarder's Encapsulated message (0xFE) is the one exception: its
// Length covers only the envelope (Length, MsgType, Ctrl, Wireless Node Id),
// and the inner message that follows carries its own Length. (So do Eclipse
// Paho's 2.0 envelopes, its forwarder at 0xFD and its Connection
// Encapsulation at 0xFE; the draft's 2.0 envelopes at 0xFC, 0xFE and 0xFF
// count the whole packet.)
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
// The package speaks MQTT-SN 1.2 (CONNECT ProtocolId 0x01) and MQTT-SN 2.0 as
// of OASIS Committee Specification Draft 01 at TC commit d2361f1 (CONNECT
// Protocol Version 0x02; spec digest Part C). 2.0 renumbers every packet
// type, so the same type octet means different things in the two versions
// (0x01 is a 1.2 SEARCHGW and a 2.0 CONNECT; 0xFE the 1.2 forwarder and the
// 2.0 Connection Encapsulation). The two therefore have separate entry
// points and separate Go types, and a value's type says its version:
//
//   - 1.2: [Decode] and [Decoder] return a [Message]; types [MsgType],
//     [ReturnCode], [TopicIDType]; packets [Publish], [Connect], ...
//   - 2.0: [DecodeV2] and [DecoderV2] return a [MessageV2]; types
//     [PacketType], [ReasonCode], [TopicType]. A packet that 1.2 also has
//     gets the 1.2 name with a V2 suffix ([ConnectV2], [ConnackV2],
//     [PublishV2], [PubackV2], [PubrecV2], [PubrelV2], [PubcompV2],
//     [SubscribeV2], [SubackV2], [UnsubscribeV2], [UnsubackV2], [PingReqV2],
//     [PingRespV2], [DisconnectV2], [RegisterV2], [RegackV2], [AdvertiseV2],
//     [SearchGWV2], [GWInfoV2]); the packets new in 2.0 have plain names
//     ([Auth], [Pubwos], [SleepReq], [SleepResp], [Wakeup],
//     [ForwarderEncapsulation], [ConnEncapsulation],
//     [ProtectionEncapsulation]). No 2.0 packet reuses a 1.2 Go type: even
//     those whose fields did not change (ADVERTISE, GWINFO) changed their
//     type octet.
//
// A gateway serving both on one port decides per sender: [DetectVersion]
// classifies the first datagram of a sender that has no connection yet,
// and after a CONNECT the connection's version decides. The 2.0 codec
// follows the 1.2 codec's conventions (framing, aliasing, errors, Clone,
// zero allocations for PUBLISH and the small acknowledgements) with two
// differences the draft asks for: reserved flag bits are an error
// (ErrReservedBits) instead of being ignored, and optional fields are
// present exactly when their Has... flag says so. The choices for the
// points the draft leaves open, and the Eclipse Paho deviations the codec
// tolerates, are in docs/mqttsn-2.md.
package snpacket
