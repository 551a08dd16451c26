package gateway

import (
	"log/slog"
	"testing"
	"time"
	"unsafe"

	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestClientSize keeps the gateway's share of a sleeping sensor small: the
// budget for a whole sleeping session is 1 KiB, and the core takes most.
// 224 bytes is a size class: one field more costs every client 16 bytes.
func TestClientSize(t *testing.T) {
	const budget = 224
	if n := unsafe.Sizeof(client{}); n > budget {
		t.Errorf("sizeof(client) = %d bytes; budget %d", n, budget)
	} else {
		t.Logf("sizeof(client) = %d bytes", n)
	}
}

// TestV2ConnSize keeps what a 2.0 client has beyond a 1.2 client in the
// 32-byte size class (v2.go): it is part of every sleeping 2.0 sensor.
func TestV2ConnSize(t *testing.T) {
	const budget = 32
	if n := unsafe.Sizeof(v2conn{}); n > budget {
		t.Errorf("sizeof(v2conn) = %d bytes; budget %d", n, budget)
	}
}

// TestV2ConnRare: the rare part of a 2.0 client's state exists only while
// it holds something.
func TestV2ConnRare(t *testing.T) {
	var v v2conn
	v.setUser("")
	if v.rare != nil || v.user() != "" {
		t.Fatalf("after setUser(\"\"): rare = %+v; want nil", v.rare)
	}
	v.setUser("alice")
	if v.user() != "alice" {
		t.Fatalf("user() = %q; want alice", v.user())
	}
	if ack := v.takeConnack(); ack != nil {
		t.Fatalf("takeConnack() with none waiting = %v; want nil", ack)
	}
	v.setUser("")
	if v.rare != nil {
		t.Fatalf("after clearing the user: rare = %+v; want nil", v.rare)
	}
	want := &sn.ConnackV2{PacketID: 7}
	v.setConnack(want)
	if ack := v.takeConnack(); ack != want || v.rare != nil {
		t.Fatalf("takeConnack() = %v, rare %+v after; want %v, nil", ack, v.rare, want)
	}
}

// TestDialogueMap: a 1.2 will dialogue waits in its loop's map while the
// client is in it (client.inDialogue), and leaves it when the dialogue ends
// or the client is removed mid-dialogue, so the map never outlives it.
func TestDialogueMap(t *testing.T) {
	b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	g, err := New(Config{Loops: 1}, b, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	done := make(chan struct{})
	g.loops[0].post(coreEvent{inspect: func(l *loop) { // on the loop's goroutine, which owns its clients
		defer close(done)
		c := &client{l: l, state: StateActive}
		if c.dialogue() != nil || c.dialogueState() != dialogueNone {
			t.Errorf("a new client has a dialogue")
			return
		}
		c.setDialogue(&dialogue{cleanSession: true})
		if !c.inDialogue || len(l.dialogues) != 1 || c.dialogueState() != dialogueWillTopic {
			t.Errorf("after setDialogue: inDialogue %v, %d in the map, state %v; want true, 1, will_topic",
				c.inDialogue, len(l.dialogues), c.dialogueState())
			return
		}
		c.setWillTopic(&mqttcore.Will{Topic: "w"})
		if c.dialogueState() != dialogueWillMsg {
			t.Errorf("after the will topic: state %v; want will_msg", c.dialogueState())
		}
		c.setDialogue(nil)
		if c.inDialogue || len(l.dialogues) != 0 || c.dialogue() != nil {
			t.Errorf("after the dialogue: inDialogue %v, %d in the map; want false, 0", c.inDialogue, len(l.dialogues))
		}
		c.setDialogue(&dialogue{})
		l.removeClient(c)
		if len(l.dialogues) != 0 {
			t.Errorf("a client removed mid-dialogue left %d dialogues in the map; want 0", len(l.dialogues))
		}
	}})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not run the check within 10 s")
	}
}
