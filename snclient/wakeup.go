package snclient

import "context"

// A 2.0 gateway may send WAKEUP to an asleep client when a message is
// queued for it (CSD01, digest C.5; Gannet sends one per sleep,
// docs/mqttsn-2.md G2-26). The client then does what CheckMessages does:
// PINGREQ, the queued messages, PINGRESP, asleep again; without WAKEUP they
// wait for the application's next CheckMessages. The wake runs on a
// goroutine of its own, since the reader that got the WAKEUP must go on
// reading; it takes its turn among requests as any call does, is bounded by
// the retransmissions of one PINGREQ, and Close waits for it. A WAKEUP while
// not asleep, or while a wake already runs, is ignored, as is every WAKEUP
// with Options.IgnoreWakeup.

// onWakeup handles a WAKEUP, on the reader goroutine.
func (c *Client) onWakeup() {
	c.mu.Lock()
	if c.opts.IgnoreWakeup || c.isClosed || c.state != StateAsleep || c.waking {
		c.mu.Unlock()
		return
	}
	c.waking = true
	c.timers.Add(1) // under mu and before isClosed is set: Close waits for it
	c.mu.Unlock()
	c.stats.wakeups.Add(1)
	go func() {
		defer c.timers.Done()
		err := c.CheckMessages(context.Background()) // bounded by its retransmissions and by Close
		c.mu.Lock()
		c.waking = false
		c.mu.Unlock()
		if err != nil {
			c.debug("collecting messages after WAKEUP failed", err)
		}
	}()
}
