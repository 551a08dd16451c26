package framing

import (
	"bytes"
	"fmt"
	"io"

	"github.com/mochi-mqtt/server/v2/packets"
)

// keepBuffer is the largest encode buffer a Writer keeps between packets.
const keepBuffer = 64 << 10

// Writer encodes MQTT control packets with mochi's codec into one reused
// buffer and writes each packet to its stream with a single Write call.
//
// A Writer is used by one goroutine at a time.
type Writer struct {
	w   io.Writer
	buf bytes.Buffer
	max int
}

// NewWriter returns a Writer to w with no packet size limit beyond the
// protocol's.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, max: ProtocolMaxPacketSize}
}

// SetMaxPacketSize sets the largest packet the peer accepts (its MQTT 5
// Maximum Packet Size, whole packet). Zero or a value above the protocol's
// maximum means the protocol's maximum; negative values are refused.
func (w *Writer) SetMaxPacketSize(n int) error {
	if n < 0 {
		return fmt.Errorf("set max packet size: %d is negative", n)
	}
	if n == 0 || n > ProtocolMaxPacketSize {
		n = ProtocolMaxPacketSize
	}
	w.max = n
	return nil
}

// WritePacket encodes pk and writes it. It returns an error wrapping
// ErrPacketTooLarge, and writes nothing, if the encoded packet exceeds the
// peer's maximum packet size; the caller drops the packet (for a PUBLISH,
// MQTT 5 says to act as if it had been delivered [MQTT-3.1.2-25]).
//
// Encoding follows Encode; pk's FixedHeader.Remaining is overwritten.
func (w *Writer) WritePacket(pk *packets.Packet) error {
	w.buf.Reset()
	if w.buf.Cap() > keepBuffer {
		w.buf = bytes.Buffer{}
	}
	if err := Encode(&w.buf, pk); err != nil {
		return fmt.Errorf("write packet: %w", err)
	}
	if w.buf.Len() > w.max {
		return fmt.Errorf("write %s packet: %d bytes, peer maximum %d: %w",
			TypeName(pk.FixedHeader.Type), w.buf.Len(), w.max, ErrPacketTooLarge)
	}
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		return fmt.Errorf("write %s packet: %w", TypeName(pk.FixedHeader.Type), err)
	}
	return nil
}

