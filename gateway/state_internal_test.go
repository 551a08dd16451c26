package gateway

import (
	"log/slog"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

func TestDimensionNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{StateActive.String(), "active"}, {StateLost.String(), "lost"}, {numStates.String(), "unknown"},
		{dialogueNone.String(), "none"}, {dialogueWillTopic.String(), "will_topic"}, {dialogueWillMsg.String(), "will_msg"},
		{numDialogueStates.String(), "unknown"},
		{detached.String(), "detached"}, {attached.String(), "attached"}, {numAttachStates.String(), "unknown"},
		{exchangeNone.String(), "none"}, {exchangeRegister.String(), "register"}, {exchangePublish.String(), "publish"},
		{exchangePubrel.String(), "pubrel"}, {numExchanges.String(), "unknown"},
		{listed.String(), "listed"}, {removed.String(), "removed"}, {numPresences.String(), "unknown"},
	} {
		if tc.got != tc.want {
			t.Errorf("String() = %q; want %q", tc.got, tc.want)
		}
	}
}

// TestLegalStates spells out the table in state.go combination by
// combination, so that a change to it is a visible change here.
func TestLegalStates(t *testing.T) {
	legal := map[sessionState]bool{}
	for _, e := range []exchange{exchangeNone, exchangeRegister, exchangePublish, exchangePubrel} {
		legal[sessionState{StateActive, dialogueNone, attached, e, listed}] = true
		legal[sessionState{StateAwake, dialogueNone, attached, e, listed}] = true
	}
	for _, d := range []dialogueState{dialogueWillTopic, dialogueWillMsg} {
		legal[sessionState{StateActive, d, detached, exchangeNone, listed}] = true
		legal[sessionState{StateActive, d, attached, exchangeNone, listed}] = true
	}
	legal[sessionState{StateAsleep, dialogueNone, detached, exchangeNone, listed}] = true

	for s := range numStates + 1 {
		for d := range numDialogueStates + 1 {
			for a := range numAttachStates + 1 {
				for e := range numExchanges + 1 {
					for p := range numPresences {
						st := sessionState{s, d, a, e, p}
						want := legal[st] || p == removed && a == detached
						if got := st.legal(); got != want {
							t.Errorf("%v legal = %v; want %v", st, got, want)
						}
					}
				}
			}
		}
	}
	if got := (sessionState{state: StateAsleep, attach: attached}).String(); got != "asleep/none/attached/none/listed" {
		t.Errorf("String() = %q", got)
	}
}

// BenchmarkStateMachineOverhead measures what the explicit state machine
// adds to each event on the hot path: the legality check after the event
// and one transition with Debug off.
func BenchmarkStateMachineOverhead(b *testing.B) {
	c := &client{l: &loop{g: &Gateway{log: slog.New(slog.DiscardHandler)}}, conn: &mqttcore.Conn{}}
	b.ReportAllocs()
	for b.Loop() {
		c.setOut(outFlight{kind: exchangePublish})
		c.setOut(outFlight{})
		c.checkState()
	}
}
