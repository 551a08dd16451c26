package gateway

import (
	"time"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// Connection Encapsulation (CSD01 3.18, digest C.5): a 2.0 client whose
// network address changed (a NAT rebinding, a new radio route) wraps a
// packet in an envelope naming its client id, and the gateway re-binds the
// client's virtual connection to the new address. Only a client whose
// CONNECT set "allow network address changes" can be re-bound: anyone who
// knows a client id can send the envelope, which is why the client must
// opt in (and why a DTLS link's identity binding applies first). For any
// other client id the answer is DISCONNECT "no virtual connection", the
// same answer as for a client id that does not exist, so the envelope
// does not reveal which client ids are connected.
//
// The envelope is allowed around PUBLISH, SUBSCRIBE, UNSUBSCRIBE,
// REGISTER, DISCONNECT, SLEEPREQ and PINGREQ (snpacket.ConnEncapsulationAllows);
// around anything else it is a protocol error. From the client's own
// address the envelope is simply unwrapped.
//
// A re-bind moves the client between loops as an address migration does
// (migrate.go): the owning loop parks the client's core session (detached
// as asleep for rebindPark, so nothing is lost and no will is published),
// copies the client for the loop of the new address and forgets the old
// struct; the new loop attaches it again and handles the wrapped packet.
// An exchange in flight is resent by the core with DUP.

// rebindPark is how long a core session waits, detached, for the loop of
// the client's new address to attach it again. The move takes two event
// posts; the bound only matters if the gateway closes meanwhile.
const rebindPark = 5 * time.Minute

// rebind is one re-bind of a 2.0 client to a new address, posted from the
// loop that received the envelope to the loop that owns the client, and
// back with the copy.
type rebind struct {
	id  string
	key clientKey // the new address
	raw []byte    // the datagram, copied: its inner packet is handled at the end
	to  *loop     // the loop of the new address
	c   *client   // set by the owner: the client, re-keyed for to
	v2  *v2conn   // set by the owner: its 2.0 state
	was State     // the client's state before the move
	// provisional: the client's session still had expiry 0 for probation
	// (probation.go); the re-bound client gets its configured expiry.
	provisional bool
}

// indexMovable records (or with on=false forgets) that c, a 2.0 client,
// may be re-bound by a Connection Encapsulation.
func (c *client) indexMovable(on bool) {
	g, l := c.l.g, c.l
	g.asleepMu.Lock()
	if on {
		if g.movableOwner == nil {
			g.movableOwner = map[string]*loop{}
		}
		g.movableOwner[c.id] = l
	} else if g.movableOwner[c.id] == l && l.movable[c.id] == c {
		delete(g.movableOwner, c.id)
	}
	g.asleepMu.Unlock()
	if on {
		if l.movable == nil {
			l.movable = map[string]*client{}
		}
		l.movable[c.id] = c
	} else if l.movable[c.id] == c {
		delete(l.movable, c.id)
	}
}

// onConnEncapsulation handles a Connection Encapsulation from the address
// of c, a 2.0 client: from the client itself it is unwrapped; naming
// another client id it is ignored (the address belongs to c).
func (c *client) onConnEncapsulation(m *sn.ConnEncapsulation) {
	if string(m.ClientID) != c.id {
		c.unexpectedV2(m)
		return
	}
	if !sn.ConnEncapsulationAllows(m.Inner.Type()) {
		c.protocolError(sn.ProtocolError, "connection encapsulation around "+m.Inner.Type().String())
		return
	}
	c.handleV2(m.Inner)
}

// connEncapsulated handles a Connection Encapsulation from an address
// without a client: a re-bind, if the named client allows it.
func (l *loop) connEncapsulated(key clientKey, m *sn.ConnEncapsulation, raw []byte) {
	g := l.g
	id := string(m.ClientID)
	if m.Paho {
		g.stats.v2Unsupported.Add(1) // Eclipse Paho's envelope-only form (docs/mqttsn-2.md)
		return
	}
	if !sn.ConnEncapsulationAllows(m.Inner.Type()) || !identityAllows(key.link, key.addr, id) {
		l.refuseUnknownV2(key, nil)
		return
	}
	g.asleepMu.Lock()
	owner := g.movableOwner[id]
	g.asleepMu.Unlock()
	if owner == nil {
		l.refuseUnknownV2(key, nil) // unknown, or did not allow address changes
		return
	}
	rb := &rebind{id: id, key: key, raw: append([]byte(nil), raw...), to: l}
	if owner == l {
		l.handleRebind(rb)
		return
	}
	owner.post(coreEvent{rebind: rb})
}

// handleRebind runs a step of a re-bind on the loop it was posted to: on
// the owner it hands the client over, on the target it takes the client
// in and handles the wrapped packet.
func (l *loop) handleRebind(rb *rebind) {
	if rb.c == nil { // the owner's step
		c := l.movable[rb.id]
		if c == nil || c.removed || !c.isV2 || !c.v2.allowMove {
			l.refuseUnknownV2(rb.key, nil) // left or changed meanwhile
			return
		}
		v := *c.v2
		nc := &client{
			l: rb.to, key: rb.key, id: c.id, state: c.state, isV2: true,
			keepAlive: c.keepAlive, timerAt: c.timerAt, topics: c.topics, regID: c.regID, clean: c.clean,
		}
		rb.was, rb.provisional = c.state, c.provisional
		if c.conn != nil {
			_ = c.conn.Sleep(rebindPark) // parked: the target attaches it again
			c.detach()
		}
		if c.state == StateAsleep {
			nc.timerAt = c.timerAt
		} else {
			nc.timerAt = 0
		}
		old := c.key.addr
		l.g.stats.clients.Add(1) // the place among max_clients moves with the client
		c.indexMovable(false)
		l.removeClient(c)
		l.g.stats.v2Rebound.Add(1)
		l.g.log.Info("sensor re-bound to a new address", "client_id", c.id, "from", old, "remote", rb.key.addr)
		rb.c, rb.v2 = nc, &v
		if rb.to != l {
			rb.to.post(coreEvent{rebind: rb})
			return
		}
	}
	// The target's step.
	c := rb.c
	if l.lookup(c.key, nil) != nil {
		// Another client started at the new address meanwhile; the core
		// session stays parked (or asleep) until its deadline.
		l.g.stats.clients.Add(-1)
		return
	}
	c.v2 = rb.v2
	l.index(c) // its place among max_clients was kept on the way
	c.indexMovable(true)
	c.lastSeen = l.now()
	if rb.was != StateAsleep {
		if err := c.attach(false, nil, true); err != nil {
			c.lose("re-bind refused by the core")
			return
		}
		if rb.provisional {
			_ = c.conn.SetSessionExpiry(c.sessionExpiry())
		}
	}
	l.schedule(c)
	if m, err := l.dec2.Decode(rb.raw); err == nil {
		if e, ok := m.(*sn.ConnEncapsulation); ok {
			c.handleV2(e.Inner)
		}
	}
	if !c.removed {
		c.deliver() // what the core resends after the re-attach
	}
	if !c.removed && c.state == StateAsleep && c.conn == nil {
		// Still asleep (the wrapped packet did not wake it): the core's
		// WAKEUP callback is the old client's; the next one comes here.
		l.g.broker.NotifyAsleep(c.id, c.queuedWhileAsleep)
	}
	c.checkState()
}
