package snpacket

// PingReq (PINGREQ, 0x16) checks that the peer is alive. A sleeping client
// that wakes to collect its buffered messages puts its ClientID in it;
// otherwise ClientID is nil.
type PingReq struct {
	ClientID []byte
}

// Type returns TypePingReq.
func (*PingReq) Type() MsgType { return TypePingReq }

// Len returns the wire length.
func (m *PingReq) Len() int { return frameLen(len(m.ClientID)) }

// AppendBinary appends the wire form of m to b.
func (m *PingReq) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypePingReq, len(m.ClientID))
	if err != nil {
		return b, err
	}
	return append(b, m.ClientID...), nil
}

// Clone returns a deep copy of m.
func (m *PingReq) Clone() Message { return &PingReq{ClientID: clone(m.ClientID)} }

func (m *PingReq) decode(body []byte) error {
	m.ClientID = rest(body)
	return nil
}
