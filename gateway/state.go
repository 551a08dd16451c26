package gateway

// State is a client's state as the gateway sees it (MQTT-SN 1.2 §6.14).
type State uint8

// The client states. A client that is disconnected or lost has no gateway
// state left (its session lives on in the core), so those two values only
// appear in transition logs.
const (
	// StateActive: connected and supervised by keep-alive. A client is
	// active from the moment its CONNECT arrives, also during the will
	// dialogue.
	StateActive State = iota
	// StateAsleep: sent DISCONNECT with a duration; messages for it queue
	// in its core session until it wakes.
	StateAsleep
	// StateAwake: woke with PINGREQ carrying its client id and is being
	// sent its queued messages; PINGRESP sends it back to sleep.
	StateAwake
	// StateDisconnected: sent DISCONNECT without a duration.
	StateDisconnected
	// StateLost: went silent (keep-alive, sleep or retries expired); its
	// will is published.
	StateLost
)

var stateNames = [...]string{"active", "asleep", "awake", "disconnected", "lost"}

// String returns the state's name.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}
