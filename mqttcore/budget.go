package mqttcore

import (
	"fmt"
	"sync/atomic"
)

// SessionBudget caps the sessions one front-end may hold in the core,
// attached or offline, inside Config.MaxSessions: the MQTT-SN gateway gets
// one, so sensors (or a flood of strangers posing as sensors) can fill their
// budget but never the whole table, and MQTT listener clients keep the rest.
// A session created through Attach with ConnectOptions.Budget counts against
// it until the session ends; a session restored from the journal counts from
// the first Attach that names the budget, even beyond the cap (it exists
// already). The count changes only under the broker's lock, so the cap is
// never overshot, also when many goroutines attach at once.
type SessionBudget struct {
	max atomic.Int64 // SetMax may change it at any time
	n   atomic.Int64 // written under Broker.mu
}

// NewSessionBudget returns a budget of max sessions (max >= 1).
func NewSessionBudget(max int) (*SessionBudget, error) {
	if max < 1 {
		return nil, fmt.Errorf("mqttcore: session budget %d: must be at least 1: %w", max, ErrInvalidConfig)
	}
	sb := &SessionBudget{}
	sb.max.Store(int64(max))
	return sb, nil
}

// SetMax changes the cap (max >= 1). Sessions already counted stay, also
// beyond a lower cap; new ones are refused until the count is below it.
func (sb *SessionBudget) SetMax(max int) error {
	if max < 1 {
		return fmt.Errorf("mqttcore: session budget %d: must be at least 1: %w", max, ErrInvalidConfig)
	}
	sb.max.Store(int64(max))
	return nil
}

// Len returns the sessions counted against the budget now.
func (sb *SessionBudget) Len() int { return int(sb.n.Load()) }

// Max returns the budget's cap.
func (sb *SessionBudget) Max() int { return int(sb.max.Load()) }

// takeLocked counts a new session, reporting false when the budget is spent.
// The caller holds Broker.mu.
func (sb *SessionBudget) takeLocked() bool {
	if sb.n.Load() >= sb.max.Load() {
		return false
	}
	sb.n.Add(1)
	return true
}

// chargeLocked binds s to budget sb (nil: none) if s has none yet; a
// restored session is counted even beyond the cap. The caller holds
// Broker.mu.
func (s *Session) chargeLocked(sb *SessionBudget) {
	if sb != nil && s.budget == nil {
		s.budget = sb
		sb.n.Add(1)
	}
}

// releaseLocked returns s's place to its budget when s ends. The caller
// holds Broker.mu.
func (s *Session) releaseLocked() {
	if s.budget != nil {
		s.budget.n.Add(-1)
		s.budget = nil
	}
}
