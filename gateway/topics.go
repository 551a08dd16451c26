package gateway

import (
	"net/netip"
	"strings"
)

// A client's normal topic ids live in its registry: per client, as the
// specification recommends (§7.3), so a wrong id from one client cannot hit
// another's topic. Ids are allocated from 1 and reused once free.
//
// An entry is kept for as long as something needs it: the client registered
// it (REGISTER), it subscribed to the exact name (SUBSCRIBE by name), or the
// gateway registered it to the client to deliver a message (REGISTER from
// the gateway). Gateway-registered entries live until the session ends or
// the client reconnects, because the client may receive on them at any time.

// Reasons an entry is kept (topicEntry.flags).
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

// clear removes flag from the entry for name and frees the id when nothing
// keeps it any more.
func (r *registry) clear(name string, flag uint8) {
	for i := range r.entries {
		if r.entries[i].name == name {
			r.entries[i].flags &^= flag
			if r.entries[i].flags&(byClient|bySub|byGateway) == 0 {
				r.remove(i)
			}
			return
		}
	}
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

// predefined holds the configured predefined topic ids, shared read-only by
// every loop.
type predefined struct {
	global    map[uint16]string            // may hold templates
	perClient map[string]map[uint16]string // client id -> id -> topic
	byName    map[string]uint16            // global, non-template topics
	templates []topicEntry                 // global templates, for reverse lookup
}

const clientIDPlaceholder = "{client_id}"

func newPredefined(list []PredefinedTopic) *predefined {
	p := &predefined{global: map[uint16]string{}, perClient: map[string]map[uint16]string{}, byName: map[string]uint16{}}
	for _, t := range list {
		if t.ClientID != "" {
			if p.perClient[t.ClientID] == nil {
				p.perClient[t.ClientID] = map[uint16]string{}
			}
			p.perClient[t.ClientID][t.ID] = t.Topic
			continue
		}
		p.global[t.ID] = t.Topic
		if strings.Contains(t.Topic, clientIDPlaceholder) {
			p.templates = append(p.templates, topicEntry{name: t.Topic, id: t.ID})
		} else {
			p.byName[t.Topic] = t.ID
		}
	}
	return p
}

// topic returns the topic name of predefined id for clientID, expanding a
// template. It allocates only for templates.
func (p *predefined) topic(clientID string, id uint16) (string, bool) {
	if m := p.perClient[clientID]; m != nil {
		if t, ok := m[id]; ok {
			return t, true
		}
	}
	t, ok := p.global[id]
	if ok && strings.Contains(t, clientIDPlaceholder) {
		t = strings.ReplaceAll(t, clientIDPlaceholder, clientID)
	}
	return t, ok
}

// id returns the predefined id under which clientID knows topic, if any.
func (p *predefined) id(clientID, topic string) (uint16, bool) {
	for id, t := range p.perClient[clientID] {
		if t == topic {
			return id, true
		}
	}
	if id, ok := p.byName[topic]; ok {
		if _, shadowed := p.perClient[clientID][id]; !shadowed {
			return id, true
		}
	}
	for _, e := range p.templates {
		if matchTemplate(e.name, clientID, topic) {
			if _, shadowed := p.perClient[clientID][e.id]; !shadowed {
				return e.id, true
			}
		}
	}
	return 0, false
}

// matchTemplate reports whether topic is template with every {client_id}
// replaced by clientID, without building the expansion.
func matchTemplate(template, clientID, topic string) bool {
	for {
		i := strings.Index(template, clientIDPlaceholder)
		if i < 0 {
			return template == topic
		}
		if !strings.HasPrefix(topic, template[:i]) || !strings.HasPrefix(topic[i:], clientID) {
			return false
		}
		topic = topic[i+len(clientID):]
		template = template[i+len(clientIDPlaceholder):]
	}
}

// allowed reports whether src may publish at QoS -1.
func allowed(prefixes []netip.Prefix, src netip.Addr) bool {
	if len(prefixes) == 0 {
		return true
	}
	src = src.Unmap()
	for _, p := range prefixes {
		if p.Contains(src) {
			return true
		}
	}
	return false
}
