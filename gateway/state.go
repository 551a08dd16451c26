package gateway

import (
	"context"
	"log/slog"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// A client's session state, as the gateway holds it, is one machine with
// five dimensions, each a named type:
//
//	State        active, asleep, awake, disconnected, lost  (client.state)
//	dialogue     none, will_topic, will_msg                 (client.dialogue)
//	attachment   detached, attached                         (client.conn)
//	exchange     none, register, publish, pubrel            (client.out.kind)
//	presence     listed, removed                            (client.removed)
//
// Where a dimension's data is a pointer (the dialogue, the core connection)
// its value is read from that pointer, so the two cannot disagree. Every
// change of a dimension goes through one function below, which logs it at
// Debug as "dimension from -> to". Not every product of the five is legal:
// legalState is the table of the combinations a listed client may be in
// between two events, and the loop checks it after each event (checkState).
// A removed client is finished: it is in no map and no timer any more, only
// stale events can still name it, and it must be detached.

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
	numStates
)

var stateNames = [numStates]string{"active", "asleep", "awake", "disconnected", "lost"}

// String returns the state's name.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "unknown"
}

// dialogueState is where a client is in the will dialogue that follows a
// CONNECT with the Will flag (will.go).
type dialogueState uint8

const (
	dialogueNone      dialogueState = iota // no dialogue: CONNACK was sent (or the client is asleep)
	dialogueWillTopic                      // WILLTOPICREQ sent, waiting for WILLTOPIC
	dialogueWillMsg                        // WILLMSGREQ sent, waiting for WILLMSG
	numDialogueStates
)

var dialogueNames = [numDialogueStates]string{"none", "will_topic", "will_msg"}

func (d dialogueState) String() string {
	if d < numDialogueStates {
		return dialogueNames[d]
	}
	return "unknown"
}

// attachState says whether the client is attached to its core session.
type attachState uint8

const (
	detached attachState = iota // no core connection: asleep, or before CONNACK
	attached                    // client.conn is the client's core connection
	numAttachStates
)

var attachNames = [numAttachStates]string{"detached", "attached"}

func (a attachState) String() string {
	if a < numAttachStates {
		return attachNames[a]
	}
	return "unknown"
}

// exchange is the one gateway-to-client exchange a client may have in
// progress (deliver.go). The gateway keeps at most one per client, as the
// specification asks of clients (§6.5): the core's in-flight window for the
// client is 1.
type exchange uint8

const (
	exchangeNone     exchange = iota
	exchangeRegister          // REGISTER sent, the delivery waits for REGACK
	exchangePublish           // QoS 1/2 PUBLISH sent, waiting for PUBACK or PUBREC
	exchangePubrel            // PUBREL sent, waiting for PUBCOMP
	numExchanges
)

var exchangeNames = [numExchanges]string{"none", "register", "publish", "pubrel"}

func (e exchange) String() string {
	if e < numExchanges {
		return exchangeNames[e]
	}
	return "unknown"
}

// presence says whether the client is in its loop's maps. Removal is final:
// a client that comes back is a new struct.
type presence uint8

const (
	listed  presence = iota // in the loop's maps, reachable by its address
	removed                 // gone; stale events and timer entries skip it
	numPresences
)

var presenceNames = [numPresences]string{"listed", "removed"}

func (p presence) String() string {
	if p < numPresences {
		return presenceNames[p]
	}
	return "unknown"
}

// sessionState is the product of the five dimensions.
type sessionState struct {
	state    State
	dialogue dialogueState
	attach   attachState
	exchange exchange
	presence presence
}

// legalState holds the combinations a listed client may be in between two
// events. Inside the handling of one event a client passes through others
// (a CONNECT from asleep is active before it is attached).
var legalState = func() (t [numStates][numDialogueStates][numAttachStates][numExchanges]bool) {
	allExchanges := func(s State, a attachState) {
		for e := range numExchanges {
			t[s][dialogueNone][a][e] = true
		}
	}
	// Active and connected: any exchange may be in progress.
	allExchanges(StateActive, attached)
	// Active in the will dialogue: nothing is delivered until CONNACK. A
	// client that CONNECTs again while connected stays attached meanwhile.
	for _, d := range []dialogueState{dialogueWillTopic, dialogueWillMsg} {
		t[StateActive][d][detached][exchangeNone] = true
		t[StateActive][d][attached][exchangeNone] = true
	}
	// Asleep: detached, nothing in progress (sleeping ends the exchange;
	// the core keeps the message in flight and resends it with DUP).
	t[StateAsleep][dialogueNone][detached][exchangeNone] = true
	// Awake: attached while its queue is delivered.
	allExchanges(StateAwake, attached)
	// Disconnected and lost clients are removed at once: never listed.
	// Removed clients are not in the table: see legal.
	return t
}()

