package snclient

import "strconv"

// State is the client's view of its connection, as in MQTT-SN 1.2 §6.14.
type State uint8

// The connection states.
const (
	// StateDisconnected: never connected, or disconnected by either side.
	StateDisconnected State = iota
	// StateActive: connected; keep-alive running.
	StateActive
	// StateAsleep: the gateway acknowledged a sleep request and buffers
	// messages for the client.
	StateAsleep
	// StateAwake: CheckMessages is collecting buffered messages.
	StateAwake
	// StateLost: the gateway stopped answering (keep-alive or a request ran
	// out of retransmissions).
	StateLost
)

// String returns the state's name: "disconnected", "active", "asleep",
// "awake" or "lost".
func (s State) String() string {
	switch s {
	case StateDisconnected:
		return "disconnected"
	case StateActive:
		return "active"
	case StateAsleep:
		return "asleep"
	case StateAwake:
		return "awake"
	case StateLost:
		return "lost"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}
