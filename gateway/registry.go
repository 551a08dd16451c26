package gateway

import (
	"bytes"

	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// A client's normal topic ids live in its registry: per client, as the
// specification recommends (§7.3), so a wrong id from one client cannot hit
// another's topic. Ids are allocated from 1.
//
// An id, once issued, stays valid until the client CONNECTs again (ids start
// afresh with each connection) or tells the gateway it lost the mapping (a
// PUBACK "invalid topic id" for a gateway PUBLISH): whether the client
// REGISTERed it, got it in a SUBACK, or the gateway REGISTERed it to deliver
// a message. In particular UNSUBSCRIBE does not free a SUBACK's id: a client
// may keep publishing on it, and at QoS 0 or -1 it would never learn that the
// id had become invalid, so its messages would be lost without a trace
// (docs/spec-interpretation.md G6). max_topics_per_client bounds the ids a
// client holds; ids survive sleep and wake.

// How an id was issued (topicEntry.flags), plus the client's refusal of a
// gateway REGISTER.
const (
	byClient   uint8 = 1 << iota // the client REGISTERed the name
	bySub                        // the client subscribed to the exact name
	byGateway                    // the gateway REGISTERed it to the client
	rejectedID                   // the client refused our REGISTER: do not deliver
)

type topicEntry struct {
	name  string
	id    uint16
	flags uint8
}

// registry maps a client's normal topic ids to names and back. A client has
// few topics, so a slice with linear search beats a pair of maps in both
// memory (a sleeping client pays for it) and speed.
type registry struct {
	entries []topicEntry
	next    uint16 // where the search for a free id starts
}

func (r *registry) byID(id uint16) *topicEntry {
	for i := range r.entries {
		if r.entries[i].id == id {
			return &r.entries[i]
		}
	}
	return nil
}

// byName finds name given as bytes, without allocating.
func (r *registry) byName(name []byte) *topicEntry {
	for i := range r.entries {
		if r.entries[i].name == string(name) {
			return &r.entries[i]
		}
	}
	return nil
}

func (r *registry) byNameString(name string) *topicEntry {
	for i := range r.entries {
		if r.entries[i].name == name {
			return &r.entries[i]
		}
	}
	return nil
}

// add returns the entry for name, creating it with a free id if needed, and
// marks it with flag. It returns nil when max ids are in use.
func (r *registry) add(name string, flag uint8, max int) *topicEntry {
	if e := r.byNameString(name); e != nil {
		e.flags |= flag
		return e
	}
	if len(r.entries) >= max {
		return nil
	}
	id := r.next
	for {
		if id == 0 || id == 0xFFFF { // reserved
			id = 1
		}
		if r.byID(id) == nil {
			break
		}
		id++
	}
	r.next = id + 1
	r.entries = append(r.entries, topicEntry{name: name, id: id, flags: flag})
	return &r.entries[len(r.entries)-1]
}

// removeID forgets id, as after a client's PUBACK "invalid topic id".
func (r *registry) removeID(id uint16) {
	for i := range r.entries {
		if r.entries[i].id == id {
			r.remove(i)
			return
		}
	}
}

func (r *registry) remove(i int) {
	last := len(r.entries) - 1
	r.entries[i] = r.entries[last]
	r.entries[last] = topicEntry{}
	r.entries = r.entries[:last]
	if len(r.entries) == 0 {
		r.entries = nil // a sleeping client should not keep an empty array
	}
}

func (r *registry) reset() { *r = registry{} }

// onRegister assigns a topic id to a topic name the client will publish to
// (§6.5). A name already known keeps its id.
func (c *client) onRegister(m *sn.Register) {
	rc, id := sn.Accepted, uint16(0)
	if bytes.ContainsAny(m.TopicName, "+#") {
		rc = sn.RejectedNotSupported // REGISTER is for publishing: no wildcards
	} else if !c.mayPublish(string(m.TopicName)) {
		rc = sn.RejectedNotSupported // the ACL: told now rather than at PUBLISH
	} else if e := c.topics.byName(m.TopicName); e != nil {
		e.flags = e.flags&^rejectedID | byClient
		id = e.id
	} else if e := c.addTopic(string(m.TopicName), byClient); e != nil {
		id = e.id
		c.saveState(false) // persist.go: the new id survives a restart
	} else {
		rc = sn.RejectedCongestion
		c.l.g.limitHit(LimitTopicsPerClient, c.id, c.key.addr, nil)
	}
	if rc != sn.Accepted {
		c.l.g.stats.rejected.Add(1)
	}
	c.l.tx.regack = sn.Regack{TopicID: id, MsgID: m.MsgID, ReturnCode: rc}
	c.send(&c.l.tx.regack)
}

// register starts the gateway's REGISTER of d's topic to the client, which
// knows no id for it (§6.10); the delivery of d waits for the REGACK. A
// topic the client refused before, or one beyond max_topics_per_client, is
// not delivered to it.
func (c *client) register(d mqttcore.Delivery) {
	e := c.addTopic(d.Message.Topic, byGateway)
	if e == nil || e.flags&rejectedID != 0 {
		if e == nil {
			c.l.g.stats.rejected.Add(1)
			c.l.g.limitHit(LimitTopicsPerClient, c.id, c.key.addr, nil)
		}
		c.abandon(d)
		return
	}
	c.regID++
	if c.regID == 0 {
		c.regID = 1
	}
	c.setOut(outFlight{kind: exchangeRegister, msgID: c.regID, topicID: e.id, d: d})
	c.sendRegister()
	c.armRetry()
}

func (c *client) sendRegister() {
	e := c.topics.byID(c.out.topicID)
	c.l.tx.register = sn.Register{TopicID: c.out.topicID, MsgID: c.out.msgID, TopicName: []byte(e.name)}
	c.send(&c.l.tx.register)
}

func (c *client) onRegack(m *sn.Regack) {
	if c.out.kind != exchangeRegister || m.MsgID != c.out.msgID {
		c.unexpected(m)
		return
	}
	d, id := c.out.d, c.out.topicID
	c.setOut(outFlight{})
	c.timerAt = 0
	if m.ReturnCode != sn.Accepted {
		// A refused REGISTER counts as unsubscribing from that exact topic
		// (§6.10); a wildcard subscription stays, so later messages on the
		// topic are dropped for this client instead of asked about again.
		if e := c.topics.byID(id); e != nil {
			e.flags |= rejectedID
			_, _ = c.conn.Unsubscribe(e.name)
		}
		c.abandon(d)
		c.deliver()
		return
	}
	c.saveState(false) // persist.go: the id the client accepted survives a restart
	c.publish(d, sn.TopicIDNormal, id)
	if c.out.kind == exchangeNone {
		c.deliver() // QoS 0: nothing to wait for
	}
}
