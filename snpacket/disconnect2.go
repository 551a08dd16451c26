package snpacket

// DISCONNECT Flags of MQTT-SN 2.0.
const (
	discPacketID      = 0x01
	discSessionExpiry = 0x02
	discReasonCode    = 0x04
	discReserved      = 0xF8
)

// DisconnectV2 (MQTT-SN 2.0 DISCONNECT, 0x0E) ends a virtual connection,
// from either side; it is never answered. Sleep moved to [SleepReq].
// Optional fields are present exactly when their Has... flag is set.
//
// The draft's minimum length is 3 (the Flags octet). Eclipse Paho's 2.0
// client tools send the 1.2 form `02 0E` without it; Decode accepts that as
// a DISCONNECT with Short set and no fields, so the gateway can choose (see
// docs/mqttsn-2.md). AppendBinary writes the short form only when Short is
// set, and never with a field present.
type DisconnectV2 struct {
	// Short: the packet had no Flags octet (Eclipse Paho's form).
	Short bool

	HasPacketID bool
	// PacketID points at the offending packet (server, with
	// NoVirtualConnection).
	PacketID uint16

	HasSessionExpiry bool
	// SessionExpiry, from the client, replaces the CONNECT's.
	SessionExpiry uint32

	HasReasonCode bool
	// ReasonCode; absent means Success (normal disconnection, will
	// discarded).
	ReasonCode ReasonCode

	// ReasonString runs to the end of the packet.
	ReasonString []byte
}

// Type returns PacketDisconnect.
func (*DisconnectV2) Type() PacketType { return PacketDisconnect }

func (m *DisconnectV2) bodyLen() int {
	if m.Short {
		return 0
	}
	n := 1 + len(m.ReasonString)
	if m.HasPacketID {
		n += 2
	}
	if m.HasSessionExpiry {
		n += 4
	}
	if m.HasReasonCode {
		n++
	}
	return n
}

// Len returns the wire length.
func (m *DisconnectV2) Len() int { return frameLen(m.bodyLen()) }

// AppendBinary appends the wire form of m to b.
func (m *DisconnectV2) AppendBinary(b []byte) ([]byte, error) {
	if m.Short && (m.HasPacketID || m.HasSessionExpiry || m.HasReasonCode || len(m.ReasonString) > 0) {
		return b, encodeErr2(PacketDisconnect, "Flags", ErrInvalidField)
	}
	b, err := appendHeaderV2(b, PacketDisconnect, m.bodyLen())
	if err != nil || m.Short {
		return b, err
	}
	var flags byte
	if m.HasPacketID {
		flags |= discPacketID
	}
	if m.HasSessionExpiry {
		flags |= discSessionExpiry
	}
	if m.HasReasonCode {
		flags |= discReasonCode
	}
	b = append(b, flags)
	if m.HasPacketID {
		b = appendU16(b, m.PacketID)
	}
	if m.HasSessionExpiry {
		b = appendU32(b, m.SessionExpiry)
	}
	if m.HasReasonCode {
		b = append(b, byte(m.ReasonCode))
	}
	return append(b, m.ReasonString...), nil
}

// Clone returns a deep copy of m.
func (m *DisconnectV2) Clone() MessageV2 {
	c := *m
	c.ReasonString = clone(m.ReasonString)
	return &c
}

func (m *DisconnectV2) decode(body []byte) error {
	const t = PacketDisconnect
	if len(body) == 0 {
		*m = DisconnectV2{Short: true}
		return nil
	}
	flags := body[0]
	if flags&discReserved != 0 {
		return decodeErr2(t, "Flags", ErrReservedBits)
	}
	d := DisconnectV2{
		HasPacketID:      flags&discPacketID != 0,
		HasSessionExpiry: flags&discSessionExpiry != 0,
		HasReasonCode:    flags&discReasonCode != 0,
	}
	p := body[1:]
	if d.HasPacketID {
		if len(p) < 2 {
			return decodeErr2(t, "PacketId", ErrShortBuffer)
		}
		d.PacketID, p = u16(p), p[2:]
	}
	if d.HasSessionExpiry {
		if len(p) < 4 {
			return decodeErr2(t, "SessionExpiryInterval", ErrShortBuffer)
		}
		d.SessionExpiry, p = u32(p), p[4:]
	}
	if d.HasReasonCode {
		if len(p) < 1 {
			return decodeErr2(t, "ReasonCode", ErrShortBuffer)
		}
		d.ReasonCode, p = ReasonCode(p[0]), p[1:]
	}
	d.ReasonString = rest(p)
	*m = d
	return nil
}
