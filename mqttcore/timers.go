package mqttcore

import (
	"container/heap"
	"time"
)

// timerHeap is the broker's one deadline structure: a min-heap of sessions
// by their earliest deadline (Session.due). A session is in it at most once,
// so repeated sleep/wake cycles leave no stale entries. Guarded by b.mu.
type timerHeap []*Session

// Len, Less and Swap implement heap.Interface; Swap keeps heapIdx current.
func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = int32(i)
	h[j].heapIdx = int32(j)
}

// Push implements heap.Interface.
func (h *timerHeap) Push(x any) {
	s := x.(*Session)
	s.heapIdx = int32(len(*h))
	*h = append(*h, s)
}

// Pop implements heap.Interface.
func (h *timerHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.heapIdx = -1
	return s
}

// remove takes s out of the heap if it is in it.
func (h *timerHeap) remove(s *Session) {
	if s.heapIdx >= 0 {
		heap.Remove(h, int(s.heapIdx))
	}
}

// scheduleLocked recomputes s.due from its deadlines and places it in the
// heap, waking the timer loop if the earliest deadline moved earlier. The
// caller holds b.mu.
func (b *Broker) scheduleLocked(s *Session) {
	due := int64(0)
	for _, t := range [...]int64{s.sleepAt, s.willAt, s.expireAt} {
		if t != 0 && (due == 0 || t < due) {
			due = t
		}
	}
	s.due = due
	if due == 0 {
		b.timers.remove(s)
		return
	}
	if s.heapIdx >= 0 {
		heap.Fix(&b.timers, int(s.heapIdx))
	} else {
		heap.Push(&b.timers, s)
	}
	if b.timers[0] == s {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// fireLocked applies every deadline of the offline session s that is due at
// now: a missed sleep deadline makes it lost, a will delay publishes the
// will, expiry publishes any remaining will and ends the session. It returns
// the wills to publish once b.mu is released. The caller holds b.mu.
func (b *Broker) fireLocked(s *Session, now int64) []pendingWill {
	var wills []pendingWill
	fired := false
	if s.sleepAt != 0 && now >= s.sleepAt {
		fired = true
		base := s.sleepAt
		s.sleepAt = 0
		s.state = StateLost
		s.mu.Lock()
		s.hint = nil // no longer asleep: the callback (and what it holds) goes
		s.mu.Unlock()
		s.setEligible(false) // a lost session's full queue holds no one back
		if s.flow.Load()&flowFull != 0 {
			b.retryWanted.Store(true) // the timer loop retries after this pass
		}
		if s.will != nil {
			s.willAt = addDur(base, s.will.Delay)
		}
		if s.expiry != NeverExpire {
			s.expireAt = addDur(base, s.expiry)
		}
	}
	if s.willAt != 0 && now >= s.willAt {
		fired = true
		s.willAt = 0
		if s.will != nil {
			wills = append(wills, pendingWill{s.clientID, s.will, s.up.linkOf()})
			s.will = nil
		}
	}
	if s.expireAt != 0 && now >= s.expireAt {
		if s.will != nil {
			wills = append(wills, pendingWill{s.clientID, s.will, s.up.linkOf()})
		}
		b.endSessionLocked(s)
		b.stats.expired.Add(1)
		return wills
	}
	b.scheduleLocked(s)
	if fired {
		b.writeHeaderLocked(s)
	}
	return wills
}

// fireDue handles every session whose deadline is due at now.
func (b *Broker) fireDue(now int64) {
	b.mu.Lock()
	var wills []pendingWill
	for len(b.timers) > 0 && b.timers[0].due <= now {
		wills = append(wills, b.fireLocked(b.timers[0], now)...)
	}
	b.mu.Unlock()
	b.afterUnlock(nil, wills)
}

// idleWait is how long the timer loop sleeps when nothing is scheduled.
const idleWait = time.Hour

// lazyFlush is how long journal ops that no acknowledgement waits for may
// wait for a ride before the timer loop commits them.
const lazyFlush = 100 * time.Millisecond

// timerLoop is the broker's one goroutine. It fires deadlines from the heap
// and publishes $SYS topics. It exits when b.done is closed (by Close).
func (b *Broker) timerLoop() {
	t := time.NewTimer(idleWait)
	defer t.Stop()
	sys := !b.conf().SysDisabled
	nextSys := b.now().Add(b.conf().SysInterval).UnixNano()
	if sys {
		b.publishSys()
	}
	for {
		now := b.now().UnixNano()
		b.fireDue(now)
		if sys && now >= nextSys {
			b.publishSys()
			nextSys = now + int64(b.conf().SysInterval)
		}
		if b.retryWanted.Swap(false) {
			b.retryParked()
		}
		held := b.expireParked(now)
		wait := idleWait
		b.mu.Lock()
		if len(b.timers) > 0 {
			wait = time.Duration(b.timers[0].due - now)
		}
		b.mu.Unlock()
		if sys {
			wait = min(wait, time.Duration(nextSys-now))
		}
		if held != 0 {
			wait = min(wait, time.Duration(held-now))
		}
		if b.journal != nil {
			b.flushLazy()
			wait = min(wait, lazyFlush)
		}
		t.Reset(max(wait, 0))
		select {
		case <-b.done:
			return
		case <-b.wake:
		case <-t.C:
		}
	}
}
