package snclient

import (
	"fmt"
	"time"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// Keep-alive (MQTT-SN 1.2 §6.15): while active, the client sends PINGREQ
// once per KeepAlive period, retransmits it every RetryInterval, and after
// MaxRetries unanswered retransmissions considers the connection lost. The
// timer runs through time.AfterFunc; each arming captures pingGen, so a
// callback from a stopped or superseded timer does nothing.

// startKeepAliveLocked (re)starts the keep-alive: the first PINGREQ goes
// out one period from now.
func (c *Client) startKeepAliveLocked() {
	c.stopKeepAliveLocked()
	c.armPingLocked(c.opts.KeepAlive)
}

// stopKeepAliveLocked stops the timer and forgets an outstanding PINGREQ.
func (c *Client) stopKeepAliveLocked() {
	c.pingGen++
	if c.pingTimer != nil {
		c.pingTimer.Stop()
		c.pingTimer = nil
	}
	c.pingOut, c.pingTries = false, 0
}

func (c *Client) armPingLocked(d time.Duration) {
	gen := c.pingGen
	c.pingTimer = time.AfterFunc(d, func() { c.onPingTimer(gen) })
}

// onPingTimer runs on a timer goroutine: it sends or retransmits PINGREQ, or
// gives up. Close waits for it (c.timers).
func (c *Client) onPingTimer(gen uint64) {
	c.mu.Lock()
	if c.isClosed || gen != c.pingGen || c.state != StateActive {
		c.mu.Unlock()
		return
	}
	c.timers.Add(1) // under mu and before isClosed is set: Close waits for us
	defer c.timers.Done()
	if c.pingOut {
		if c.pingTries == c.opts.MaxRetries {
			tries := c.pingTries
			c.mu.Unlock()
			c.connectionEnded(StateLost, fmt.Errorf("snclient: keep-alive: no PINGRESP from %v after %d retransmissions: %w",
				c.addr, tries, ErrNoResponse))
			return
		}
		c.pingTries++
		c.stats.retransmitted.Add(1)
	} else {
		c.pingOut, c.pingTries, c.pingSent = true, 0, time.Now()
	}
	c.pingGen++
	c.armPingLocked(c.opts.RetryInterval)
	var ping outgoing = &snpacket.PingReq{}
	if c.v2 {
		ping = &snpacket.PingReqV2{PacketID: c.nextMsgIDLocked()}
	}
	c.mu.Unlock()
	if err := c.send("keep-alive", ping); err != nil {
		c.debug("keep-alive failed", err)
	}
}

// keepAliveAnswered handles a PINGRESP outside CheckMessages: the next
// PINGREQ goes out one period after the first PINGREQ of this round.
func (c *Client) keepAliveAnswered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pingOut || c.state != StateActive {
		return
	}
	next := c.opts.KeepAlive - time.Since(c.pingSent)
	c.stopKeepAliveLocked()
	c.armPingLocked(max(next, 0))
}
