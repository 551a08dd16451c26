package snpacket

// WillTopicResp (WILLTOPICRESP, 0x1B) answers a WILLTOPICUPD.
type WillTopicResp struct {
	ReturnCode ReturnCode
}

// Type returns TypeWillTopicResp.
func (*WillTopicResp) Type() MsgType { return TypeWillTopicResp }

// Len returns the wire length.
func (*WillTopicResp) Len() int { return frameLen(1) }

// AppendBinary appends the wire form of m to b.
func (m *WillTopicResp) AppendBinary(b []byte) ([]byte, error) {
	return appendReturnCode(b, TypeWillTopicResp, m.ReturnCode)
}

// Clone returns a copy of m.
func (m *WillTopicResp) Clone() Message { c := *m; return &c }

func (m *WillTopicResp) decode(body []byte) (err error) {
	m.ReturnCode, err = decodeReturnCode(TypeWillTopicResp, body)
	return err
}