// legal reports whether s is a combination a client may rest in: a listed
// client in the table, or a removed one that is detached (a removed client
// still attached would leave its core session attached to nobody).
func (s sessionState) legal() bool {
	if s.presence == removed {
		return s.attach == detached
	}
	if s.state >= numStates || s.dialogue >= numDialogueStates || s.attach >= numAttachStates || s.exchange >= numExchanges {
		return false
	}
	return legalState[s.state][s.dialogue][s.attach][s.exchange]
}

func (s sessionState) String() string {
	return s.state.String() + "/" + s.dialogue.String() + "/" + s.attach.String() + "/" + s.exchange.String() + "/" + s.presence.String()
}

// The current value of each dimension.

func (c *client) dialogueState() dialogueState {
	switch {
	case c.dialogue() == nil:
		return dialogueNone
	case c.dialogue().will == nil:
		return dialogueWillTopic
	}
	return dialogueWillMsg
}

func (c *client) attachState() attachState {
	if c.conn == nil {
		return detached
	}
	return attached
}

func (c *client) presence() presence {
	if c.removed {
		return removed
	}
	return listed
}

func (c *client) sessionState() sessionState {
	return sessionState{state: c.state, dialogue: c.dialogueState(), attach: c.attachState(), exchange: c.out.kind, presence: c.presence()}
}

// checkState logs, as the gateway's own fault, a client that an event left
// in a combination legalState does not allow.
func (c *client) checkState() {
	if s := c.sessionState(); !s.legal() {
		c.l.g.log.Error("client in an illegal session state", "client_id", c.id, "remote", c.key.addr, "state", s.String())
	}
}

// transition logs a change of one dimension at Debug as "dim from -> to".
func (c *client) transition(dim, from, to string) {
	if from == to || !c.l.g.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	c.l.g.log.Debug(dim+" "+from+" -> "+to, "client_id", c.id, "remote", c.key.addr)
}

// The transitions: the only places the five dimensions change.

// setState moves the client to s, keeping the asleep count and index.
func (c *client) setState(s State) {
	if c.state == s {
		return
	}
	c.transition("state", c.state.String(), s.String())
	if !c.removed { // an indexed client: index and removeClient count the others
		if g := c.l.g.stats.stateGauge(c.state); g != nil {
			g.Add(-1)
		}
		if g := c.l.g.stats.stateGauge(s); g != nil {
			g.Add(1)
		}
	}
	switch {
	case s == StateAsleep:
		c.l.g.stats.asleep.Add(1)
		c.indexAsleep(true)
	case c.state == StateAsleep:
		c.l.g.stats.asleep.Add(-1)
		c.indexAsleep(false)
	}
	c.state = s
}

// setDialogue starts (d non-nil) or ends (nil) the will dialogue.
func (c *client) setDialogue(d *dialogue) {
	from := c.dialogueState()
	switch {
	case d != nil:
		if c.l.dialogues == nil {
			c.l.dialogues = map[*client]*dialogue{}
		}
		c.l.dialogues[c] = d
	case c.inDialogue:
		delete(c.l.dialogues, c)
	}
	c.inDialogue = d != nil
	c.transition("dialogue", from.String(), c.dialogueState().String())
}

// setWillTopic records the will topic: the dialogue moves on to WILLMSG.
func (c *client) setWillTopic(w *mqttcore.Will) {
	from := c.dialogueState()
	c.dialogue().will = w
	c.transition("dialogue", from.String(), c.dialogueState().String())
}

// setConn attaches the client to its core session through conn.
func (c *client) setConn(conn *mqttcore.Conn) {
	from := c.attachState()
	c.conn = conn
	c.transition("attachment", from.String(), c.attachState().String())
}

// detach forgets the client's core connection (the caller has told the core
// whatever ends it: Sleep, Disconnect, Lost, or the core ended it).
func (c *client) detach() {
	from := c.attachState()
	c.conn, c.att = nil, nil
	c.transition("attachment", from.String(), c.attachState().String())
}

// setOut replaces the exchange in progress with o.
func (c *client) setOut(o outFlight) {
	from := c.out.kind
	c.out = o
	c.transition("exchange", from.String(), o.kind.String())
}

// markRemoved records that the loop dropped the client from its maps.
func (c *client) markRemoved() {
	c.transition("presence", listed.String(), removed.String())
	c.removed = true
}
