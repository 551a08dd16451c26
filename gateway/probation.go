package gateway

import (
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// Admission and probation: how a CONNECT from a source with no client state
// gets a place, and how a flood of them is kept from crowding out the
// clients that are really there.
//
// A place among max_clients is reserved before the client exists
// (reserveClient: add, then check, then undo), so loops admitting at the same
// time never overshoot the limit by even one.
//
// A new client is on probation until it sends a datagram after its CONNACK
// (any message but CONNECT and SEARCHGW): a CONNECT with a spoofed source
// address never does, since the CONNACK goes to somebody else. Each loop
// holds at most its share of max_unverified clients on probation, oldest
// first; a new CONNECT beyond that share evicts the oldest. max_clients is
// a hard limit: a CONNECT beyond it is refused. While on probation a session the CONNECT created has expiry 0, so
// it ends (and leaves the core) when the client is evicted, lost or gone; it
// gets the configured session_expiry when the client is verified. A session
// that existed before (the client id was known) keeps its expiry: evicting
// a stranger who used a known id does not end the real sensor's session.
//
// This is no authentication: a sender that guesses a CONNACK and sends a
// second datagram blind is verified. It keeps cheap floods (one datagram per
// fake client) from displacing anybody who completed an exchange; the
// per-source rate limits and the core's session budget bound the rest.

// probationQueue is a loop's clients on probation, oldest first. Verified
// and removed clients are skipped lazily, so the slice may hold stale
// entries; it is compacted when they are the majority.
type probationQueue struct {
	q    []*client
	head int // q[:head] are consumed
	n    int // clients on probation (live entries)
}

// reserveClient takes one of max_clients' places; false when all are taken.
func (g *Gateway) reserveClient() bool {
	if g.stats.clients.Add(1) > int64(g.live().MaxClients) {
		g.stats.clients.Add(-1)
		return false
	}
	return true
}

// admit makes a client for a CONNECT from key, on probation, evicting the
// oldest client on probation when the loop's share of max_unverified is
// taken. It returns nil when max_clients has no place: the caller refuses
// the CONNECT. (Strangers hold at most max_unverified places, so with
// max_unverified well below max_clients a flood cannot fill max_clients.)
func (l *loop) admit(key clientKey, node []byte, id []byte) *client {
	if l.probation.n >= l.g.live().unverifiedPerLoop {
		l.evictUnverified(key, id)
	}
	if !l.g.reserveClient() {
		return nil
	}
	c := &client{l: l, key: key, state: StateActive, lastSeen: l.now(), probation: true}
	if node != nil {
		c.node, c.fwd = string(node), true // a copy: node aliases the datagram
	}
	l.index(c) // counted by reserveClient
	pq := &l.probation
	pq.q = append(pq.q, c)
	pq.n++
	l.g.stats.unverified.Add(1)
	return c
}

// evictUnverified removes the loop's oldest client on probation to make room
// for a CONNECT from key with client id id; it reports whether there was
// one. The eviction is a limit hit (max_unverified), counted and logged.
func (l *loop) evictUnverified(key clientKey, id []byte) bool {
	pq := &l.probation
	for pq.head < len(pq.q) {
		c := pq.q[pq.head]
		pq.q[pq.head] = nil
		pq.head++
		if c.removed || !c.probation {
			continue
		}
		l.g.limitHit(LimitUnverified, string(id), key.addr, nil)
		c.evict()
		pq.compact()
		return true
	}
	pq.compact()
	return false
}

// compact drops consumed and stale entries once they are the majority, so
// the queue's memory stays proportional to the clients on probation.
func (pq *probationQueue) compact() {
	if pq.head < 64 || pq.head < len(pq.q)/2 {
		return
	}
	live := pq.q[:0]
	for _, c := range pq.q[pq.head:] {
		if c != nil && !c.removed && c.probation {
			live = append(live, c)
		}
	}
	clear(pq.q[len(live):])
	pq.q, pq.head = live, 0
}

// endProbation takes c off probation (verified or removed).
func (l *loop) endProbation(c *client) {
	if !c.probation {
		return
	}
	c.probation = false
	l.probation.n--
	l.g.stats.unverified.Add(-1)
	if len(l.probation.q)-l.probation.head > 2*l.probation.n+64 {
		l.probation.compact()
	}
}

// verify ends c's probation when m, received from c, shows that c receives
// what the gateway sends: any message after its CONNACK but another
// CONNECT or a SEARCHGW. A session its CONNECT created gets the configured
// expiry now.
func (l *loop) verify(c *client, m sn.Message) {
	switch m.(type) {
	case *sn.Connect, *sn.SearchGW:
		return
	}
	l.verified(c)
}

// verified ends c's probation once it has its CONNACK: c sent something
// that only a client receiving the gateway's answers sends (verify; for
// 2.0, handleDatagramV2).
func (l *loop) verified(c *client) {
	if c.conn == nil || c.dialogue() != nil {
		return // no CONNACK yet
	}
	l.endProbation(c)
	if c.provisional {
		c.provisional = false
		if err := c.conn.SetSessionExpiry(c.sessionExpiry()); err != nil {
			l.g.log.Debug("session expiry not set", "client_id", c.id, "remote", c.key.addr, "err", err)
		}
	}
}

// evict ends a client on probation to make room: it is detached as
// disconnected (no will: the gateway, not the client, chose to end it), and
// a session its CONNECT created ends with it.
func (c *client) evict() {
	if c.conn != nil {
		_ = c.conn.Disconnect() // ErrDetached only: the session moved on already
		c.detach()
	}
	c.l.g.log.Debug("unverified client evicted", "client_id", c.id, "remote", c.key.addr)
	c.setState(StateDisconnected)
	c.l.removeClient(c)
}
