package gateway

import "container/heap"

// timerHeap is a loop's one timer structure: a min-heap of the loop's
// clients ordered by due, the earliest time something about the client must
// be checked (keep-alive, Tretry, sleep). A client is in it at most once
// (client.heapPos), so refreshes and sleep/wake cycles leave no stale
// entries, and a sleeping client costs one 16-byte entry here.
//
// due may be earlier than the client's real deadline (a keep-alive refreshed
// by traffic is not rescheduled per datagram): when it fires, the client
// checks its deadlines and schedules itself again.
type timerHeap []timerEntry

type timerEntry struct {
	due int64 // UnixNano
	c   *client
}

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].c.heapPos, h[j].c.heapPos = int32(i+1), int32(j+1)
}
func (h *timerHeap) Push(x any) {
	e := x.(timerEntry)
	e.c.heapPos = int32(len(*h) + 1)
	*h = append(*h, e)
}
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	e.c.heapPos = 0
	return e
}

// schedule puts c in the heap at its earliest deadline, or takes it out
// when it has none.
func (l *loop) schedule(c *client) {
	due := c.nextDeadline()
	switch {
	case due == 0 && c.heapPos != 0:
		heap.Remove(&l.timers, int(c.heapPos-1))
	case due == 0:
	case c.heapPos != 0:
		l.timers[c.heapPos-1].due = due
		heap.Fix(&l.timers, int(c.heapPos-1))
	default:
		heap.Push(&l.timers, timerEntry{due: due, c: c})
	}
}

// unschedule takes c out of the heap.
func (l *loop) unschedule(c *client) {
	if c.heapPos != 0 {
		heap.Remove(&l.timers, int(c.heapPos-1))
	}
}

// popDue removes and returns the client whose deadline is earliest, if it
// is due at now.
func (h *timerHeap) popDue(now int64) (*client, bool) {
	if len(*h) == 0 || (*h)[0].due > now {
		return nil, false
	}
	return heap.Pop(h).(timerEntry).c, true
}
