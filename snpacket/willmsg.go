package snpacket

// WillMsg (WILLMSG, 0x09) carries the will message during CONNECT.
type WillMsg struct {
	// Message runs to the end of the datagram; it may be empty.
	Message []byte
}

// Type returns TypeWillMsg.
func (*WillMsg) Type() MsgType { return TypeWillMsg }

// Len returns the wire length.
func (m *WillMsg) Len() int { return frameLen(len(m.Message)) }

// AppendBinary appends the wire form of m to b.
func (m *WillMsg) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeWillMsg, len(m.Message))
	if err != nil {
		return b, err
	}
	return append(b, m.Message...), nil
}

// Clone returns a deep copy of m.
func (m *WillMsg) Clone() Message { return &WillMsg{Message: clone(m.Message)} }

func (m *WillMsg) decode(body []byte) error {
	m.Message = rest(body)
	return nil
}
