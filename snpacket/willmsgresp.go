package snpacket

// WillMsgResp (WILLMSGRESP, 0x1D) answers a WILLMSGUPD.
type WillMsgResp struct {
	ReturnCode ReturnCode
}

// Type returns TypeWillMsgResp.
func (*WillMsgResp) Type() MsgType { return TypeWillMsgResp }

// Len returns the wire length.
func (*WillMsgResp) Len() int { return frameLen(1) }

// AppendBinary appends the wire form of m to b.
func (m *WillMsgResp) AppendBinary(b []byte) ([]byte, error) {
	return appendReturnCode(b, TypeWillMsgResp, m.ReturnCode)
}

// Clone returns a copy of m.
func (m *WillMsgResp) Clone() Message { c := *m; return &c }

func (m *WillMsgResp) decode(body []byte) (err error) {
	m.ReturnCode, err = decodeReturnCode(TypeWillMsgResp, body)
	return err
}
