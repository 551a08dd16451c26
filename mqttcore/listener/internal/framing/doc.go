// Package framing is the framing layer of Gannet's MQTT listener
// (mqttcore/listener), internal to it. It reads MQTT control packets off a
// byte stream, enforces the maximum packet size before allocating, and
// hands complete packets to the codec of
// github.com/mochi-mqtt/server/v2/packets; it encodes outgoing packets into
// a reused buffer; and it maps read errors to the MQTT reason code, CONNACK
// or DISCONNECT the listener sends before closing.
//
// # What it owns and what it must not import
//
// The package owns framing only: the fixed header, the Remaining Length
// variable byte integer, the size limit, a few stateless checks the codec
// does not make (see checks.go) and the mapping from errors to reason codes.
// Session state (keep alive, topic aliases, packet identifiers in flight,
// "the first packet must be CONNECT" bookkeeping beyond the protocol version
// argument) belongs to the listener (package mqttcore/listener, its only
// importer). The package imports only the standard library and mochi's
// packets codec; it never imports mqttcore, the gateway or anything
// MQTT-SN, it never logs and it holds no package-level mutable state.
//
// # Goroutines and buffers
//
// The package starts no goroutines. A Reader and a Writer each belong to
// one goroutine at a time (one connection's read loop and write loop).
//
// Each packet returned by Reader.ReadPacket owns a freshly allocated body
// buffer of exactly the packet's size: mochi's decoders make the packet's
// byte slices (Payload, Username, Password, ...) and its strings (TopicName,
// ClientIdentifier, filters, ...) alias that buffer without copying, so the
// buffer is never reused and the packet stays valid for as long as it is
// referenced. That costs one allocation per packet with a body; it is the
// price of strings that never change under their holder. The exception is
// an acknowledgement (PUBACK, PUBREC, PUBREL, PUBCOMP) or DISCONNECT body
// of at most four bytes, which holds no string or byte field: it is read
// into a scratch array in the Reader, reused by the next packet, so the
// acknowledgement of every QoS 1/2 delivery costs no allocation. Bodies above
// 64 KiB are grown as bytes arrive, so a forged Remaining Length below the
// maximum packet size costs at most 64 KiB until the peer actually sends
// the bytes.
//
// A Writer encodes into one buffer that it reuses from packet to packet and
// drops after an unusually large packet so an idle connection does not pin
// it.
//
// # Codec findings
//
// mochi's decoders are used as they are, with guards in front of them for
// the cases where they misbehave (each is covered by a test case):
//
//   - SubscribeDecode indexes past the end of the packet when an MQTT 5
//     SUBSCRIBE ends right after a topic filter without its options byte and
//     panics; checkSubscribe rejects such packets as malformed first.
//   - ConnectValidate refuses a will with an empty payload, which the
//     specification allows; this package does its own stateless CONNECT
//     checks. MQTT 3.1 ("MQIsdp", level 3) is decoded like MQTT 3.1.1: its
//     packets have the same layout.
//   - FixedHeader.Decode reports a PUBLISH with QoS 3 as a protocol error;
//     the specification calls it malformed [MQTT-3.3.1-4], and so do we.
//   - The property decoder accepts a property that runs past the declared
//     property length, and property values outside their ranges (for
//     example a Subscription Identifier of 0); checkProps walks the
//     property list first and rejects both.
//   - DisconnectDecode ignores the reason code of an MQTT 5 DISCONNECT that
//     has no properties (a one-byte body), so 0x04 "disconnect with will
//     message" read as 0x00; readPacket sets it.
//   - AuthDecode refuses an AUTH with an empty or one-byte body, which MQTT 5
//     allows; decodeBody handles those itself.
//   - The acknowledgement encoder drops an MQTT 5 reason code below 0x80
//     when there are no properties (0x10 "no matching subscribers" is sent
//     as success); Encode writes PUBACK, PUBREC, PUBREL and PUBCOMP itself.
//   - The property encoder writes Response Topic, Correlation Data and
//     Response Information only when Mods.AllowResponseInfo is set (see
//     Encode).
//   - The variable byte integer decoder (DecodeLength) accepts encodings
//     longer than four bytes; this package reads the Remaining Length
//     itself and checkProps reads the property ones.
//
// As a last resort, a panic inside mochi's decoder is recovered in
// decodeBody and reported as a malformed packet wrapping errDecoderPanic, so
// one bad packet closes one connection and never the process. The fuzz
// target fails on any such recovered panic, so a new one is found, guarded
// against explicitly and written down here rather than silently absorbed.
package framing
