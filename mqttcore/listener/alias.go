package listener

// aliasTable is a connection's outbound MQTT 5 topic aliases (MQTT 5.0
// section 3.3.2.3.4): the server may replace a PUBLISH's topic with an
// alias the client learned from an earlier PUBLISH on this connection, up
// to the client's Topic Alias Maximum and the configured bound. It belongs
// to the connection's writer goroutine.
//
// The first delivery on a topic carries the topic and a new alias; later
// ones carry the alias and an empty topic. Once every alias is taken, the
// least recently assigned one is reassigned (the PUBLISH that reassigns it
// carries the topic, so the client learns the new mapping). Looking up a
// known topic does not allocate; the map grows at most to max entries.
type aliasTable struct {
	max    uint16            // 0: no aliases
	byName map[string]uint16 // topic -> alias
	topics []string          // alias-1 -> topic, len <= max
	next   uint16            // index in topics of the next alias to reassign
}

// init sets the table's size; max 0 turns aliases off.
func (t *aliasTable) init(max uint16) {
	t.max = max
}

// lookup returns the alias for topic and whether the client already knows
// it (send an empty topic), or assigns one (send the topic and the alias).
// It returns 0 when aliases are off. A newly assigned alias must be undone
// with forget if its PUBLISH is not sent.
func (t *aliasTable) lookup(topic string) (alias uint16, known bool) {
	if t.max == 0 || topic == "" {
		return 0, false
	}
	if a, ok := t.byName[topic]; ok {
		return a, true
	}
	if t.byName == nil {
		t.byName = make(map[string]uint16, min(int(t.max), 64))
	}
	if len(t.topics) < int(t.max) {
		t.topics = append(t.topics, topic)
		alias = uint16(len(t.topics))
	} else {
		alias = t.next + 1
		if old := t.topics[t.next]; t.byName[old] == alias {
			delete(t.byName, old)
		}
		t.topics[t.next] = topic
		t.next = (t.next + 1) % t.max
	}
	t.byName[topic] = alias
	return alias, false
}

// forget undoes the assignment of alias to topic by the last lookup, whose
// PUBLISH was not sent: the client does not know the mapping.
func (t *aliasTable) forget(topic string, alias uint16) {
	if t.byName[topic] != alias {
		return
	}
	delete(t.byName, topic)
	// The slot stays, empty; lookup reassigns it in turn like any other.
	t.topics[alias-1] = ""
}
