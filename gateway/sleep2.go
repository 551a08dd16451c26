package gateway

import (
	"time"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// 2.0 keep-alive, sleep and disconnect (CSD01 3.11-3.15, 4.14). A 2.0
// sleeping client is the same detached core session as a 1.2 one: the
// core's queue is its buffer. What differs: SLEEPREQ/SLEEPRESP instead of
// DISCONNECT with a duration, the 1.5x deadlines, Default Awake Messages,
// and a PINGRESP that says how many messages are still queued.

// onPingReqV2 answers PINGREQ. From an asleep client it is the wake-up:
// queued messages are sent (at most Default Awake Messages), and PINGRESP,
// with the Packet Identifier of the PINGREQ, only after the last exchange
// completes (PR #166, digest C.11 item 7).
func (c *client) onPingReqV2(m *sn.PingReqV2) {
	switch c.state {
	case StateAsleep:
		if err := c.attach(false, nil, true); err != nil {
			c.l.g.log.Debug("wake refused", "client_id", c.id, "err", err)
			c.lose("wake refused by the core")
			return
		}
		c.timerAt = 0
		c.v2.pingID, c.v2.awakeSent = m.PacketID, 0
		c.setState(StateAwake)
		if c.awaitUpstream() {
			return // upstream.go: the remote session resumes first
		}
		c.deliver() // sends PINGRESP when done (backToSleep)
	case StateAwake:
		// A repeated PINGREQ (same Packet Identifier) is a retransmission
		// (digest C.11 (e)): resend what is in flight now.
		c.wakeRepeated()
	default:
		c.l.tx2.pingresp = sn.PingRespV2{PacketID: m.PacketID}
		c.sendV2(&c.l.tx2.pingresp)
	}
}

// queuedWhileAsleep is the core's SleepNotify callback for an asleep 2.0
// client: the first message was queued for it since it went to sleep. It
// runs on the publisher's goroutine, so it only posts to the client's loop.
func (c *client) queuedWhileAsleep() { c.l.post(coreEvent{wakeup: c}) }

// sendWakeup sends WAKEUP (digest C.5, C.6: the server "may send
// WAKEUP" to an asleep client) when the core queued a message for c: once
// per sleep, for the first message queued after the SLEEPREQ, never
// retransmitted (no answer is due); the client's PINGREQ collects the
// queue as always (docs/mqttsn-2.md G2-26). A client that woke, reconnected,
// left or moved meanwhile gets none.
func (c *client) sendWakeup() {
	if c.removed || !c.isV2 || c.state != StateAsleep {
		return
	}
	if c.sendV2(&c.l.tx2.wakeup) {
		c.l.g.stats.v2Wakeups.Add(1)
	}
}

// awakeDone reports whether a 2.0 awake client got its Default Awake
// Messages for this awake period.
func (c *client) awakeDone() bool {
	return c.isV2 && c.state == StateAwake && c.v2.awakeMax != 0 && c.v2.awakeSent >= c.v2.awakeMax
}

// preparePingRespV2 builds, in tx2.pingresp, the PINGRESP that ends an
// awake period, with the number of messages still queued when Default
// Awake Messages cut the flush short (0xFF when more than 254). It is sent
// once the client sleeps again (backToSleep), so a message queued after
// the client has its PINGRESP comes with a WAKEUP (G2-26).
func (c *client) preparePingRespV2() {
	p := &c.l.tx2.pingresp
	*p = sn.PingRespV2{PacketID: c.v2.pingID}
	if c.v2.awakeMax != 0 {
		p.HasRemaining = true
		if info, ok := c.l.g.broker.Session(c.id); ok && info.Queued > 0 {
			p.Remaining = sn.RemainingUnknown
			if info.Queued < int(sn.RemainingUnknown) {
				p.Remaining = uint8(info.Queued)
			}
		}
	}
}

// onSleepReq handles SLEEPREQ (CSD01 3.13): an active client goes to sleep
// for Sleep Duration; an asleep one restarts its sleep with the new
// duration (digest C.8: accepted although the Asleep rule omits it).
// Retain Topic Aliases = 0 drops the session aliases; predefined ones
// always survive (PR #166, digest C.11 item 4). SLEEPRESP follows the
// change of state.
func (c *client) onSleepReq(m *sn.SleepReq) {
	switch c.state {
	case StateActive:
		if c.conn == nil {
			c.unexpectedV2(m)
			return
		}
	case StateAsleep:
		// Restart the core's sleep deadline too: attach, then sleep again.
		if err := c.attach(false, nil, true); err != nil {
			c.lose("sleep refused by the core")
			return
		}
	default: // awake: the client must not send SLEEPREQ before PINGRESP
		c.unexpectedV2(m)
		return
	}
	if !m.RetainTopicAliases {
		c.resetTopics()
	}
	c.v2.sleepFor = m.SleepDuration
	c.sleep()
	c.l.tx2.sleepresp = sn.SleepResp{PacketID: m.PacketID}
	c.sendV2(&c.l.tx2.sleepresp)
}

// onDisconnectV2 handles DISCONNECT from the client (CSD01 3.14), which is
// never answered. Reason 0x04 publishes the will; any other ends the
// virtual connection normally, discarding the will. A Session Expiry
// replaces the CONNECT's (at most session_expiry), except that a
// connection that began with 0 may not set one (a protocol error). Eclipse
// Paho's 2-octet DISCONNECT is accepted as a normal one (docs/mqttsn-2.md
// P1).
func (c *client) onDisconnectV2(m *sn.DisconnectV2) {
	if m.Short {
		c.l.g.stats.pahoDeviations.Add(1)
	}
	if m.HasSessionExpiry {
		if c.v2.expiryZero && m.SessionExpiry != 0 {
			c.protocolError(sn.ProtocolError, "DISCONNECT sets a session expiry after CONNECT had 0")
			return
		}
		c.v2.expiry = min(expirySeconds(m.SessionExpiry), c.l.g.live().SessionExpiry)
		if c.conn != nil {
			_ = c.conn.SetSessionExpiry(c.v2.expiry)
		}
	}
	if c.conn == nil && c.state == StateAsleep {
		// The session is detached: attach briefly to end it (with the
		// expiry above: attach uses sessionExpiry).
		if err := c.attach(false, nil, true); err != nil {
			c.l.g.log.Debug("disconnect: attach refused", "client_id", c.id, "err", err)
		}
	}
	if c.conn != nil {
		c.keepSession() // persist.go: the aliases stay with the session
		if m.HasReasonCode && m.ReasonCode == sn.DisconnectWithWill {
			_ = c.conn.Lost() // publishes the will; the session follows its expiry
		} else {
			_ = c.conn.Disconnect()
		}
	}
	c.detach()
	c.setState(StateDisconnected)
	c.l.removeClient(c)
}

// tolerance is the slack before a client's keep-alive or sleep deadline:
// 1.5 times the period for 2.0 (CSD01, normative), 1.2's suggestion
// otherwise (the function tolerance).
func (c *client) tolerance(d time.Duration) time.Duration {
	if c.isV2 {
		return d + d/2
	}
	return tolerance(d)
}

// sleepPeriod is the client's sleep duration.
func (c *client) sleepPeriod() time.Duration {
	if c.isV2 {
		return time.Duration(c.v2.sleepFor) * time.Second
	}
	return seconds(c.sleepFor)
}

// sendDisconnect tells the client the gateway ended its connection, in
// its version (2.0: with rc).
func (c *client) sendDisconnect(rc sn.ReasonCode) {
	if c.isV2 {
		c.l.tx2.disconnect = sn.DisconnectV2{HasReasonCode: true, ReasonCode: rc}
		c.sendV2(&c.l.tx2.disconnect)
		return
	}
	c.send(&c.l.tx.disconnect)
}
