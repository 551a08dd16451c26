package snclient

import "github.com/gannet-mqtt/gannet/snpacket"

// The per-session topic tables (MQTT-SN 1.2 §7.3: kept per client). Normal
// topic ids come from REGACK (client REGISTER), SUBACK (non-wildcard
// subscription) and the gateway's REGISTER; predefined ids come from
// Options.PredefinedTopics and never change.

// storeTopicLocked records that normal topic id means name, both ways.
func (c *Client) storeTopicLocked(name string, id uint16) {
	if c.nameToID == nil {
		c.nameToID = make(map[string]uint16)
		c.idToName = make(map[uint16]string)
	}
	if old, ok := c.nameToID[name]; ok && old != id {
		delete(c.idToName, old)
	}
	c.nameToID[name] = id
	c.idToName[id] = name
}

// learnPredefinedLocked records that the gateway named 2.0 predefined
// alias id for name (a REGACK or SUBACK with Topic Type predefined), so
// that the client publishes with it and understands deliveries by it.
func (c *Client) learnPredefinedLocked(name string, id uint16) {
	if c.preLearned == nil {
		c.preLearned = make(map[uint16]string)
		c.preByName = make(map[string]uint16)
	}
	c.preLearned[id] = name
	c.preByName[name] = id
}

// predefinedName returns the name of predefined id id, from
// Options.PredefinedTopics or as the gateway named it.
func (c *Client) predefinedName(id uint16) (string, bool) {
	if name, ok := c.opts.PredefinedTopics[id]; ok {
		return name, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	name, ok := c.preLearned[id]
	return name, ok
}

// forgetTopicID drops normal topic id id, which the gateway called invalid.
func (c *Client) forgetTopicID(id uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name, ok := c.idToName[id]; ok {
		delete(c.idToName, id)
		if c.nameToID[name] == id {
			delete(c.nameToID, name)
		}
	}
}

// clearTopicsLocked forgets every normal topic id and incoming QoS 2 state,
// as a clean session starts.
func (c *Client) clearTopicsLocked() {
	c.nameToID, c.idToName, c.inQoS2 = nil, nil, nil
	c.preLearned, c.preByName = nil, nil
}

// resolve returns the topic name for a topic id the gateway sent, and
// whether it is known.
func (c *Client) resolve(typ snpacket.TopicIDType, id uint16) (string, bool) {
	switch typ {
	case snpacket.TopicIDNormal:
		c.mu.Lock()
		name, ok := c.idToName[id]
		c.mu.Unlock()
		return name, ok
	case snpacket.TopicIDPredefined:
		return c.predefinedName(id)
	case snpacket.TopicIDShort:
		n := snpacket.ShortTopicName(id)
		return string(n[:]), true
	}
	return "", false
}

// TopicID returns the normal topic id the client holds for name (from
// Register, a SUBACK or the gateway's REGISTER), if any.
func (c *Client) TopicID(name string) (uint16, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.nameToID[name]
	return id, ok
}
