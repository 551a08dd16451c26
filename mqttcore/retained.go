package mqttcore

import (
	"errors"
	"fmt"
	"sync"
)

// retainedIndex holds the retained messages in memory: the broker's only
// copy while it runs (a Journal keeps the durable one and hands it back at
// start).
type retainedIndex struct {
	mu       sync.RWMutex // a leaf lock: nothing else is taken while held
	retained map[string]*Message
}

// newRetainedIndex returns an empty index.
func newRetainedIndex() *retainedIndex {
	return &retainedIndex{retained: make(map[string]*Message)}
}

// SetRetained stores m as the retained message for m.Topic, replacing any
// previous one. It refuses a new topic with an error wrapping
// ErrRetainedFull when max messages are stored already. added reports
// whether the topic was new.
func (s *retainedIndex) SetRetained(m *Message, max int) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.retained[m.Topic]; ok {
		s.retained[m.Topic] = m
		return false, nil
	}
	if len(s.retained) >= max {
		return false, fmt.Errorf("%d retained: %w", len(s.retained), ErrRetainedFull)
	}
	s.retained[m.Topic] = m
	return true, nil
}

// DeleteRetained removes the retained message for topic.
func (s *retainedIndex) DeleteRetained(topic string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.retained[topic]
	delete(s.retained, topic)
	return ok, nil
}

// MatchRetained calls fn for each retained message whose topic matches the
// (non-shared) filter. An exact filter is one map lookup; a
// wildcard filter scans every retained topic (bounded by MaxRetained).
func (s *retainedIndex) MatchRetained(filter string, fn func(*Message)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !hasWildcard(filter) {
		if m, ok := s.retained[filter]; ok {
			fn(m)
		}
		return nil
	}
	for topic, m := range s.retained {
		if MatchFilter(filter, topic) {
			fn(m)
		}
	}
	return nil
}

// RetainedCount returns the number of retained messages.
func (s *retainedIndex) RetainedCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.retained)
}

// isRetainedFull reports whether err is the retained limit.
func isRetainedFull(err error) bool { return errors.Is(err, ErrRetainedFull) }
