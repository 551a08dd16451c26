package mqttcore

import (
	"errors"
	"fmt"
	"sync"
)

// Store keeps the broker state that must survive a restart. The in-memory
// store returned by NewMemStore is the one the broker uses today: it is the
// only copy of the retained messages, and since nothing in memory survives
// the process it has no sessions to load and discards the ones it is given
// at Close. Live sessions, subscriptions and queues are the broker's own
// structures (an offline session must stay under 1 KiB, so there is no
// second copy); a disk store (bbolt) persists them through SessionRecord,
// which carries everything needed to rebuild a session.
//
// Implementations must be safe for concurrent use. The broker calls them
// with none of its locks held, and callbacks must not call back into the
// store.
type Store interface {
	// SetRetained stores m as the retained message for m.Topic, replacing
	// any previous one. It refuses a new topic with an error wrapping
	// ErrRetainedFull when max messages are stored already. added reports
	// whether the topic was new.
	SetRetained(m *Message, max int) (added bool, err error)
	// DeleteRetained removes the retained message for topic.
	DeleteRetained(topic string) (removed bool, err error)
	// MatchRetained calls fn for each retained message whose topic matches
	// the (non-shared) filter.
	MatchRetained(filter string, fn func(*Message)) error
	// RetainedCount returns the number of retained messages.
	RetainedCount() int
	// LoadSessions calls restore for each saved session; New calls it once
	// before the broker runs and fails if restore or LoadSessions does.
	LoadSessions(restore func(*SessionRecord) error) error
	// SaveSessions is called by Close with an iterator over every session;
	// the store calls each(yield) and persists what yield receives,
	// replacing what it saved before.
	SaveSessions(each func(yield func(*SessionRecord) error) error) error
}

// memStore is the in-memory Store.
type memStore struct {
	mu       sync.RWMutex // a leaf lock: nothing else is taken while held
	retained map[string]*Message
}

// NewMemStore returns the in-memory Store used by default.
func NewMemStore() Store {
	return &memStore{retained: make(map[string]*Message)}
}

// SetRetained implements Store.
func (s *memStore) SetRetained(m *Message, max int) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.retained[m.Topic]; ok {
		s.retained[m.Topic] = m
		return false, nil
	}
	if len(s.retained) >= max {
		return false, fmt.Errorf("memory store: %d retained: %w", len(s.retained), ErrRetainedFull)
	}
	s.retained[m.Topic] = m
	return true, nil
}

// DeleteRetained implements Store.
func (s *memStore) DeleteRetained(topic string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.retained[topic]
	delete(s.retained, topic)
	return ok, nil
}

// MatchRetained implements Store. An exact filter is one map lookup; a
// wildcard filter scans every retained topic (bounded by MaxRetained).
func (s *memStore) MatchRetained(filter string, fn func(*Message)) error {
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

// RetainedCount implements Store.
func (s *memStore) RetainedCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.retained)
}

// LoadSessions implements Store: a memory store starts empty.
func (s *memStore) LoadSessions(func(*SessionRecord) error) error { return nil }

// SaveSessions implements Store: memory does not outlive the process, so
// the sessions are not kept.
func (s *memStore) SaveSessions(func(yield func(*SessionRecord) error) error) error { return nil }

// isRetainedFull reports whether err is the retained limit.
func isRetainedFull(err error) bool { return errors.Is(err, ErrRetainedFull) }
