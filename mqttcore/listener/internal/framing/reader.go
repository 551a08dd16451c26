package framing

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/mochi-mqtt/server/v2/packets"
)

const (
	// readBufferSize is the size of the bufio.Reader a Reader wraps its
	// stream in.
	readBufferSize = 4096
	// growChunk is how much of a body a Reader allocates before the bytes
	// arrive; larger bodies grow as they are read.
	growChunk = 64 << 10
)

// Reader reads MQTT control packets from a byte stream. It does its own
// framing and hands each complete packet to mochi's codec.
//
// A Reader is used by one goroutine at a time. After ReadPacket returns an
// error the stream is out of step; every later call returns the same error.
type Reader struct {
	br    *bufio.Reader
	max   int
	err   error
	small [smallBody]byte // scratch for bodies nothing can alias (see readBody)
}

// smallBody is the largest acknowledgement or DISCONNECT body read into
// the Reader's scratch array instead of a buffer of its own: a packet id, a
// reason code and a property list length hold no string or byte field
// that a decoded packet could alias (the shortest property with one takes
// three more bytes).
const smallBody = 4

// NewReader returns a Reader over r with the limits cfg. It reports an error
// if cfg does not validate.
func NewReader(r io.Reader, cfg Limits) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new reader: %w", err)
	}
	return &Reader{br: bufio.NewReaderSize(r, readBufferSize), max: cfg.maxPacketSize()}, nil
}

// ReadPacket reads and decodes the next packet.
//
// version is the protocol version negotiated on the connection: 3 for MQTT
// 3.1, 4 for MQTT 3.1.1, 5 for MQTT 5.0, or 0 before a CONNECT has been accepted, in which
// case only a CONNECT is accepted [MQTT-3.1.0-1]. A CONNECT is always decoded
// with the version it carries, and its protocol name and version are checked
// before the rest of it is decoded.
//
// It returns io.EOF, unwrapped, when the stream ends cleanly between two
// packets; an *Error wrapping io.ErrUnexpectedEOF (reason: malformed) when it
// ends inside one; other I/O errors wrapped with %w and no reason code; and
// an *Error with a reason code for a packet it refuses (see Reason and
// CloseResponse).
//
// A CONNECT read with version 3, 4 or 5 (a second CONNECT) is returned like any
// other packet; refusing it is the session layer's job [MQTT-3.1.0-2].
//
// The returned packet's byte slices and strings alias a buffer allocated for
// this packet alone and never reused.
func (r *Reader) ReadPacket(version byte) (packets.Packet, error) {
	if r.err != nil {
		return packets.Packet{}, r.err
	}
	pk, err := r.readPacket(version)
	if err != nil {
		r.err = err
	}
	return pk, err
}

