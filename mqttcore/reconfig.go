package mqttcore

import "fmt"

// Changing the limits of a running core.
//
// The core reads its Config through one atomic pointer to an immutable
// value (Broker.cfg): every read of a limit on a publish or delivery is
// one atomic load, no lock, no allocation. SetConfig replaces the value
// whole; a change applies to what happens after it, never to what exists:
//
//   - max_sessions: no session ends; new sessions are refused while the
//     table holds as many (or more).
//   - max_queued: queued messages stay. A queue at or above the new limit
//     counts as full: QoS 0 is dropped, and under backpressure QoS 1/2
//     publishers wait for it to drain below the new low-water mark (under
//     drop-oldest the oldest is dropped per new message). A queue above
//     twice the new limit also drops its oldest message for each message
//     that cannot wait (a will, a retained message on subscribe), the same
//     safety valve as always.
//   - overflow, hold_timeout: publishes held before the change keep their
//     hold and deadline; new ones follow the new rule.
//   - max_inflight: attachments made before keep their window (it is the
//     MQTT 5 Receive Maximum they were told); new attachments get the new
//     one. Inbound QoS 2 awaiting PUBREL is bounded by the value in force
//     at attach too (Conn.InboundWindow, which the MQTT listener announces
//     as the MQTT 5 Receive Maximum).
//   - max_payload_size, max_topic_levels, max_retained: checked on the next
//     publish, subscribe or retained update; what is stored stays.
//   - max_packet_size: the core only checks it against max_payload_size;
//     front-ends that sized their framing from it at start keep theirs.
//   - sys_interval, sys_disabled: fixed at New (the timer loop, and the
//     front-ends' $SYS loops, are set up with them): SetConfig keeps the
//     running values and names them in its result.

// conf returns the configuration in force: one atomic load.
func (b *Broker) conf() *Config { return b.cfg.Load() }

// SetConfig replaces the core's limits with cfg (defaults filled in) for
// everything that happens from now on; sessions, queues and retained
// messages are kept. An invalid cfg is refused whole (nothing changes).
// Keys that cannot change in a running core keep their running value and
// are returned by their config.toml names (see the comment above).
func (b *Broker) SetConfig(cfg Config) (kept []string, err error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("mqttcore: set config: %w", err)
	}
	next := cfg.withDefaults()
	old := b.conf()
	if next.SysInterval != old.SysInterval {
		kept = append(kept, "sys_interval")
		next.SysInterval = old.SysInterval
	}
	if next.SysDisabled != old.SysDisabled {
		kept = append(kept, "sys_disabled")
		next.SysDisabled = old.SysDisabled
	}
	b.cfg.Store(&next)
	// A larger queue limit may give held publishers room at once.
	if next.MaxQueued > old.MaxQueued || next.Overflow != old.Overflow {
		b.retryWanted.Store(true)
		b.poke()
	}
	return kept, nil
}

// ConfigChanges lists the config.toml keys of the [broker] table whose
// values differ between a and b (defaults filled in), in table order.
func ConfigChanges(a, b Config) []string {
	a, b = a.withDefaults(), b.withDefaults()
	var ch []string
	add := func(name string, differ bool) {
		if differ {
			ch = append(ch, name)
		}
	}
	add("max_sessions", a.MaxSessions != b.MaxSessions)
	add("max_queued", a.MaxQueued != b.MaxQueued)
	add("overflow", a.Overflow != b.Overflow)
	add("hold_timeout", a.HoldTimeout != b.HoldTimeout)
	add("max_inflight", a.MaxInflight != b.MaxInflight)
	add("max_packet_size", a.MaxPacketSize != b.MaxPacketSize)
	add("max_payload_size", a.MaxPayloadSize != b.MaxPayloadSize)
	add("max_retained", a.MaxRetained != b.MaxRetained)
	add("max_topic_levels", a.MaxTopicLevels != b.MaxTopicLevels)
	add("sys_interval", a.SysInterval != b.SysInterval)
	add("sys_disabled", a.SysDisabled != b.SysDisabled)
	return ch
}
