package snpacket

// WillTopicUpd (WILLTOPICUPD, 0x1A) replaces the will topic and its QoS and
// retain flag of a connected client. The empty form (a nil Topic, two octets
// on the wire) deletes both the will topic and the will message.
type WillTopicUpd struct {
	// QoS is the will's QoS, 0 to 2.
	QoS    QoS
	Retain bool
	Topic  []byte
}

// Type returns TypeWillTopicUpd.
func (*WillTopicUpd) Type() MsgType { return TypeWillTopicUpd }

// Len returns the wire length.
func (m *WillTopicUpd) Len() int { return frameLen((*willTopic)(m).bodyLen()) }

// AppendBinary appends the wire form of m to b.
func (m *WillTopicUpd) AppendBinary(b []byte) ([]byte, error) {
	return (*willTopic)(m).append(b, TypeWillTopicUpd)
}

// Clone returns a deep copy of m.
func (m *WillTopicUpd) Clone() Message {
	c := *m
	c.Topic = clone(m.Topic)
	return &c
}

func (m *WillTopicUpd) decode(body []byte) error {
	return (*willTopic)(m).decode(TypeWillTopicUpd, body)
}