// Encode appends the wire form of pk to buf using mochi's encoder for
// pk.FixedHeader.Type and pk.ProtocolVersion. It sets the fixed-header flags
// the specification fixes (0b0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE,
// 0 for every other type but PUBLISH) and sets FixedHeader.Remaining.
//
// mochi's encoder honours pk.Mods: MQTT 5 Response Topic, Correlation Data
// and Response Information are written only when Mods.AllowResponseInfo is
// set, and Reason String and User Properties are left out when
// Mods.DisallowProblemInfo is set or they would exceed Mods.MaxSize. When
// forwarding a PUBLISH set Mods.AllowResponseInfo, since the server must pass
// Response Topic and Correlation Data on unaltered [MQTT-3.3.2-15]
// [MQTT-3.3.2-16].
func Encode(buf *bytes.Buffer, pk *packets.Packet) error {
	fh := &pk.FixedHeader
	if fh.Type != packets.Publish {
		fh.Dup, fh.Retain, fh.Qos = false, false, 0
		if fh.Type == packets.Pubrel || fh.Type == packets.Subscribe || fh.Type == packets.Unsubscribe {
			fh.Qos = 1
		}
	}
	if fh.Type == packets.Publish && fh.Qos > 2 {
		return fmt.Errorf("encode PUBLISH packet: qos %d: %w", fh.Qos, ErrMalformed)
	}
	start := buf.Len()
	var err error
	switch fh.Type {
	case packets.Connect:
		err = pk.ConnectEncode(buf)
	case packets.Connack:
		err = pk.ConnackEncode(buf)
	case packets.Publish:
		if pk.ProtocolVersion != 5 || noPublishProperties(&pk.Properties) {
			err = encodePublish(buf, pk)
			break
		}
		err = pk.PublishEncode(buf)
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp:
		err = encodeAck(buf, pk)
	case packets.Subscribe:
		err = pk.SubscribeEncode(buf)
	case packets.Suback:
		err = pk.SubackEncode(buf)
	case packets.Unsubscribe:
		err = pk.UnsubscribeEncode(buf)
	case packets.Unsuback:
		err = pk.UnsubackEncode(buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(buf)
	case packets.Pingresp:
		err = pk.PingrespEncode(buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(buf)
	case packets.Auth:
		err = pk.AuthEncode(buf)
	default:
		return fmt.Errorf("encode packet: type %d: %w", fh.Type, ErrMalformed)
	}
	if err != nil {
		buf.Truncate(start)
		return fmt.Errorf("encode %s packet: %w", TypeName(fh.Type), err)
	}
	if fh.Remaining > ProtocolMaxPacketSize-5 {
		buf.Truncate(start)
		return fmt.Errorf("encode %s packet: remaining length %d: %w", TypeName(fh.Type), fh.Remaining, ErrPacketTooLarge)
	}
	return nil
}

// noPublishProperties reports whether p holds none of the properties a
// PUBLISH can carry, so that mochi would write an empty property list
// (it would also for some values this refuses, such as a Topic Alias flag
// without an alias; those take mochi's path).
func noPublishProperties(p *packets.Properties) bool {
	return !p.PayloadFormatFlag && p.MessageExpiryInterval == 0 && p.ContentType == "" &&
		p.ResponseTopic == "" && len(p.CorrelationData) == 0 && len(p.SubscriptionIdentifier) == 0 &&
		!p.TopicAliasFlag && p.TopicAlias == 0 && len(p.User) == 0
}

// encodePublish encodes a PUBLISH without properties, as mochi's
// PublishEncode does, but without looking up every property kind in
// mochi's table of which packet may carry which (a dozen map lookups per
// packet: a tenth of the embedded broker's CPU per message delivered).
func encodePublish(buf *bytes.Buffer, pk *packets.Packet) error {
	fh := &pk.FixedHeader
	if fh.Qos > 0 && pk.PacketID == 0 {
		return packets.ErrProtocolViolationNoPacketID // [MQTT-2.2.1-2]
	}
	fh.Remaining = 2 + len(pk.TopicName) + len(pk.Payload)
	if fh.Qos > 0 {
		fh.Remaining += 2
	}
	if pk.ProtocolVersion == 5 {
		fh.Remaining++ // the empty property list
	}
	fh.Encode(buf)
	buf.WriteByte(byte(len(pk.TopicName) >> 8))
	buf.WriteByte(byte(len(pk.TopicName)))
	buf.WriteString(pk.TopicName) // [MQTT-3.3.2-1]
	if fh.Qos > 0 {
		buf.WriteByte(byte(pk.PacketID >> 8))
		buf.WriteByte(byte(pk.PacketID))
	}
	if pk.ProtocolVersion == 5 {
		buf.WriteByte(0)
	}
	buf.Write(pk.Payload)
	return nil
}

// encodeAck encodes a PUBACK, PUBREC, PUBREL or PUBCOMP. mochi's encoder
// drops an MQTT 5 reason code below 0x80 when there are no properties, which
// turns 0x10 (no matching subscribers) into 0x00 (success); this writes the
// reason code whenever it is not 0x00 [MQTT-3.4.2.1].
func encodeAck(buf *bytes.Buffer, pk *packets.Packet) error {
	if pk.ProtocolVersion != 5 {
		pk.FixedHeader.Remaining = 2
		pk.FixedHeader.Encode(buf)
		buf.WriteByte(byte(pk.PacketID >> 8))
		buf.WriteByte(byte(pk.PacketID))
		return nil
	}
	// Reason String and User Properties are the only properties of these
	// packets; without them skip mochi's property encoder (a map lookup per
	// property and an allocation) on this hot path.
	var props bytes.Buffer
	if pk.Properties.ReasonString != "" || len(pk.Properties.User) > 0 {
		pk.Properties.Encode(pk.FixedHeader.Type, pk.Mods, &props, 3)
	}
	n := 2
	switch {
	case props.Len() > 1:
		n += 1 + props.Len()
	case pk.ReasonCode != 0:
		n++
	}
	pk.FixedHeader.Remaining = n
	pk.FixedHeader.Encode(buf)
	buf.WriteByte(byte(pk.PacketID >> 8))
	buf.WriteByte(byte(pk.PacketID))
	if n > 2 {
		buf.WriteByte(pk.ReasonCode)
	}
	if n > 3 {
		buf.Write(props.Bytes())
	}
	return nil
}
