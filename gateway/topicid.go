package gateway

import (
	"sync/atomic"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// Topic ids. MQTT-SN names a topic on the wire in one of three id spaces,
// told apart by the message's TopicIdType:
//
//   - normal: a per-client id from the client's registry (registry.go),
//     assigned by REGISTER, REGACK or SUBACK;
//   - predefined: an id from the configured table (predefined.go), global
//     or for one client id, possibly a template with {client_id};
//   - short: the two characters of a two-character topic name.
//
// resolver is the one place that maps between ids and topic names. Every
// message that carries a topic id goes through it: PUBLISH from a client
// and from a QoS -1 sender, SUBSCRIBE and UNSUBSCRIBE by predefined id or
// short name, and delivery to a client. Whatever decides on a topic (the
// core, access rules) sees only names: resolve the id first.

// resolver maps topic ids to topic names and back. It is shared by every
// loop; the registry it is given belongs to the calling loop. The
// predefined table is read-only once stored and replaced whole by
// SetPredefined (a reload).
type resolver struct {
	pre atomic.Pointer[predefined]
}

// name returns the topic name that id, of type typ, stands for when
// clientID sends it. reg is the sender's registry, nil for a sender
// without one (QoS -1): it holds no normal ids. ok is false for an id the
// sender does not hold, including a normal id the sender refused in a
// REGACK. Only a predefined template allocates.
func (r *resolver) name(clientID string, reg *registry, typ sn.TopicIDType, id uint16) (topic string, ok bool) {
	switch typ {
	case sn.TopicIDNormal:
		if reg == nil {
			return "", false
		}
		if e := reg.byID(id); e != nil && e.flags&rejectedID == 0 {
			return e.name, true
		}
		return "", false
	case sn.TopicIDPredefined:
		return r.pre.Load().topic(clientID, id)
	case sn.TopicIDShort:
		n := sn.ShortTopicName(id)
		return string(n[:]), true
	}
	return "", false
}

// id returns how clientID knows topic, in order of preference: a normal id
// in its registry, a predefined id, or a short name. ok is false when the
// client knows none, and the gateway must REGISTER the name first.
func (r *resolver) id(clientID string, reg *registry, topic string) (typ sn.TopicIDType, id uint16, ok bool) {
	if e := reg.byNameString(topic); e != nil && e.flags&rejectedID == 0 {
		return sn.TopicIDNormal, e.id, true
	}
	if id, ok := r.pre.Load().id(clientID, topic); ok {
		return sn.TopicIDPredefined, id, true
	}
	if id, ok := sn.ShortTopicID(topic); ok {
		return sn.TopicIDShort, id, true
	}
	return 0, 0, false
}

// topicName resolves a topic id the client sent.
func (c *client) topicName(typ sn.TopicIDType, id uint16) (string, bool) {
	return c.l.g.ids.name(c.id, &c.topics, typ, id)
}

// topicFor finds how the client knows topic, for delivering a message to it.
func (c *client) topicFor(topic string) (sn.TopicIDType, uint16, bool) {
	return c.l.g.ids.id(c.id, &c.topics, topic)
}
