package framing

import (
	"encoding/binary"
	"strings"

	"github.com/mochi-mqtt/server/v2/packets"
)

// This file holds the stateless checks the listener makes around mochi's
// decoders: structure checks before decoding (so the decoder never sees a
// packet it mishandles) and protocol checks after it. Checks that need
// session state (topic alias maximum, packet identifiers in use, receive
// maximum, a second CONNECT) belong to the session layer.

// MQTT 5 property identifiers (MQTT 5.0 section 2.2.2.2) with their value
// kinds.
const (
	propByte = iota + 1
	propUint16
	propUint32
	propVarint
	propString
	propBinary
	propStringPair
)

// propKind returns the value kind of property identifier id, or 0 if id is
// not a property.
func propKind(id byte) int {
	switch id {
	case 1, 23, 25, 36, 37, 40, 41, 42:
		return propByte
	case 19, 33, 34, 35:
		return propUint16
	case 2, 17, 24, 39:
		return propUint32
	case 11:
		return propVarint
	case 3, 8, 18, 21, 26, 28, 31:
		return propString
	case 9, 22:
		return propBinary
	case 38:
		return propStringPair
	default:
		return 0
	}
}

// checkConnectHeader checks a CONNECT's protocol name and level before the
// rest of it is decoded (a different version may lay it out differently) and
// returns the level: 3 for MQTT 3.1 ("MQIsdp"), 4 for MQTT 3.1.1 and 5 for
// MQTT 5.0 ("MQTT").
func checkConnectHeader(body []byte) (byte, *Error) {
	if len(body) < 2 {
		return 0, newError(0, 0, ErrMalformed, "protocol name: truncated")
	}
	n := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+n {
		return 0, newError(0, 0, ErrMalformed, "protocol name: truncated")
	}
	name := string(body[2 : 2+n])
	if name != "MQTT" && name != "MQIsdp" {
		return 0, newError(0, 0, ErrProtocolName, "%q", name)
	}
	if len(body) < 2+n+1 {
		return 0, newError(0, 0, ErrMalformed, "protocol level: truncated")
	}
	v := body[2+n]
	if (name == "MQIsdp" && v != 3) || (name == "MQTT" && v != 4 && v != 5) {
		return v, newError(0, 0, ErrUnsupportedVersion, "protocol %q level %d (Gannet serves MQIsdp 3, MQTT 4 and MQTT 5)", name, v)
	}
	return v, nil
}

// check makes the structure checks that must precede decoding. Type and
// Version of the returned error are filled in by the caller.
func check(pk *packets.Packet, b []byte) *Error {
	v5 := pk.ProtocolVersion == 5
	typ := pk.FixedHeader.Type
	switch typ {
	case packets.Connect:
		return checkConnect(b, pk.ProtocolVersion)
	case packets.Pingreq, packets.Pingresp:
		return wantLen(b, 0)
	case packets.Connack:
		if !v5 {
			return wantLen(b, 2)
		}
		return checkPropsToEnd(b, 2, typ)
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp:
		if !v5 {
			return wantLen(b, 2)
		}
		if len(b) < 2 {
			return newError(0, 0, ErrMalformed, "%d bytes, want at least 2", len(b))
		}
		if len(b) > 3 {
			return checkPropsToEnd(b, 3, typ)
		}
	case packets.Disconnect:
		if !v5 {
			return wantLen(b, 0)
		}
		if len(b) > 1 {
			return checkPropsToEnd(b, 1, typ)
		}
	case packets.Auth:
		if len(b) > 1 {
			return checkPropsToEnd(b, 1, typ)
		}
	case packets.Unsuback:
		if !v5 {
			return wantLen(b, 2)
		}
		_, err := checkProps(b, 2, typ)
		return err
	case packets.Suback, packets.Unsubscribe:
		if v5 {
			_, err := checkProps(b, 2, typ)
			return err
		}
	case packets.Subscribe:
		return checkSubscribe(b, v5)
	case packets.Publish:
		if !v5 || len(b) < 2 {
			return nil // mochi reports a missing topic
		}
		off := 2 + int(binary.BigEndian.Uint16(b))
		if pk.FixedHeader.Qos > 0 {
			off += 2
		}
		if off > len(b) {
			return nil // mochi reports the truncation
		}
		_, err := checkProps(b, off, typ)
		return err
	}
	return nil
}

// wantLen refuses a body that is not exactly n bytes.
func wantLen(b []byte, n int) *Error {
	if len(b) != n {
		return newError(0, 0, ErrMalformed, "%d bytes, want %d", len(b), n)
	}
	return nil
}