func (r *Reader) readPacket(version byte) (packets.Packet, error) {
	if version != 0 && version != 3 && version != 4 && version != 5 {
		return packets.Packet{}, fmt.Errorf("read packet: protocol version argument %d, want 0, 3, 4 or 5", version)
	}
	hb, err := r.br.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return packets.Packet{}, io.EOF
		}
		return packets.Packet{}, fmt.Errorf("read packet: fixed header: %w", err)
	}
	typ := hb >> 4

	remaining, lenBytes, err := r.readRemainingLength()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return packets.Packet{}, truncated(typ, version, "remaining length")
		}
		var e *Error
		if errors.As(err, &e) {
			e.Type, e.Version = typ, version
			return packets.Packet{}, e
		}
		return packets.Packet{}, fmt.Errorf("read %s packet: remaining length: %w", TypeName(typ), err)
	}

	if size := 1 + lenBytes + remaining; size > r.max {
		v := version
		if typ == packets.Connect {
			v = r.peekConnectVersion(remaining)
		}
		return packets.Packet{}, newError(typ, v, ErrPacketTooLarge, "%d bytes, maximum %d", size, r.max)
	}

	// Flags and type are checked before the body is read: a packet type or
	// flag combination that cannot be valid closes the connection at once.
	if typ == packets.Reserved {
		return packets.Packet{}, newError(typ, version, ErrMalformed, "reserved packet type 0")
	}
	if version == 0 && typ != packets.Connect {
		return packets.Packet{}, newError(typ, version, ErrProtocol, "first packet is %s, not CONNECT", TypeName(typ))
	}
	if (version == 3 || version == 4) && typ == packets.Auth {
		return packets.Packet{}, newError(typ, version, ErrMalformed, "packet type 15 is reserved before MQTT 5")
	}
	pk := packets.Packet{ProtocolVersion: version}
	if err := pk.FixedHeader.Decode(hb); err != nil {
		if errors.Is(err, packets.ErrProtocolViolationQosOutOfRange) {
			// [MQTT-3.3.1-4]: both QoS bits set is a malformed packet.
			return packets.Packet{}, newError(typ, version, ErrMalformed, "publish qos 3")
		}
		return packets.Packet{}, codecError(typ, version, err)
	}
	pk.FixedHeader.Remaining = remaining

	body, err := r.readBody(typ, remaining)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			v := version
			if typ == packets.Connect {
				// A truncated MQTT 5 CONNECT gets CONNACK 0x81 when its
				// level byte arrived [MQTT-4.13.1-1].
				v = connectLevel(body)
			}
			return packets.Packet{}, truncated(typ, v, fmt.Sprintf("body: %d of %d bytes", len(body), remaining))
		}
		return packets.Packet{}, fmt.Errorf("read %s packet: body: %w", TypeName(typ), err)
	}

	if typ == packets.Connect {
		v, err := checkConnectHeader(body)
		if err != nil {
			err.Type, err.Version = typ, v
			return packets.Packet{}, err
		}
		pk.ProtocolVersion = v
	}
	if err := check(&pk, body); err != nil {
		err.Type, err.Version = typ, pk.ProtocolVersion
		return packets.Packet{}, err
	}
	if err := decodeBody(&pk, body); err != nil {
		return packets.Packet{}, codecError(typ, pk.ProtocolVersion, err)
	}
	if typ == packets.Disconnect && len(body) == 1 {
		// mochi reads an MQTT 5 DISCONNECT's reason code only when
		// properties follow it, losing a lone one such as 0x04 (disconnect
		// with will message) [MQTT-3.14.2.1].
		pk.ReasonCode = body[0]
	}
	if err := validate(&pk); err != nil {
		err.Type, err.Version = typ, pk.ProtocolVersion
		return packets.Packet{}, err
	}
	return pk, nil
}

// readRemainingLength reads the Remaining Length variable byte integer
// (MQTT 5.0 section 1.5.5). It refuses more than four bytes and encodings
// longer than necessary [MQTT-1.5.5-1].
func (r *Reader) readRemainingLength() (value, n int, err error) {
	shift := 0
	for n < 4 {
		b, err := r.br.ReadByte()
		if err != nil {
			return 0, n, err
		}
		n++
		value |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			if n > 1 && b == 0 {
				return 0, n, newError(0, 0, ErrMalformed, "remaining length: %d-byte encoding longer than necessary", n)
			}
			return value, n, nil
		}
		shift += 7
	}
	return 0, n, newError(0, 0, ErrMalformed, "remaining length: more than 4 bytes")
}

