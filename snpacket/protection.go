package snpacket

// ProtectionEncapsulation (MQTT-SN 2.0 Protection Encapsulation, 0xFF)
// authenticates, and may encrypt, one packet (an optional feature of the
// draft). The codec decodes the header; Protected holds the protected
// packet followed by its authentication tag, which only the security layer
// can split, since the tag length may depend on the Protection Scheme.
type ProtectionEncapsulation struct {
	// TagLength is the authentication tag length code, Flags b7-4: 0
	// provider defined, 1 the scheme's nominal size, 4-15 16×code bits.
	TagLength uint8
	// Scheme is the Protection Scheme octet (0x00 HMAC-SHA256, ...).
	Scheme uint8
	// SenderID identifies the sender's key.
	SenderID [8]byte
	Random   [4]byte
	// CryptoMaterial is 0, 2, 4 or 12 octets.
	CryptoMaterial []byte
	// Counter is the monotonic counter: 0, 2 or 4 octets.
	Counter []byte
	// Protected is the protected packet and the authentication tag,
	// running to the end of the datagram; at least two octets.
	Protected []byte
}

// Type returns PacketProtection.
func (*ProtectionEncapsulation) Type() PacketType { return PacketProtection }

func (m *ProtectionEncapsulation) bodyLen() int {
	return 14 + len(m.CryptoMaterial) + len(m.Counter) + len(m.Protected)
}

// Len returns the wire length.
func (m *ProtectionEncapsulation) Len() int { return frameLen(m.bodyLen()) }

// cryptoLens and counterLens map the Flags length codes to octets; -1 is
// reserved.
var (
	cryptoLens  = [4]int{0, 2, 4, 12}
	counterLens = [4]int{0, 2, 4, -1}
)

func lenCode(table [4]int, n int) (byte, bool) {
	for c, l := range table {
		if l == n {
			return byte(c), true
		}
	}
	return 0, false
}

// AppendBinary appends the wire form of m to b.
func (m *ProtectionEncapsulation) AppendBinary(b []byte) ([]byte, error) {
	const t = PacketProtection
	cc, ok1 := lenCode(cryptoLens, len(m.CryptoMaterial))
	mc, ok2 := lenCode(counterLens, len(m.Counter))
	switch {
	case m.TagLength > 15:
		return b, encodeErr2(t, "Flags", ErrInvalidField)
	case !ok1:
		return b, encodeErr2(t, "CryptoMaterial", ErrInvalidField)
	case !ok2:
		return b, encodeErr2(t, "MonotonicCounter", ErrInvalidField)
	case len(m.Protected) < 2:
		return b, encodeErr2(t, "ProtectedPacket", ErrEmptyField)
	}
	b, err := appendHeaderV2(b, t, m.bodyLen())
	if err != nil {
		return b, err
	}
	b = append(b, m.TagLength<<4|cc<<2|mc, m.Scheme)
	b = append(append(b, m.SenderID[:]...), m.Random[:]...)
	b = append(append(b, m.CryptoMaterial...), m.Counter...)
	return append(b, m.Protected...), nil
}

// Clone returns a deep copy of m.
func (m *ProtectionEncapsulation) Clone() MessageV2 {
	c := *m
	c.CryptoMaterial = clone(m.CryptoMaterial)
	c.Counter = clone(m.Counter)
	c.Protected = clone(m.Protected)
	return &c
}

// decode is not used: see decodeProtection.
func (m *ProtectionEncapsulation) decode([]byte) error {
	return decodeErr2(PacketProtection, "", ErrNestedEncapsulation)
}

func decodeProtection(body []byte, d *DecoderV2) (MessageV2, error) {
	const t = PacketProtection
	if len(body) < 14 {
		return nil, decodeErr2(t, "Random", ErrShortBuffer)
	}
	flags := body[0]
	cl, ml := cryptoLens[flags>>2&3], counterLens[flags&3]
	if ml < 0 {
		return nil, decodeErr2(t, "Flags", ErrReservedBits)
	}
	p := body[14:]
	if len(p) < cl+ml+2 {
		return nil, decodeErr2(t, "ProtectedPacket", ErrShortBuffer)
	}
	var m *ProtectionEncapsulation
	if d != nil {
		m = &d.prot
	} else {
		m = new(ProtectionEncapsulation)
	}
	*m = ProtectionEncapsulation{
		TagLength: flags >> 4, Scheme: body[1],
		CryptoMaterial: rest(p[:cl]), Counter: rest(p[cl : cl+ml]), Protected: p[cl+ml:],
	}
	copy(m.SenderID[:], body[2:10])
	copy(m.Random[:], body[10:14])
	return m, nil
}
