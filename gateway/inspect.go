package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// This file is the gateway's read API for operators (the status page and
// the metrics): snapshots of the sensors, taken by each event loop on its
// own goroutine. A caller posts a request to every loop and waits; a loop
// answers between two datagrams, so a snapshot costs the loops a pass over
// their clients and never a lock on the per-datagram path.

// SensorQuery selects a page of sensors, ordered by client id.
type SensorQuery struct {
	// Search keeps the sensors whose client id or address contains it
	// (case-insensitive); "" keeps all.
	Search string
	// State, when not empty, keeps the sensors in that state ("active",
	// "asleep" or "awake").
	State string
	// Offset skips that many matching sensors; Limit is the page size
	// (0 means 50, at most 1000).
	Offset, Limit int
}

// Sensor is one MQTT-SN client as the gateway sees it. Strings are as the
// client sent them: attacker-chosen, to be escaped by whoever shows them.
type Sensor struct {
	ClientID string `json:"client_id"`
	// Address is the source address of its datagrams (for a client behind
	// a forwarder, the forwarder's); Node is the Wireless Node Id behind a
	// forwarder, in hex, or "".
	Address string `json:"address"`
	Node    string `json:"node,omitempty"`
	// Listener is the local address of the link it speaks on.
	Listener string `json:"listener"`
	State    string `json:"state"`
	// KeepAlive is the CONNECT Duration; SleepDuration the DISCONNECT
	// Duration of a sleeping client.
	KeepAlive     time.Duration `json:"keep_alive_ns"`
	SleepDuration time.Duration `json:"sleep_duration_ns,omitempty"`
	LastSeen      time.Time     `json:"last_seen"`
	// Registrations is the number of normal topic ids registered with it.
	Registrations int `json:"registrations"`
	// Queued is the number of messages waiting in its core session (filled
	// in for the sensors of a page and for Sensor, not for counts).
	Queued int `json:"queued"`
}

// SensorPage is a page of sensors and the totals over all of them.
type SensorPage struct {
	Sensors []Sensor `json:"sensors"`
	// Matching is the number of sensors the query's filters keep (the
	// pages together hold that many).
	Matching int `json:"matching"`
	// Counts are over all sensors, whatever the query.
	Counts SensorCounts `json:"counts"`
}

// SensorCounts are the gateway's sensors by state, their topic
// registrations and the forwarders they are behind.
type SensorCounts struct {
	Active, Asleep, Awake int
	// Registrations is the number of normal topic ids registered, over all
	// sensors.
	Registrations int
	// Forwarded is the number of sensors behind a forwarder; Forwarders the
	// number of distinct forwarders (link and address).
	Forwarded, Forwarders int
}

// Topic is a normal topic id registered with a sensor.
type Topic struct {
	ID   uint16 `json:"id"`
	Name string `json:"name"`
}

// SensorDetail is one sensor with its topic registrations and core session.
type SensorDetail struct {
	Sensor
	Topics []Topic `json:"topics"`
	// Session is the core's view of its session; absent if the core has
	// none (it ended between the two snapshots).
	Session *mqttcore.SessionInfo `json:"session,omitempty"`
}

// errClosed is returned by the read API once the gateway is closed.
var errClosed = errors.New("gateway: closed")

// onLoops runs f on every loop's goroutine, with the loop's index, and
// waits for all of them, ctx or the gateway's closing. f must write only
// to its own index's slot of whatever it fills.
func (g *Gateway) onLoops(ctx context.Context, f func(i int, l *loop)) error {
	done := make(chan struct{}, len(g.loops))
	for i, l := range g.loops {
		l.post(coreEvent{inspect: func(l *loop) {
			f(i, l)
			done <- struct{}{}
		}})
	}
	for range g.loops {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("gateway: inspect: %w", ctx.Err())
		case <-g.done:
			return fmt.Errorf("gateway: inspect: %w", errClosed)
		}
	}
	return nil
}

// Ping returns nil once every loop has run an empty event: no loop is stuck
// in a handler. It costs each loop one event, whatever its clients.
func (g *Gateway) Ping(ctx context.Context) error {
	return g.onLoops(ctx, func(int, *loop) {})
}

