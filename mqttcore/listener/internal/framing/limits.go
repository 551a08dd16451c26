package framing

import "fmt"

// Packet size limits. A packet's size counts the whole packet, fixed header
// included, as MQTT 5's Maximum Packet Size property does.
const (
	// DefaultMaxPacketSize is the maximum packet size when Limits leaves it
	// zero: 1 MiB, generous for sensor data and local applications on an
	// edge box, small enough that a few hundred connections cannot exhaust
	// its memory.
	DefaultMaxPacketSize = 1 << 20
	// MinMaxPacketSize is the smallest maximum packet size Validate accepts;
	// below it an ordinary CONNECT would not fit.
	MinMaxPacketSize = 64
	// ProtocolMaxPacketSize is the largest packet MQTT can express: one type
	// byte, four Remaining Length bytes and 268,435,455 bytes of body.
	ProtocolMaxPacketSize = 1 + 4 + 268435455
)

// Limits bounds what a Reader accepts. The zero value means the defaults.
type Limits struct {
	// MaxPacketSize is the largest packet, in bytes including the fixed
	// header, that a Reader accepts. Zero means DefaultMaxPacketSize.
	// A larger packet is refused with ErrPacketTooLarge before any of its
	// body is read or allocated.
	MaxPacketSize int `toml:"max_packet_size"`
}

// Validate reports an error for a value that is out of range; it never
// adjusts one.
func (c Limits) Validate() error {
	if c.MaxPacketSize == 0 {
		return nil
	}
	if c.MaxPacketSize < MinMaxPacketSize || c.MaxPacketSize > ProtocolMaxPacketSize {
		return fmt.Errorf("framing limits: max packet size %d out of range [%d, %d]",
			c.MaxPacketSize, MinMaxPacketSize, ProtocolMaxPacketSize)
	}
	return nil
}

// maxPacketSize returns the effective limit.
func (c Limits) maxPacketSize() int {
	if c.MaxPacketSize == 0 {
		return DefaultMaxPacketSize
	}
	return c.MaxPacketSize
}