// checkConnect checks the connect flags and, for MQTT 5, the CONNECT and
// will property lists. The header was checked by checkConnectHeader, so the
// protocol name is "MQTT" or (MQTT 3.1) "MQIsdp" and the flags follow it
// and the level byte.
func checkConnect(b []byte, level byte) *Error {
	v5 := level == 5
	flagsAt := 2 + int(binary.BigEndian.Uint16(b)) + 1
	propsAt := flagsAt + 1 + 2
	if len(b) < propsAt {
		return newError(0, 0, ErrMalformed, "variable header: truncated")
	}
	flags := b[flagsAt]
	will, willQoS, willRetain := flags&0x04 != 0, (flags>>3)&0x03, flags&0x20 != 0
	switch {
	case flags&0x01 != 0:
		return newError(0, 0, ErrMalformed, "connect flags: reserved bit set") // [MQTT-3.1.2-3]
	case willQoS == 3:
		return newError(0, 0, ErrMalformed, "connect flags: will qos 3") // [MQTT-3.1.2-12]
	case !will && (willQoS != 0 || willRetain):
		return newError(0, 0, ErrMalformed, "connect flags: will qos or retain without will") // [MQTT-3.1.2-11] [MQTT-3.1.2-13]
	case level == 4 && flags&0x40 != 0 && flags&0x80 == 0:
		// MQTT 3.1.1 [MQTT-3.1.2-22]. MQTT 3.1 has no such rule; the
		// listener ignores a 3.1 password without a user name, as
		// Mosquitto does.
		return newError(0, 0, ErrProtocol, "connect flags: password without user name")
	}
	if !v5 {
		return nil
	}
	off, err := checkProps(b, propsAt, packets.Connect)
	if err != nil || !will {
		return err
	}
	if off+2 > len(b) {
		return nil // mochi reports the missing client identifier
	}
	off += 2 + int(binary.BigEndian.Uint16(b[off:]))
	if off > len(b) {
		return nil
	}
	_, err = checkProps(b, off, packets.WillProperties)
	return err
}

// checkSubscribe walks a SUBSCRIBE's topic filters and their options. It
// guards mochi's SubscribeDecode, which panics on an MQTT 5 filter without
// its options byte.
func checkSubscribe(b []byte, v5 bool) *Error {
	if len(b) < 2 {
		return newError(0, 0, ErrMalformed, "packet identifier: truncated")
	}
	off := 2
	if v5 {
		var err *Error
		if off, err = checkProps(b, off, packets.Subscribe); err != nil {
			return err
		}
	}
	for off < len(b) {
		if off+2 > len(b) {
			return newError(0, 0, ErrMalformed, "topic filter length: truncated")
		}
		off += 2 + int(binary.BigEndian.Uint16(b[off:]))
		if off >= len(b) {
			return newError(0, 0, ErrMalformed, "topic filter or its options: truncated")
		}
		opts := b[off]
		off++
		switch {
		case !v5 && opts&0xfc != 0:
			return newError(0, 0, ErrMalformed, "subscription options: reserved bits set 0x%02x", opts) // [MQTT-3-8.3-4]
		case v5 && opts&0xc0 != 0:
			return newError(0, 0, ErrMalformed, "subscription options: reserved bits set 0x%02x", opts) // [MQTT-3.8.3-5]
		case opts&0x03 == 3:
			return newError(0, 0, ErrMalformed, "subscription options: qos 3")
		case v5 && (opts>>4)&0x03 == 3:
			return newError(0, 0, ErrProtocol, "subscription options: retain handling 3")
		}
	}
	return nil
}

// checkPropsToEnd checks a property list at off that must end the packet.
func checkPropsToEnd(b []byte, off int, typ byte) *Error {
	end, err := checkProps(b, off, typ)
	if err != nil {
		return err
	}
	if end != len(b) {
		return newError(0, 0, ErrMalformed, "%d bytes after the properties", len(b)-end)
	}
	return nil
}