// eachClient calls f for every client of l.
func (l *loop) eachClient(f func(c *client)) {
	for _, lc := range l.clients {
		for _, c := range lc.direct {
			f(c)
		}
		for _, m := range lc.forwarded {
			for _, c := range m {
				f(c)
			}
		}
	}
}

// counts adds l's clients to n.
func (l *loop) counts(n *SensorCounts) {
	for _, lc := range l.clients {
		n.Forwarders += len(lc.forwarded)
	}
	l.eachClient(func(c *client) {
		switch c.state {
		case StateActive:
			n.Active++
		case StateAsleep:
			n.Asleep++
		case StateAwake:
			n.Awake++
		}
		if c.fwd {
			n.Forwarded++
		}
		n.Registrations += len(c.topics.entries)
	})
}

// sensor describes c. Called on c's loop.
func (c *client) sensor() Sensor {
	s := Sensor{
		ClientID:      c.id,
		Address:       c.key.addr.String(),
		State:         c.state.String(),
		KeepAlive:     seconds(c.keepAlive),
		LastSeen:      time.Unix(0, c.lastSeen),
		Registrations: len(c.topics.entries),
	}
	if c.fwd {
		s.Node = hex.EncodeToString([]byte(c.node))
	}
	if c.state == StateAsleep {
		s.SleepDuration = seconds(c.sleepFor)
	}
	if a := c.key.link.LocalAddr(); a != nil {
		s.Listener = a.String()
	}
	return s
}

// Counts returns the sensors by state, their registrations and forwarders.
// It is safe for concurrent use and costs each loop a pass over its
// clients.
func (g *Gateway) Counts(ctx context.Context) (SensorCounts, error) {
	per := make([]SensorCounts, len(g.loops))
	err := g.onLoops(ctx, func(i int, l *loop) { l.counts(&per[i]) })
	var n SensorCounts
	for _, p := range per {
		n.Active += p.Active
		n.Asleep += p.Asleep
		n.Awake += p.Awake
		n.Registrations += p.Registrations
		n.Forwarded += p.Forwarded
		n.Forwarders += p.Forwarders
	}
	return n, err
}

// Sensors returns the page of sensors q selects, ordered by client id (a
// client that has not finished CONNECT has an empty one), with the counts
// over all sensors. It is safe for concurrent use.
//
// It takes two passes over the loops, so that a page costs the same
// whichever page it is and the loops only walk their clients: the first
// returns each loop's matching client ids (no copy of a client); the
// caller sorts and merges them and picks the page's ids; the second
// describes those clients. A client that changes in
// between is shown as it is at the second pass, or left out if it is gone.
func (g *Gateway) Sensors(ctx context.Context, q SensorQuery) (SensorPage, error) {
	switch q.State {
	case "", StateActive.String(), StateAsleep.String(), StateAwake.String():
	default:
		return SensorPage{}, fmt.Errorf("gateway: sensors: state %q: want active, asleep or awake", q.State)
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 1000)
	q.Offset = max(q.Offset, 0)
	m := newMatcher(q.Search)
	keep := func(c *client) bool { return (q.State == "" || c.state.String() == q.State) && m.match(c) }
	type part struct {
		ids    []string
		counts SensorCounts
	}
	parts := make([]part, len(g.loops))
	err := g.onLoops(ctx, func(i int, l *loop) {
		p := &parts[i]
		l.counts(&p.counts)
		l.eachClient(func(c *client) {
			if keep(c) {
				p.ids = append(p.ids, c.id)
			}
		})
	})
	if err != nil {
		return SensorPage{}, err
	}
	for _, p := range parts {
		slices.Sort(p.ids) // here, not on the loop: sensors wait for nothing
	}
	var page SensorPage
	lists := make([][]string, len(parts))
	for i, p := range parts {
		lists[i] = p.ids
		page.Matching += len(p.ids)
		page.Counts.Active += p.counts.Active
		page.Counts.Asleep += p.counts.Asleep
		page.Counts.Awake += p.counts.Awake
		page.Counts.Registrations += p.counts.Registrations
		page.Counts.Forwarded += p.counts.Forwarded
		page.Counts.Forwarders += p.counts.Forwarders
	}
	want := pageOf(lists, q.Offset, q.Limit)
	page.Sensors = []Sensor{}
	if len(want) == 0 {
		return page, nil
	}
	wanted := make(map[string]bool, len(want))
	for _, id := range want {
		wanted[id] = true
	}
	found := make([][]Sensor, len(g.loops))
	err = g.onLoops(ctx, func(i int, l *loop) {
		l.eachClient(func(c *client) {
			if wanted[c.id] && keep(c) {
				found[i] = append(found[i], c.sensor())
			}
		})
	})
	if err != nil {
		return SensorPage{}, err
	}
	for _, f := range found {
		page.Sensors = append(page.Sensors, f...)
	}
	slices.SortFunc(page.Sensors, func(a, b Sensor) int {
		return cmpSensor(a.ClientID, a.Address, a.Node, b.ClientID, b.Address, b.Node)
	})
	// Ids are not unique before CONNECT completes (""), so the second pass
	// can find more than Limit; keep the page to Limit.
	page.Sensors = page.Sensors[:min(len(page.Sensors), q.Limit)]
	for i := range page.Sensors {
		if info, ok := g.broker.Session(page.Sensors[i].ClientID); ok {
			page.Sensors[i].Queued = info.Queued
		}
	}
	return page, nil
}

