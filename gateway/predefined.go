package gateway

import "strings"

// predefined holds the configured predefined topic ids, shared read-only by
// every loop.
type predefined struct {
	global    map[uint16]string            // may hold templates
	perClient map[string]map[uint16]string // client id -> id -> topic
	byName    map[string]uint16            // global, non-template topics
	templates []topicEntry                 // global templates, for reverse lookup
}

const clientIDPlaceholder = "{client_id}"

// SetPredefined replaces the predefined topic ids (a configuration
// reload), checked as Config.Validate checks them; on an error nothing
// changes. Sessions are kept: a client's next message with an id no longer
// defined is refused with "invalid topic id", as any unknown id is, and a
// delivery to a topic no longer predefined for it is REGISTERed first.
func (g *Gateway) SetPredefined(list []PredefinedTopic) error {
	if err := (&Config{Predefined: list}).Validate(); err != nil {
		return err
	}
	g.ids.pre.Store(newPredefined(list))
	return nil
}

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
