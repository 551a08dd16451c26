package gateway

import (
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// onDisconnect handles DISCONNECT. Without a duration (or with 0) the
// client disconnects: its will is discarded, its session kept. With a
// duration it goes to sleep: messages for it queue in its core session.
// Both are acknowledged with a DISCONNECT without duration (§6.12, §6.14).
func (c *client) onDisconnect(m *sn.Disconnect) {
	// Acknowledged on every path, after the state changed: whoever sees the
	// DISCONNECT sees the session in its new state.
	defer c.send(&c.l.tx.disconnect)
	if !m.HasDuration || m.Duration == 0 {
		if c.conn == nil && c.state == StateAsleep {
			// The session is detached: attach briefly to end it normally.
			if err := c.attach(false, nil, true); err == nil {
				c.keepSession() // persist.go: not rebuilt after a restart
				_ = c.conn.Disconnect()
			}
		} else if c.conn != nil {
			c.keepSession()
			_ = c.conn.Disconnect()
		}
		c.detach()
		c.setState(StateDisconnected)
		c.l.removeClient(c)
		return
	}
	if c.state == StateAsleep {
		return // a retransmitted sleep request: acknowledged again above
	}
	if c.dialogue() != nil || c.conn == nil {
		c.unexpected(m) // asleep before CONNACK: there is no session to keep
		if c.conn != nil {
			// A connected client that CONNECTed again with the Will flag:
			// its attachment ends as a DISCONNECT ends it, or the core
			// session would stay attached to a client the gateway forgot.
			c.keepSession()
			_ = c.conn.Disconnect()
			c.detach()
			c.setState(StateDisconnected)
		}
		c.l.removeClient(c)
		return
	}
	c.sleepFor = m.Duration
	c.sleep()
}

// sleep detaches the client from its core session without ending it; an
// exchange in progress stays in the core's in-flight state and is resent
// with DUP when the client next wakes or connects.
func (c *client) sleep() {
	c.setOut(outFlight{})
	deadline := c.tolerance(c.sleepPeriod()) // sleep2.go: 1.2 or 2.0 rules
	c.timerAt = c.l.now() + int64(deadline)  // replaces any retry deadline
	c.saveState(true)                        // persist.go: asleep until timerAt, across a restart
	if c.isV2 {
		_ = c.conn.SleepNotify(deadline, c.queuedWhileAsleep) // WAKEUP (sleep2.go)
	} else {
		_ = c.conn.Sleep(deadline)
	}
	c.detach()
	c.setState(StateAsleep)
	c.l.schedule(c)
}

// onPingReq answers PINGREQ. From an asleep client it is the wake-up: the
// gateway sends every queued message, and PINGRESP only once they are all
// acknowledged (§6.14).
func (c *client) onPingReq(m *sn.PingReq) {
	switch c.state {
	case StateAsleep:
		if m.ClientID != nil && string(m.ClientID) != c.id {
			c.unexpected(m)
			return
		}
		if err := c.attach(false, nil, true); err != nil {
			c.l.g.log.Debug("wake refused", "client_id", c.id, "err", err)
			c.lose("wake refused by the core")
			return
		}
		c.timerAt = 0
		c.setState(StateAwake)
		if c.awaitUpstream() {
			return // upstream.go: the remote session resumes first
		}
		c.deliver() // sends PINGRESP once the queue is empty
	case StateAwake:
		// The client repeats its PINGREQ while we deliver; PINGRESP comes
		// when delivery is done. A repeat means it heard nothing for its
		// T_retry: resend what is in flight now (deliver.go).
		c.wakeRepeated()
	default:
		c.send(&c.l.tx.pingresp)
	}
}

// backToSleep ends an awake period: PINGRESP, then asleep again.
func (c *client) backToSleep() {
	if c.isV2 {
		c.preparePingRespV2() // sleep2.go; the queue count is read before sleeping
		c.sleep()
		c.sendV2(&c.l.tx2.pingresp) // after the sleep began, as SLEEPRESP (and 1.2's PINGRESP below)
		return
	}
	c.sleep()
	c.send(&c.l.tx.pingresp)
}