// checkProps walks the MQTT 5 property list that starts at b[off] and
// returns the offset just past it. It refuses a list that overruns its
// declared length or the packet, an unknown identifier, a property repeated
// where that is not allowed, and out-of-range values that mochi's decoder
// accepts (MQTT 5.0 section 3.x.2.x for each property). Whether a property
// may appear in this packet type is left to mochi's decoder.
func checkProps(b []byte, off int, typ byte) (int, *Error) {
	if off > len(b) {
		return 0, newError(0, 0, ErrMalformed, "%d bytes, want at least %d before the properties", len(b), off)
	}
	n, k, err := uvarint(b[off:])
	if err != nil {
		return 0, err
	}
	start, end := off+k, off+k+n
	if end > len(b) {
		return 0, newError(0, 0, ErrMalformed, "property length %d overruns the packet", n)
	}
	var seen uint64
	for i := start; i < end; {
		id := b[i]
		i++
		kind := propKind(id)
		if kind == 0 {
			return 0, newError(0, 0, ErrMalformed, "unknown property 0x%02x", id)
		}
		repeatable := id == packets.PropUser || (id == packets.PropSubscriptionIdentifier && typ == packets.Publish)
		if !repeatable && seen&(1<<id) != 0 {
			return 0, newError(0, 0, ErrProtocol, "property 0x%02x repeated", id)
		}
		seen |= 1 << id
		var val int
		switch kind {
		case propByte:
			if i+1 > end {
				return 0, propOverrun(id)
			}
			val = int(b[i])
			i++
			if val > 1 {
				return 0, newError(0, 0, ErrProtocol, "property 0x%02x value %d, want 0 or 1", id, val)
			}
		case propUint16:
			if i+2 > end {
				return 0, propOverrun(id)
			}
			val = int(binary.BigEndian.Uint16(b[i:]))
			i += 2
		case propUint32:
			if i+4 > end {
				return 0, propOverrun(id)
			}
			val = int(binary.BigEndian.Uint32(b[i:]))
			i += 4
		case propVarint:
			v, k, err := uvarint(b[i:end])
			if err != nil {
				return 0, err
			}
			val = v
			i += k
		case propString, propBinary:
			if i+2 > end {
				return 0, propOverrun(id)
			}
			i += 2 + int(binary.BigEndian.Uint16(b[i:]))
			val = 1
		case propStringPair:
			for range 2 {
				if i+2 > end {
					return 0, propOverrun(id)
				}
				i += 2 + int(binary.BigEndian.Uint16(b[i:]))
			}
			val = 1
		}
		if i > end {
			return 0, propOverrun(id)
		}
		switch id {
		case packets.PropSubscriptionIdentifier, packets.PropReceiveMaximum, packets.PropMaximumPacketSize, packets.PropTopicAlias:
			if val == 0 {
				return 0, newError(0, 0, ErrProtocol, "property 0x%02x value 0", id)
			}
		}
	}
	return end, nil
}

// propOverrun reports a property value that runs past its list.
func propOverrun(id byte) *Error {
	return newError(0, 0, ErrMalformed, "property 0x%02x overruns the property length", id)
}

// uvarint decodes a variable byte integer of at most four bytes in its
// shortest form [MQTT-1.5.5-1] and returns it with its length.
func uvarint(b []byte) (value, n int, err *Error) {
	shift := 0
	for n < 4 {
		if n >= len(b) {
			return 0, 0, newError(0, 0, ErrMalformed, "variable byte integer: truncated")
		}
		c := b[n]
		n++
		value |= int(c&0x7f) << shift
		if c&0x80 == 0 {
			if n > 1 && c == 0 {
				return 0, 0, newError(0, 0, ErrMalformed, "variable byte integer: encoding longer than necessary")
			}
			return value, n, nil
		}
		shift += 7
	}
	return 0, 0, newError(0, 0, ErrMalformed, "variable byte integer: more than 4 bytes")
}

// validate makes the stateless protocol checks after decoding.
func validate(pk *packets.Packet) *Error {
	if strings.ContainsAny(pk.Properties.ResponseTopic, "+#") || strings.ContainsAny(pk.Connect.WillProperties.ResponseTopic, "+#") {
		return newError(0, 0, ErrProtocol, "response topic has a wildcard") // [MQTT-3.3.2-14]
	}
	switch pk.FixedHeader.Type {
	case packets.Publish:
		switch {
		case pk.FixedHeader.Qos > 0 && pk.PacketID == 0:
			return newError(0, 0, ErrProtocol, "qos %d without packet identifier", pk.FixedHeader.Qos) // [MQTT-2.2.1-3]
		case strings.ContainsAny(pk.TopicName, "+#"):
			return newError(0, 0, ErrProtocol, "topic name %q has a wildcard", pk.TopicName) // [MQTT-3.3.2-2]
		case pk.TopicName == "" && (pk.ProtocolVersion != 5 || !pk.Properties.TopicAliasFlag):
			return newError(0, 0, ErrProtocol, "empty topic name without topic alias") // [MQTT-4.7.3-1] [MQTT-3.3.2-8]
		}
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp, packets.Suback, packets.Unsuback:
		if pk.PacketID == 0 {
			return newError(0, 0, ErrProtocol, "packet identifier 0") // [MQTT-2.2.1-3]
		}
	case packets.Subscribe, packets.Unsubscribe:
		if pk.PacketID == 0 {
			return newError(0, 0, ErrProtocol, "packet identifier 0") // [MQTT-2.2.1-3]
		}
		if len(pk.Filters) == 0 {
			return newError(0, 0, ErrProtocol, "no topic filters") // [MQTT-3.8.3-3] [MQTT-3.10.3-2]
		}
	}
	return nil
}
