package gateway

import (
	"strings"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// Address migration: a sleeping sensor behind a NAT often wakes from a new
// address. On plain UDP the address is the sensor's only identity, so by
// default it must CONNECT again from there (which takes its core session
// over). When Config.AddressMigration names the sensor, a PINGREQ carrying
// its client id from an unknown address wakes it instead: its gateway state
// (topic ids included) moves to the new address. Anyone who can send a
// datagram and knows the client id can then collect the sensor's buffered
// messages, which is why it is off by default; with DTLS the link's identity
// check applies first (docs/security.md).
//
// Only asleep clients can move, and only they are indexed by client id: the
// index costs nothing while the feature is off. A client moves between loops
// by value: the owning loop copies it into a new struct for the target loop
// and forgets the old one (its stale timer entries see it removed), so no
// struct is ever touched by two goroutines.

// migration is one move of an asleep client to a new address, posted from
// the loop that received the PINGREQ to the loop that owns the client, and
// back with the copy.
type migration struct {
	id   string
	key  clientKey // the new address
	node []byte    // the new forwarder node id, or nil (owned: copied)
	to   *loop     // the loop the new address belongs to
	c    *client   // set by the owner: the client, re-keyed for to
}

// mayMigrate reports whether the configuration lets clientID wake from a new
// address. Patterns are exact ids, or prefixes ending in "*".
func (g *Gateway) mayMigrate(clientID string) bool {
	for _, p := range g.live().AddressMigration {
		if p == clientID || strings.HasSuffix(p, "*") && strings.HasPrefix(clientID, p[:len(p)-1]) {
			return true
		}
	}
	return false
}

// indexAsleep records (or with on=false forgets) that c is asleep in its
// loop, so that a wake from another address can find it.
//
// Forgetting does not ask the configuration: address_migration may have
// changed (a reload) since c was recorded, and a record must not outlive
// its client.
func (c *client) indexAsleep(on bool) {
	g := c.l.g
	if c.id == "" {
		return
	}
	if on && (len(g.live().AddressMigration) == 0 || !g.mayMigrate(c.id)) {
		return
	}
	if !on && c.l.asleepByID[c.id] != c {
		return // never recorded (the loop's own map: no lock)
	}
	g.asleepMu.Lock()
	if on {
		g.asleepOwner[c.id] = c.l
	} else if g.asleepOwner[c.id] == c.l {
		delete(g.asleepOwner, c.id)
	}
	g.asleepMu.Unlock()
	if on {
		c.l.asleepByID[c.id] = c
	} else if c.l.asleepByID[c.id] == c {
		delete(c.l.asleepByID, c.id)
	}
}

// wakeFromNewAddress handles a PINGREQ with a client id from an address the
// loop does not know. It reports false when the datagram is to be refused.
func (l *loop) wakeFromNewAddress(key clientKey, node []byte, m *sn.PingReq) bool {
	g := l.g
	if len(m.ClientID) == 0 || len(g.live().AddressMigration) == 0 || !g.mayMigrate(string(m.ClientID)) {
		return false
	}
	if !identityAllows(key.link, key.addr, string(m.ClientID)) { // identity.go: no waking as another DTLS identity
		g.stats.identityRefused.Add(1)
		return false
	}
	id := string(m.ClientID)
	g.asleepMu.Lock()
	owner := g.asleepOwner[id]
	g.asleepMu.Unlock()
	if owner == nil {
		return false
	}
	mv := &migration{id: id, key: key, to: l}
	if node != nil { // keep nil (direct) apart from an empty node id (forwarded)
		mv.node = append([]byte{}, node...)
	}
	if owner == l {
		l.handleMigration(mv)
		return true
	}
	owner.post(coreEvent{move: mv})
	return true
}

// handleMigration runs a step of a move on the loop it was posted to: on the
// owner it hands the client over, on the target it takes the client in and
// wakes it.
func (l *loop) handleMigration(mv *migration) {
	if mv.c == nil { // the owner's step
		c := l.asleepByID[mv.id]
		if c == nil || c.removed || c.state != StateAsleep || c.isV2 {
			// (A 2.0 client is woken only by its own PINGREQ, which names
			// no client id; a 1.2 PINGREQ must not take it over.)
			l.refuseUnknown(mv.key, mv.node) // woke or left meanwhile
			return
		}
		nc := &client{
			l: mv.to, key: mv.key, node: string(mv.node), fwd: mv.node != nil, id: c.id, state: StateAsleep,
			keepAlive: c.keepAlive, sleepFor: c.sleepFor, timerAt: c.timerAt, topics: c.topics, regID: c.regID,
		}
		old := c.key.addr
		l.g.stats.clients.Add(1) // the place among max_clients moves with the client
		l.removeClient(c)
		l.g.stats.migrated.Add(1)
		l.g.log.Info("sensor woke from a new address", "client_id", c.id, "from", old, "remote", mv.key.addr)
		mv.c = nc
		if mv.to != l {
			mv.to.post(coreEvent{move: mv})
			return
		}
	}
	// The target's step.
	c := mv.c
	if l.lookup(c.key, mv.node) != nil {
		// Another client started at the new address meanwhile; the core
		// session stays asleep until its own deadline.
		l.g.stats.clients.Add(-1) // the place it held
		return
	}
	l.index(c) // its place among max_clients was kept on the way
	c.indexAsleep(true)
	c.lastSeen = l.now()
	l.schedule(c)
	c.onPingReq(&sn.PingReq{ClientID: []byte(c.id)})
	c.checkState()
}
