package snpacket

// WillTopic (WILLTOPIC, 0x07) carries the will topic and its QoS and retain
// flag during CONNECT. The empty form (a nil Topic, two octets on the wire)
// tells the gateway there is no will.
type WillTopic struct {
	// QoS is the will's QoS, 0 to 2.
	QoS    QoS
	Retain bool
	Topic  []byte
}

// Type returns TypeWillTopic.
func (*WillTopic) Type() MsgType { return TypeWillTopic }

// Len returns the wire length.
func (m *WillTopic) Len() int { return frameLen((*willTopic)(m).bodyLen()) }

// AppendBinary appends the wire form of m to b.
func (m *WillTopic) AppendBinary(b []byte) ([]byte, error) {
	return (*willTopic)(m).append(b, TypeWillTopic)
}

// Clone returns a deep copy of m.
func (m *WillTopic) Clone() Message {
	c := *m
	c.Topic = clone(m.Topic)
	return &c
}

func (m *WillTopic) decode(body []byte) error {
	return (*willTopic)(m).decode(TypeWillTopic, body)
}
