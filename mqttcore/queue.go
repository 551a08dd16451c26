package mqttcore

// entry is one message held for one session, queued or in flight. It points
// at the shared message, so fan-out copies 16 bytes per subscriber.
type entry struct {
	msg   *Message
	pid   uint16 // outbound packet id once in flight
	qos   QoS
	flags uint8
}

// entry flags.
const (
	flagRetain   uint8 = 1 << iota // send with RETAIN set
	flagSent                       // sent on the current attachment
	flagRecvd                      // QoS 2: PUBREC received, PUBREL due
	flagEverSent                   // sent at least once: resend with DUP
	flagDurable                    // journalled: not sent before its message is stored
	flagPending                    // in flight, QoS 2: not sent before its packet id is stored
)

// queue is a session's bounded FIFO of messages not yet sent. The ring
// grows on demand up to the limit and is released when drained, so an empty
// queue costs its header only. Guarded by Session.mu.
type queue struct {
	buf  []entry
	head int32
	n    int32
	qos0 int32 // queued QoS 0 entries, to find a droppable one fast
}

// at returns the i-th queued entry (0 is the oldest).
func (q *queue) at(i int32) *entry {
	return &q.buf[(q.head+i)%int32(len(q.buf))]
}

// push appends e. If the queue already holds max entries it makes room by
// dropping the oldest queued QoS 0 entry, or else, under drop-oldest, the
// oldest entry. Under backpressure a QoS 1/2 entry is admitted beyond max
// (flow control parks publishers before a queue fills, so only publishes
// racing with it overshoot) up to twice max, where the oldest is dropped
// after all; a QoS 0 entry finding no QoS 0 to drop is itself dropped. It
// returns a copy of what was dropped (didDrop), and whether e was kept.
func (q *queue) push(e entry, max int, backpressure bool) (dropped entry, didDrop, kept bool) {
	if int(q.n) >= max {
		switch {
		case q.qos0 > 0:
			dropped, didDrop = q.dropOne(), true
		case !backpressure || int(q.n) >= 2*max:
			dropped, didDrop = q.pop(), true
		case e.qos == AtMostOnce:
			return e, true, false
		}
	}
	if int(q.n) == len(q.buf) {
		q.grow(max)
	}
	*q.at(q.n) = e
	q.n++
	if e.qos == AtMostOnce {
		q.qos0++
	}
	return dropped, didDrop, true
}

// remove deletes every entry holding m and returns how many it removed.
func (q *queue) remove(m *Message) int {
	n := 0
	for i := int32(0); i < q.n; {
		if q.at(i).msg != m {
			i++
			continue
		}
		e := *q.at(i)
		for j := i; j > 0; j-- {
			*q.at(j) = *q.at(j - 1)
		}
		*q.at(0) = entry{}
		q.head = (q.head + 1) % int32(len(q.buf))
		q.n--
		if e.qos == AtMostOnce {
			q.qos0--
		}
		n++
	}
	if q.n == 0 {
		q.head = 0
	}
	return n
}

// dropOne removes and returns the oldest QoS 0 entry, or the oldest entry.
func (q *queue) dropOne() entry {
	if q.qos0 > 0 {
		for i := int32(0); i < q.n; i++ {
			if q.at(i).qos != AtMostOnce {
				continue
			}
			// Shift the older entries up by one over the dropped slot; the
			// head slot is then a stale copy and is discarded.
			e := *q.at(i)
			for j := i; j > 0; j-- {
				*q.at(j) = *q.at(j - 1)
			}
			*q.at(0) = entry{}
			q.head = (q.head + 1) % int32(len(q.buf))
			q.n--
			q.qos0--
			return e
		}
	}
	return q.pop()
}

// grow enlarges the ring (doubling, at most max slots) keeping order.
func (q *queue) grow(max int) {
	c := 2 * len(q.buf)
	if c < 4 {
		c = 4
	}
	limit := max
	if int(q.n) >= max {
		limit = 2 * max // backpressure's overshoot
	}
	if c > limit {
		c = limit
	}
	buf := make([]entry, c)
	for i := int32(0); i < q.n; i++ {
		buf[i] = *q.at(i)
	}
	q.buf, q.head = buf, 0
}

// peek returns the oldest entry, or nil.
func (q *queue) peek() *entry {
	if q.n == 0 {
		return nil
	}
	return q.at(0)
}

// pop removes and returns the oldest entry. The queue must not be empty.
func (q *queue) pop() entry {
	p := q.at(0)
	e := *p
	*p = entry{}
	q.head = (q.head + 1) % int32(len(q.buf))
	q.n--
	if e.qos == AtMostOnce {
		q.qos0--
	}
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > 16 {
			q.buf = nil // a drained sleeper gives its big ring back
		}
	}
	return e
}

// reset empties the queue and releases its ring; it returns how many
// entries were discarded.
func (q *queue) reset() int {
	n := int(q.n)
	*q = queue{}
	return n
}
