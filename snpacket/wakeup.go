package snpacket

// Wakeup (MQTT-SN 2.0 WAKEUP, 0x15) is the server's hint to an asleep
// client that messages are waiting. It has no fields and needs no reply.
type Wakeup struct{}

// Type returns PacketWakeup.
func (*Wakeup) Type() PacketType { return PacketWakeup }

// Len returns the wire length.
func (*Wakeup) Len() int { return frameLen(0) }

// AppendBinary appends the wire form of m to b.
func (*Wakeup) AppendBinary(b []byte) ([]byte, error) { return appendHeaderV2(b, PacketWakeup, 0) }

// Clone returns a copy of m.
func (*Wakeup) Clone() MessageV2 { return new(Wakeup) }

func (*Wakeup) decode(body []byte) error { return exact2(PacketWakeup, body, 0, "") }
