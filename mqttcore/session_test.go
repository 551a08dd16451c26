package mqttcore_test

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

func TestStateString(t *testing.T) {
	for s, want := range map[mqttcore.State]string{
		mqttcore.StateActive:       "active",
		mqttcore.StateAsleep:       "asleep",
		mqttcore.StateDisconnected: "disconnected",
		mqttcore.StateLost:         "lost",
		mqttcore.State(9):          "state(9)",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q; want %q", s, got, want)
		}
	}
}

// TestStateTransitions checks the state each lifecycle event leads to.
func TestStateTransitions(t *testing.T) {
	tests := []struct {
		event string
		want  mqttcore.State
	}{
		{"sleep", mqttcore.StateAsleep},
		{"disconnect", mqttcore.StateDisconnected},
		{"lost", mqttcore.StateLost},
		{"kick", mqttcore.StateLost},
	}
	for _, tt := range tests {
		b := newBroker(t, mqttcore.Config{})
		c, _ := attach(t, b, persistent("s"))
		if info, _ := b.Session("s"); info.State != mqttcore.StateActive {
			t.Errorf("after attach: %v; want active", info.State)
		}
		var err error
		switch tt.event {
		case "sleep":
			err = c.Sleep(0)
		case "disconnect":
			err = c.Disconnect()
		case "lost":
			err = c.Lost()
		case "kick":
			b.Kick("s")
		}
		if err != nil {
			t.Fatal(err)
		}
		if info, _ := b.Session("s"); info.State != tt.want {
			t.Errorf("active -> %s: state %v; want %v", tt.event, info.State, tt.want)
		}
		attach(t, b, persistent("s"))
		if info, _ := b.Session("s"); info.State != mqttcore.StateActive {
			t.Errorf("%v -> attach: state %v; want active", tt.want, info.State)
		}
	}
}

func TestMessageExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, mqttcore.Config{})
		c, _ := attach(t, b, persistent("s"))
		subscribe(t, c, "t/+", mqttcore.SubOptions{QoS: 1})
		if err := c.Sleep(0); err != nil {
			t.Fatal(err)
		}
		in := b.Inline("p")
		props := func(d time.Duration) *mqttcore.Properties {
			return &mqttcore.Properties{MessageExpiry: d, ContentType: "text/plain"}
		}
		for _, m := range []*mqttcore.Message{
			{Topic: "t/short", QoS: 1, Props: props(5 * time.Second)},
			{Topic: "t/long", QoS: 1, Props: props(time.Minute)},
			{Topic: "t/none", QoS: 1},
		} {
			if err := in.Publish(m); err != nil {
				t.Fatal(err)
			}
		}
		step(10 * time.Second)
		c, _ = attach(t, b, persistent("s"))
		ds := drain(c)
		if len(ds) != 2 || ds[0].Message.Topic != "t/long" || ds[1].Message.Topic != "t/none" {
			t.Fatalf("delivered %q; want [t/long t/none]", topics(ds))
		}
		if ds[0].ExpiryLeft != 50*time.Second || ds[0].Message.Props.ContentType != "text/plain" {
			t.Errorf("t/long ExpiryLeft = %v, props %+v; want 50s and the content type", ds[0].ExpiryLeft, ds[0].Message.Props)
		}
		if ds[1].ExpiryLeft != 0 {
			t.Errorf("t/none ExpiryLeft = %v; want 0", ds[1].ExpiryLeft)
		}
		if st := b.Stats(); st.Queued != 0 {
			t.Errorf("Queued = %d after expiry and drain; want 0", st.Queued)
		}
	})
}

// feChan is a front-end that signals Notify on a channel, as a real one
// would wake its writer goroutine.
type feChan struct{ c chan struct{} }

func (f feChan) Acked(mqttcore.Ack) {}

func (f feChan) Notify() {
	select {
	case f.c <- struct{}{}:
	default:
	}
}
func (f feChan) Close(error) { f.Notify() }

// TestConcurrentStress runs publishers, front-ends that drain and ack, and
// clients that sleep, wake and take each other over, all at once, for the
// race detector, under both overflow policies (backpressure with a short
// hold, so publishes to the full queues of sleepers park, retry and time
// out). It checks that the counters balance at the end.
func TestConcurrentStress(t *testing.T) {
	for _, cfg := range []mqttcore.Config{
		{MaxQueued: 50, MaxInflight: 4, Overflow: mqttcore.OverflowDropOldest},
		{MaxQueued: 50, MaxInflight: 4, Overflow: mqttcore.OverflowBackpressure, HoldTimeout: 2 * time.Millisecond},
	} {
		t.Run(string(cfg.Overflow), func(t *testing.T) { concurrentStress(t, cfg) })
	}
}

