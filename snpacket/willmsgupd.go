package snpacket

// WillMsgUpd (WILLMSGUPD, 0x1C) replaces the will message of a connected client.
type WillMsgUpd struct {
	// Message runs to the end of the datagram; it may be empty.
	Message []byte
}

// Type returns TypeWillMsgUpd.
func (*WillMsgUpd) Type() MsgType { return TypeWillMsgUpd }

// Len returns the wire length.
func (m *WillMsgUpd) Len() int { return frameLen(len(m.Message)) }

// AppendBinary appends the wire form of m to b.
func (m *WillMsgUpd) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeWillMsgUpd, len(m.Message))
	if err != nil {
		return b, err
	}
	return append(b, m.Message...), nil
}

// Clone returns a deep copy of m.
func (m *WillMsgUpd) Clone() Message { return &WillMsgUpd{Message: clone(m.Message)} }

func (m *WillMsgUpd) decode(body []byte) error {
	m.Message = rest(body)
	return nil
}