// readBody reads the body (n bytes) of a packet of type typ into a buffer
// of its own. Bodies up to growChunk are allocated at once; larger ones
// grow as bytes arrive, so the memory a peer can claim is bounded by what
// it sends. The one exception: a PUBACK, PUBREC, PUBREL, PUBCOMP or
// DISCONNECT body of at most smallBody bytes is read into the Reader's
// scratch array, reused by the next packet; nothing decoded from it aliases
// it, and every QoS 1/2 delivery's acknowledgement is then read without an
// allocation.
func (r *Reader) readBody(typ byte, n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if n <= smallBody {
		switch typ {
		case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp, packets.Disconnect:
			got, err := io.ReadFull(r.br, r.small[:n])
			return r.small[:got], err
		}
	}
	if n <= growChunk {
		buf := make([]byte, n)
		got, err := io.ReadFull(r.br, buf)
		return buf[:got], err
	}
	buf := make([]byte, 0, growChunk)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			next := make([]byte, len(buf), min(2*cap(buf), n))
			copy(next, buf)
			buf = next
		}
		got, err := io.ReadFull(r.br, buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+got]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// peekConnectVersion returns the protocol level of an oversized CONNECT
// without consuming or allocating its body, so that an MQTT 5 client can be
// told "packet too large" in a CONNACK. It returns 0 if the bytes are not an
// MQTT CONNECT header or do not arrive.
func (r *Reader) peekConnectVersion(remaining int) byte {
	const hdr = 2 + 4 + 1 // length, "MQTT", level
	if remaining < hdr {
		return 0
	}
	b, err := r.br.Peek(hdr)
	if err != nil {
		return 0
	}
	return connectLevel(b)
}

// connectLevel returns the protocol level (4 or 5) from the start of a
// CONNECT body, or 0 if b is too short or is not an MQTT CONNECT header.
func connectLevel(b []byte) byte {
	if len(b) < 7 || b[0] != 0 || b[1] != 4 || string(b[2:6]) != "MQTT" {
		return 0
	}
	if b[6] == 4 || b[6] == 5 {
		return b[6]
	}
	return 0
}

// decodeBody hands the body to mochi's decoder for the packet's type.
//
// The deferred recover is a last resort, not the way known codec bugs are
// handled: those are rejected by check before this is called. It keeps a
// new codec panic from taking the process down with it; the fuzz target
// fails on errDecoderPanic so such a panic is found and fixed properly.
func decodeBody(pk *packets.Packet, body []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errDecoderPanic, p)
		}
	}()
	if pk.FixedHeader.Type == packets.Auth && len(body) <= 1 {
		// mochi's AuthDecode wants a reason code and a property length;
		// MQTT 5 lets both be left out (reason 0x00) or the property length
		// alone [MQTT-3.15.2.1].
		if len(body) == 1 {
			pk.ReasonCode = body[0]
		}
		return nil
	}
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return pk.ConnectDecode(body)
	case packets.Connack:
		return pk.ConnackDecode(body)
	case packets.Publish:
		return pk.PublishDecode(body)
	case packets.Puback:
		return pk.PubackDecode(body)
	case packets.Pubrec:
		return pk.PubrecDecode(body)
	case packets.Pubrel:
		return pk.PubrelDecode(body)
	case packets.Pubcomp:
		return pk.PubcompDecode(body)
	case packets.Subscribe:
		return pk.SubscribeDecode(body)
	case packets.Suback:
		return pk.SubackDecode(body)
	case packets.Unsubscribe:
		return pk.UnsubscribeDecode(body)
	case packets.Unsuback:
		return pk.UnsubackDecode(body)
	case packets.Pingreq:
		return pk.PingreqDecode(body)
	case packets.Pingresp:
		return pk.PingrespDecode(body)
	case packets.Disconnect:
		return pk.DisconnectDecode(body)
	case packets.Auth:
		return pk.AuthDecode(body)
	default:
		return fmt.Errorf("packet type %d: %w", pk.FixedHeader.Type, ErrMalformed)
	}
}

// truncated reports a stream that ended inside a packet. The error wraps
// both ErrMalformed and io.ErrUnexpectedEOF.
func truncated(typ, version byte, where string) *Error {
	return &Error{Type: typ, Version: version, Reason: ReasonMalformedPacket,
		Err: fmt.Errorf("%w: %s: %w", ErrMalformed, where, io.ErrUnexpectedEOF)}
}