func concurrentStress(t *testing.T, cfg mqttcore.Config) {
	b := newBroker(t, cfg)
	const clients, rounds = 8, 200
	var wg sync.WaitGroup
	for i := range clients {
		id := "c" + strconv.Itoa(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fe := feChan{make(chan struct{}, 1)}
			for r := range rounds {
				opts := mqttcore.ConnectOptions{ClientID: id, SessionExpiry: mqttcore.NeverExpire, CleanStart: r%50 == 0,
					Will: &mqttcore.Will{Topic: "will/" + id}}
				c, _, err := b.Attach(fe, opts)
				if err != nil {
					t.Error(err)
					return
				}
				_ = c.Subscribe("s/#", mqttcore.SubOptions{QoS: mqttcore.QoS(r % 3)})
				_ = c.Subscribe("$share/g/s/+", mqttcore.SubOptions{QoS: 1})
				for range 5 {
					d, ok := c.Next()
					if !ok {
						break
					}
					switch {
					case d.Release:
						_ = c.Complete(d.PacketID)
					case d.QoS == 1:
						_ = c.Ack(d.PacketID)
					case d.QoS == 2:
						_ = c.Received(d.PacketID)
					}
				}
				if _, err := c.Publish(&mqttcore.Message{Topic: "s/" + id, QoS: mqttcore.QoS(r % 3)}, uint16(r+1), 0); err == nil && r%3 == 2 {
					_ = c.Release(uint16(r + 1))
				}
				switch r % 3 {
				case 0:
					_ = c.Sleep(time.Hour)
				case 1:
					_ = c.Lost()
				default:
					_ = c.Disconnect()
				}
			}
		}()
	}
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := b.Inline("pub" + strconv.Itoa(p))
			for r := range rounds * 5 {
				_ = in.Publish(&mqttcore.Message{Topic: "s/x", QoS: mqttcore.QoS(r % 3), Retain: r%10 == 0, Payload: []byte("v")})
			}
		}()
	}
	wg.Wait()
	st := b.Stats()
	if st.Connected != 0 || st.Sessions != clients {
		t.Errorf("Stats = %+v; want 0 connected, %d sessions", st, clients)
	}
	var queued int
	for i := range clients {
		info, ok := b.Session("c" + strconv.Itoa(i))
		if !ok {
			t.Fatalf("session c%d missing", i)
		}
		queued += info.Queued
	}
	if int64(queued) != st.Queued {
		t.Errorf("sum of session queues = %d; Stats.Queued = %d", queued, st.Queued)
	}
}

// reentrantFE calls straight back into the core from Notify and Close, as a
// front-end that writes synchronously might. If the core held one of its
// locks while calling out, this test would deadlock.
type reentrantFE struct {
	c      *mqttcore.Conn
	got    []string
	closed bool
}

func (f *reentrantFE) Acked(mqttcore.Ack) {}

func (f *reentrantFE) Notify() {
	if f.c == nil {
		return
	}
	for {
		d, ok := f.c.Next()
		if !ok {
			return
		}
		f.got = append(f.got, d.Message.Topic)
		if d.QoS == 1 {
			_ = f.c.Ack(d.PacketID)
		}
	}
}

func (f *reentrantFE) Close(error) {
	f.closed = true
	_ = f.c.Lost() // already detached: must just return ErrDetached
	_, _ = f.c.Unsubscribe("t/#")
}

func TestFrontEndMayCallBackIntoCore(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	fe := &reentrantFE{}
	c, _, err := b.Attach(fe, persistent("r"))
	if err != nil {
		t.Fatal(err)
	}
	fe.c = c
	subscribe(t, c, "t/#", mqttcore.SubOptions{QoS: 1})
	in := b.Inline("p")
	publish(t, in, "t/1", "x", 1, true) // retained, too
	publish(t, in, "t/2", "x", 0, false)
	subscribe(t, c, "t/1", mqttcore.SubOptions{QoS: 1}) // retained delivery notifies
	if want := []string{"t/1", "t/2", "t/1"}; !slices.Equal(fe.got, want) {
		t.Errorf("delivered %q; want %q", fe.got, want)
	}
	attach(t, b, persistent("r")) // takeover calls Close
	if !fe.closed {
		t.Error("Close not called on takeover")
	}
	b.Kick("r")
}