// pageOf merges sorted lists and returns limit ids from offset on.
func pageOf(lists [][]string, offset, limit int) []string {
	var out []string
	pos := make([]int, len(lists))
	for n := 0; len(out) < limit; n++ {
		best := -1
		for i, l := range lists {
			if pos[i] < len(l) && (best < 0 || l[pos[i]] < lists[best][pos[best]]) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		if n >= offset {
			out = append(out, lists[best][pos[best]])
		}
		pos[best]++
	}
	return out
}

// matcher is a search: a case-insensitive substring of the client id, or a
// substring of the address.
type matcher struct {
	lower string
	addr  bool // the search could be part of an address
}

func newMatcher(search string) matcher {
	return matcher{lower: strings.ToLower(search), addr: strings.Trim(search, "0123456789abcdefABCDEF.:[]%") == ""}
}

// match reports whether c matches. It formats the address (an
// allocation) only when the id does not match and the search could be
// part of an address.
func (m matcher) match(c *client) bool {
	if m.lower == "" || containsFold(c.id, m.lower) {
		return true
	}
	return m.addr && strings.Contains(c.key.addr.String(), m.lower)
}

// containsFold reports whether s contains lower (in lower case), ignoring
// ASCII case, without allocating.
func containsFold(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		j := 0
		for ; j < len(lower); j++ {
			b := s[i+j]
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			if b != lower[j] {
				break
			}
		}
		if j == len(lower) {
			return true
		}
	}
	return false
}

// Sensor returns the sensor with clientID, its topic registrations and its
// core session; false if the gateway has no client with that id. It is
// safe for concurrent use.
func (g *Gateway) Sensor(ctx context.Context, clientID string) (SensorDetail, bool, error) {
	found := make([]*SensorDetail, len(g.loops))
	err := g.onLoops(ctx, func(i int, l *loop) {
		l.eachClient(func(c *client) {
			if c.id != clientID || found[i] != nil {
				return
			}
			d := &SensorDetail{Sensor: c.sensor(), Topics: []Topic{}}
			for _, e := range c.topics.entries {
				d.Topics = append(d.Topics, Topic{ID: e.id, Name: e.name})
			}
			found[i] = d
		})
	})
	if err != nil {
		return SensorDetail{}, false, err
	}
	for _, d := range found {
		if d == nil {
			continue
		}
		slices.SortFunc(d.Topics, func(a, b Topic) int { return int(a.ID) - int(b.ID) })
		if info, ok := g.broker.Session(clientID); ok {
			d.Session = &info
			d.Queued = info.Queued
		}
		return *d, true, nil
	}
	return SensorDetail{}, false, nil
}

// cmpSensor orders sensors by client id, then address and node (ids are
// not unique before CONNECT completes).
func cmpSensor(aID, aAddr, aNode, bID, bAddr, bNode string) int {
	if c := strings.Compare(aID, bID); c != 0 {
		return c
	}
	if c := strings.Compare(aAddr, bAddr); c != 0 {
		return c
	}
	return strings.Compare(aNode, bNode)
}
