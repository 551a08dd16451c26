package gateway

import "container/heap"

// Timer kinds. A client has at most one deadline of each kind; the heap may
// hold stale entries, which fire harmlessly: a handler first checks that
// the client's deadline for that kind is still the entry's.
const (
	timerKeepAlive uint8 = iota // active: keep-alive period plus tolerance
	timerRetry                  // an unacknowledged REGISTER, PUBLISH, PUBREL or will prompt
	timerSleep                  // asleep: sleep duration plus tolerance
)

type timerEntry struct {
	at   int64 // UnixNano
	c    *client
	kind uint8
}

// timerHeap is a loop's one timer structure: a min-heap of deadlines.
type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	return e
}

func (h *timerHeap) add(e timerEntry) { heap.Push(h, e) }

// popDue removes and returns the earliest entry if it is due at now.
func (h *timerHeap) popDue(now int64) (timerEntry, bool) {
	if len(*h) == 0 || (*h)[0].at > now {
		return timerEntry{}, false
	}
	return heap.Pop(h).(timerEntry), true
}
