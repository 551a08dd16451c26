package mqttcore

import (
	"fmt"
	"sync"
)

// Flow control (Config.Overflow = backpressure): a QoS 1/2 publish that
// would go to a session whose queue is full at QoS 1/2 is not routed at
// all. It is parked, its acknowledgement held, until every such queue has
// room again, and refused with ErrCongestion after Config.HoldTimeout. A
// parked publish holds only its publisher's window (MQTT-SN's one message
// in flight, MQTT 5's receive maximum): no goroutine waits, no socket goes
// unread, and publishes to other topics flow on.
//
// Order: a session with a parked publish parks its later publishes behind
// it, so one publisher's messages are routed in the order sent. Parked
// publishes are retried in arrival order when a full queue drains to its
// low-water mark; the list is bounded by the publishers' windows.

// parkedPub is one held publish.
type parkedPub struct {
	m   *Message
	p   *pending
	src *Session
	at  int64 // unix ns when parked; its deadline is at + HoldTimeout
}

// parking is the broker's list of held publishes, oldest first. Its lock
// is a leaf: route is never called with it held.
type parking struct {
	mu       sync.Mutex
	q        []parkedPub
	retrying bool // a retry pass is running
	again    bool // a queue drained during the pass: run another
	// blind is set when the timer loop took its next hold deadline while
	// a retry pass had the list out (it saw none of the pass's publishes,
	// perhaps an empty list, and may sleep for idleWait): the pass pokes
	// it when it puts publishes back.
	blind bool
}

// park holds m (whose pending has the caller's hold) until it can be
// routed. It takes a hold of its own for the wait.
func (b *Broker) park(m *Message, p *pending, src *Session) {
	p.hold()
	if src != nil {
		src.parked.Add(1)
	}
	b.stats.held.Add(1)
	b.stats.heldNow.Add(1)
	now := b.now().UnixNano()
	b.parking.mu.Lock()
	first := len(b.parking.q) == 0
	b.parking.q = append(b.parking.q, parkedPub{m: m, p: p, src: src, at: now})
	b.parking.mu.Unlock()
	if first {
		b.poke() // the timer loop now has a hold deadline
	}
}

// unpark ends one held publish: routed (err nil) or refused.
func (b *Broker) unpark(x parkedPub, err error) {
	if x.src != nil {
		x.src.parked.Add(-1)
	}
	b.stats.heldNow.Add(-1)
	if err != nil {
		b.stats.limitHold.Add(1)
	}
	x.p.release(err)
}

// retryParked routes the held publishes that now fit, oldest first. Only
// one pass runs at a time; a drain during a pass asks for another.
func (b *Broker) retryParked() {
	b.parking.mu.Lock()
	if len(b.parking.q) == 0 {
		b.parking.mu.Unlock()
		return
	}
	if b.parking.retrying {
		b.parking.again = true
		b.parking.mu.Unlock()
		return
	}
	b.parking.retrying = true
	b.parking.blind = false
	for {
		b.parking.again = false
		q := b.parking.q
		b.parking.q = nil
		b.parking.mu.Unlock()

		var keep []parkedPub
		var blocked map[*Session]bool // publishers that must keep their order
		for _, x := range q {
			if x.src != nil && blocked[x.src] {
				keep = append(keep, x)
				continue
			}
			parked, err := b.routeHeld(x.m, x.p)
			if parked {
				if x.src != nil {
					if blocked == nil {
						blocked = make(map[*Session]bool)
					}
					blocked[x.src] = true
				}
				keep = append(keep, x)
				continue
			}
			b.unpark(x, err)
		}

		b.parking.mu.Lock()
		if len(keep) > 0 {
			b.parking.q = append(keep, b.parking.q...)
		}
		if !b.parking.again || len(b.parking.q) == 0 {
			break
		}
	}
	b.parking.retrying = false
	// Publishes put back after the timer loop looked without them: their
	// deadline is armed only if the loop looks again. (park pokes only
	// when the list it sees was empty, and nothing else may wake the loop
	// for an hour.)
	rearm := b.parking.blind && len(b.parking.q) > 0
	b.parking.blind = false
	b.parking.mu.Unlock()
	if rearm {
		b.poke()
	}
}

// expireParked refuses held publishes whose HoldTimeout has passed at now
// and returns the next deadline (0: none).
func (b *Broker) expireParked(now int64) int64 {
	hold := b.conf().HoldTimeout
	limit := int64(hold)
	var due []parkedPub
	b.parking.mu.Lock()
	i := 0
	for i < len(b.parking.q) && now-b.parking.q[i].at >= limit {
		i++
	}
	if i > 0 {
		due = append(due, b.parking.q[:i]...)
		clear(b.parking.q[:i])
		b.parking.q = b.parking.q[i:]
	}
	next := int64(0)
	if len(b.parking.q) > 0 {
		next = b.parking.q[0].at + limit
	}
	if b.parking.retrying {
		b.parking.blind = true // the pass's publishes are not in next
	}
	b.parking.mu.Unlock()
	for _, x := range due {
		b.unpark(x, fmt.Errorf("mqttcore: publish %q held %v: %w", x.m.Topic, hold, ErrCongestion))
	}
	return next
}

// routeHeld tries to route a parked publish: the same as a first attempt
// (retained update, fan-out, journal), except that it is already parked.
func (b *Broker) routeHeld(m *Message, p *pending) (parked bool, err error) {
	parked, err = b.retainAndRoute(m, p, true)
	if parked || err != nil {
		return parked, err
	}
	b.stats.received.Add(1)
	p.commitOps()
	return false, nil
}

// refuseParked refuses every held publish (the broker is closing).
func (b *Broker) refuseParked() {
	b.parking.mu.Lock()
	q := b.parking.q
	b.parking.q = nil
	b.parking.mu.Unlock()
	for _, x := range q {
		b.unpark(x, fmt.Errorf("mqttcore: publish %q: %w", x.m.Topic, ErrClosed))
	}
}
