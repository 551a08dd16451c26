package snpacket

// Connack (CONNACK, 0x05) answers a CONNECT.
type Connack struct {
	ReturnCode ReturnCode
}

// Type returns TypeConnack.
func (*Connack) Type() MsgType { return TypeConnack }

// Len returns the wire length.
func (*Connack) Len() int { return frameLen(1) }

// AppendBinary appends the wire form of m to b.
func (m *Connack) AppendBinary(b []byte) ([]byte, error) {
	return appendReturnCode(b, TypeConnack, m.ReturnCode)
}

// Clone returns a copy of m.
func (m *Connack) Clone() Message { c := *m; return &c }

func (m *Connack) decode(body []byte) (err error) {
	m.ReturnCode, err = decodeReturnCode(TypeConnack, body)
	return err
}
