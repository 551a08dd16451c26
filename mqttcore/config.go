package mqttcore

import (
	"fmt"
	"time"
)

// Defaults used for zero fields of Config.
const (
	DefaultMaxSessions    = 1_000_000
	DefaultMaxQueued      = 1000
	DefaultMaxInflight    = 32
	DefaultMaxPacketSize  = 1 << 20
	DefaultMaxPayloadSize = 256 << 10
	DefaultMaxRetained    = 100_000
	DefaultMaxTopicLevels = 64
	DefaultSysInterval    = 10 * time.Second
	// DefaultHoldTimeout is how long flow control holds a publisher's
	// acknowledgement by default: below the usual MQTT-SN retry timer
	// (Gannet's own is 10 s), so a held sensor is answered before it
	// retransmits.
	DefaultHoldTimeout = 5 * time.Second
	// MinSysInterval is the shortest accepted Config.SysInterval.
	MinSysInterval = 100 * time.Millisecond
	// MaxPacketID is the largest MQTT packet id, and so the largest possible
	// in-flight window.
	MaxPacketID = 65535
	// maxTopicLen is the MQTT limit on a UTF-8 string.
	maxTopicLen = 65535
)

// Config holds the core's limits. The zero value of every field means "use the
// default" (the Default... constants); Validate rejects negative or
// inconsistent values and never clamps them.
type Config struct {
	// MaxSessions bounds live sessions, attached or offline. Attach fails
	// with ErrTooManySessions beyond it.
	MaxSessions int `toml:"max_sessions"`
	// MaxQueued bounds each session's queue. When it is full a queued QoS 0
	// message is dropped first, else the oldest message; drops are counted.
	MaxQueued int `toml:"max_queued"`
	// MaxInflight bounds outbound unacknowledged QoS 1/2 messages per
	// attachment (a front-end may ask for a smaller window) and inbound QoS 2
	// messages awaiting PUBREL per session. At most 65535.
	MaxInflight int `toml:"max_inflight"`
	// MaxPacketSize is the largest packet a front-end accepts; the core does
	// not see packets but front-ends read it from Broker.Config for framing.
	MaxPacketSize int `toml:"max_packet_size"`
	// MaxPayloadSize bounds a published payload; must not exceed
	// MaxPacketSize.
	MaxPayloadSize int `toml:"max_payload_size"`
	// MaxRetained bounds the number of retained messages.
	MaxRetained int `toml:"max_retained"`
	// MaxTopicLevels bounds the levels of topic names and filters.
	MaxTopicLevels int `toml:"max_topic_levels"`
	// SysInterval is how often $SYS/broker/... topics are published.
	SysInterval time.Duration `toml:"sys_interval"`
	// SysDisabled turns $SYS publishing off.
	SysDisabled bool `toml:"sys_disabled"`
	// Overflow is what happens when a message arrives for a session whose
	// queue holds MaxQueued messages: OverflowBackpressure (the default)
	// holds the publisher's acknowledgement of a QoS 1/2 message until
	// every entitled queue has room, and refuses it with ErrCongestion
	// after HoldTimeout, so an acknowledged message is never dropped;
	// OverflowDropOldest acknowledges at once and drops the oldest queued
	// QoS 0 message, else the oldest message (Mosquitto's and EMQX's
	// behaviour). QoS 0 deliveries are dropped (counted) under both.
	Overflow Overflow `toml:"overflow"`
	// HoldTimeout bounds how long backpressure holds one publish.
	HoldTimeout time.Duration `toml:"hold_timeout"`
}

// Overflow is a full-queue policy (Config.Overflow).
type Overflow string

// Full-queue policies.
const (
	OverflowBackpressure Overflow = "backpressure"
	OverflowDropOldest   Overflow = "drop-oldest"
)

// Validate reports the first bad value, naming the field. It never changes c.
func (c Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("mqttcore: %w", err)
	}
	return nil
}

// validate is Validate without the package prefix.
func (c Config) validate() error {
	nonNeg := []struct {
		name string
		v    int
	}{
		{"max_sessions", c.MaxSessions},
		{"max_queued", c.MaxQueued},
		{"max_inflight", c.MaxInflight},
		{"max_packet_size", c.MaxPacketSize},
		{"max_payload_size", c.MaxPayloadSize},
		{"max_retained", c.MaxRetained},
		{"max_topic_levels", c.MaxTopicLevels},
	}
	for _, f := range nonNeg {
		if f.v < 0 {
			return fmt.Errorf("config %s = %d: must not be negative: %w", f.name, f.v, ErrInvalidConfig)
		}
	}
	if c.MaxInflight > MaxPacketID {
		return fmt.Errorf("config max_inflight = %d: must be at most %d: %w", c.MaxInflight, MaxPacketID, ErrInvalidConfig)
	}
	if c.MaxTopicLevels > maxTopicLen/2+1 {
		return fmt.Errorf("config max_topic_levels = %d: must be at most %d: %w", c.MaxTopicLevels, maxTopicLen/2+1, ErrInvalidConfig)
	}
	d := c.withDefaults()
	if d.MaxPayloadSize > d.MaxPacketSize {
		return fmt.Errorf("config max_payload_size = %d exceeds max_packet_size = %d: %w", d.MaxPayloadSize, d.MaxPacketSize, ErrInvalidConfig)
	}
	if c.SysInterval < 0 || (c.SysInterval > 0 && c.SysInterval < MinSysInterval) {
		return fmt.Errorf("config sys_interval = %v: must be 0 (default) or at least %v: %w", c.SysInterval, MinSysInterval, ErrInvalidConfig)
	}
	switch c.Overflow {
	case "", OverflowBackpressure, OverflowDropOldest:
	default:
		return fmt.Errorf("config overflow = %q: must be %q or %q: %w", c.Overflow, OverflowBackpressure, OverflowDropOldest, ErrInvalidConfig)
	}
	if c.HoldTimeout < 0 {
		return fmt.Errorf("config hold_timeout = %v: must not be negative: %w", c.HoldTimeout, ErrInvalidConfig)
	}
	return nil
}

// withDefaults returns c with zero fields replaced by defaults.
func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxSessions, DefaultMaxSessions)
	def(&c.MaxQueued, DefaultMaxQueued)
	def(&c.MaxInflight, DefaultMaxInflight)
	def(&c.MaxPacketSize, DefaultMaxPacketSize)
	if c.MaxPayloadSize == 0 {
		c.MaxPayloadSize = min(DefaultMaxPayloadSize, c.MaxPacketSize)
	}
	def(&c.MaxRetained, DefaultMaxRetained)
	def(&c.MaxTopicLevels, DefaultMaxTopicLevels)
	if c.SysInterval == 0 {
		c.SysInterval = DefaultSysInterval
	}
	if c.Overflow == "" {
		c.Overflow = OverflowBackpressure
	}
	if c.HoldTimeout == 0 {
		c.HoldTimeout = DefaultHoldTimeout
	}
	return c
}
