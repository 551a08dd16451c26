package snpacket

// WillTopicReq (WILLTOPICREQ, 0x06) has no fields; the gateway sends it to
// ask for the will topic during CONNECT.
type WillTopicReq struct{}

// Type returns TypeWillTopicReq.
func (*WillTopicReq) Type() MsgType { return TypeWillTopicReq }

// Len returns the wire length.
func (*WillTopicReq) Len() int { return frameLen(0) }

// AppendBinary appends the wire form of m to b.
func (*WillTopicReq) AppendBinary(b []byte) ([]byte, error) { return appendEmpty(b, TypeWillTopicReq) }

// Clone returns a new WillTopicReq.
func (*WillTopicReq) Clone() Message { return new(WillTopicReq) }

func (*WillTopicReq) decode(body []byte) error { return decodeEmpty(TypeWillTopicReq, body) }
