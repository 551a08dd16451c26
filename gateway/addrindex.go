package gateway

import "net/netip"

// The loop's address index: how a datagram finds its client. Every client,
// so every sleeping sensor, has an entry, so the keys are compact.

// linkClients are a loop's clients on one link, by source address. Every
// client, so every sleeping sensor, has an entry here: the key is compact.
type linkClients struct {
	direct    map[addrKey]*client
	forwarded map[addrKey]map[string]*client // node id -> client
}

// addrKey is a source address as the maps key it: 24 octets instead of
// netip.AddrPort's 32 (which holds a pointer for the zone). IPv6 zones are
// not part of it, so two link-local senders with the same address and port
// on two interfaces of one link would be taken for one.
type addrKey struct {
	ip   [16]byte
	port uint16
	v4   bool
}

func keyOf(a netip.AddrPort) addrKey {
	ip := a.Addr()
	return addrKey{ip: ip.As16(), port: a.Port(), v4: ip.Is4()}
}

// lookup finds the client at key (and forwarder node id), or nil.
func (l *loop) lookup(key clientKey, node []byte) *client {
	lc := l.clients[key.link]
	if lc == nil {
		return nil
	}
	if node == nil {
		return lc.direct[keyOf(key.addr)]
	}
	return lc.forwarded[keyOf(key.addr)][string(node)]
}

// insert adds c to the loop's maps under its key and counts it. Use it for
// clients that already hold a place among max_clients (restored, migrated);
// new ones get theirs through admit (probation.go).
func (l *loop) insert(c *client) {
	l.index(c)
	l.g.stats.clients.Add(1)
}

// index adds c to the loop's maps under its key, without counting it.
func (l *loop) index(c *client) {
	lc := l.clients[c.key.link]
	if lc == nil {
		lc = &linkClients{direct: map[addrKey]*client{}, forwarded: map[addrKey]map[string]*client{}}
		l.clients[c.key.link] = lc
	}
	k := keyOf(c.key.addr)
	st := &l.g.stats
	if !c.fwd {
		lc.direct[k] = c
	} else {
		m := lc.forwarded[k]
		if m == nil {
			m = map[string]*client{}
			lc.forwarded[k] = m
			st.forwarders.Add(1)
		}
		if _, dup := m[c.node]; !dup {
			st.forwarded.Add(1) // the number of entries, as Counts sees them
		}
		m[c.node] = c
	}
	if c.state == StateAsleep {
		st.asleep.Add(1)
	}
	if g := st.stateGauge(c.state); g != nil {
		g.Add(1)
	}
	st.registrations.Add(int64(len(c.topics.entries)))
}

func (l *loop) removeClient(c *client) {
	if c.removed {
		return
	}
	c.markRemoved()
	l.endProbation(c) // probation.go
	l.unschedule(c)
	delete(l.subacks, c)
	if c.isV2 {
		c.indexMovable(false) // connencap.go
	}
	if c.inDialogue {
		delete(l.dialogues, c)
	}
	if lc := l.clients[c.key.link]; lc != nil {
		k := keyOf(c.key.addr)
		if !c.fwd {
			delete(lc.direct, k)
		} else if m := lc.forwarded[k]; m != nil {
			if _, ok := m[c.node]; ok {
				delete(m, c.node)
				l.g.stats.forwarded.Add(-1)
			}
			if len(m) == 0 {
				delete(lc.forwarded, k)
				l.g.stats.forwarders.Add(-1)
			}
		}
	}
	if g := l.g.stats.stateGauge(c.state); g != nil {
		g.Add(-1)
	}
	l.g.stats.registrations.Add(-int64(len(c.topics.entries)))
	l.g.stats.clients.Add(-1)
	if c.state == StateAsleep {
		l.g.stats.asleep.Add(-1)
		c.indexAsleep(false)
	}
}
