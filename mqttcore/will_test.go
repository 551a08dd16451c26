package mqttcore_test

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// recorder collects the topics an inline subscription receives.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) add(m *mqttcore.Message) {
	r.mu.Lock()
	r.got = append(r.got, m.Topic+"="+string(m.Payload))
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// watch subscribes a recorder to "will/#".
func watch(t *testing.T, b *mqttcore.Broker) *recorder {
	t.Helper()
	r := &recorder{}
	if _, err := b.Inline("watch").Subscribe("will/#", mqttcore.SubOptions{}, r.add); err != nil {
		t.Fatal(err)
	}
	return r
}

// withWill returns options for a persistent session with a will.
func withWill(id string, delay, expiry time.Duration) mqttcore.ConnectOptions {
	return mqttcore.ConnectOptions{
		ClientID:      id,
		SessionExpiry: expiry,
		Will:          &mqttcore.Will{Topic: "will/" + id, Payload: []byte("gone"), Delay: delay},
	}
}

// step advances the bubble's clock by d and waits for the timer goroutine
// to finish what became due.
func step(d time.Duration) {
	time.Sleep(d) // inside a synctest bubble: advances the fake clock
	synctest.Wait()
}

func TestWill(t *testing.T) {
	type action struct {
		after time.Duration // advance the clock this much first
		do    string        // "lost", "disconnect", "sleep", "sleep10", "attach", "attachclean", "takeover", "kick", ""
		want  []string      // wills published by then
	}
	const w = "will/c=gone"
	tests := []struct {
		name          string
		delay, expiry time.Duration
		steps         []action
		sessionAfter  bool
	}{
		{"lost publishes", 0, mqttcore.NeverExpire, []action{{0, "lost", []string{w}}}, true},
		{"disconnect does not", 0, mqttcore.NeverExpire, []action{{0, "disconnect", nil}, {time.Hour, "", nil}}, true},
		{"delay", 10 * time.Second, mqttcore.NeverExpire, []action{{0, "lost", nil}, {9 * time.Second, "", nil}, {time.Second, "", []string{w}}}, true},
		{"reconnect cancels delay", 10 * time.Second, mqttcore.NeverExpire, []action{{0, "lost", nil}, {5 * time.Second, "attach", nil}, {time.Hour, "", nil}}, true},
		{"clean start publishes pending", 10 * time.Second, mqttcore.NeverExpire, []action{{0, "lost", nil}, {5 * time.Second, "attachclean", []string{w}}}, true},
		{"expiry before delay", time.Minute, 3 * time.Second, []action{{0, "lost", nil}, {2 * time.Second, "", nil}, {time.Second, "", []string{w}}}, false},
		{"expiry zero publishes now", time.Minute, 0, []action{{0, "lost", []string{w}}}, false},
		{"sleep keeps will", 0, mqttcore.NeverExpire, []action{{0, "sleep", nil}, {time.Hour, "", nil}}, true},
		{"missed sleep deadline", 0, mqttcore.NeverExpire, []action{{0, "sleep10", nil}, {9 * time.Second, "", nil}, {time.Second, "", []string{w}}}, true},
		{"wake before sleep deadline", 0, mqttcore.NeverExpire, []action{{0, "sleep10", nil}, {9 * time.Second, "attach", nil}, {time.Hour, "", nil}}, true},
		{"wake keeps will", 0, mqttcore.NeverExpire, []action{{0, "sleep10", nil}, {5 * time.Second, "wake", nil}, {0, "sleep10", nil}, {10 * time.Second, "", []string{w}}}, true},
		{"reconnect without will drops it", 0, mqttcore.NeverExpire, []action{{0, "sleep", nil}, {0, "reconnectnowill", nil}, {0, "lost", nil}}, true},
		{"takeover no delay", 0, mqttcore.NeverExpire, []action{{0, "takeover", []string{w}}}, true},
		{"takeover with delay resumes", 5 * time.Second, mqttcore.NeverExpire, []action{{0, "takeover", nil}, {time.Hour, "", nil}}, true},
		{"kick", 0, mqttcore.NeverExpire, []action{{0, "kick", []string{w}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBroker(t, mqttcore.Config{})
				r := watch(t, b)
				c, fe := attach(t, b, withWill("c", tt.delay, tt.expiry))
				for i, a := range tt.steps {
					step(a.after)
					var err error
					switch a.do {
					case "lost":
						err = c.Lost()
					case "disconnect":
						err = c.Disconnect()
					case "sleep":
						err = c.Sleep(0)
					case "sleep10":
						err = c.Sleep(10 * time.Second)
					case "attach":
						c, fe = attach(t, b, withWill("c", tt.delay, tt.expiry))
					case "wake":
						c, fe = attach(t, b, mqttcore.ConnectOptions{ClientID: "c", SessionExpiry: tt.expiry, KeepWill: true})
					case "reconnectnowill":
						c, fe = attach(t, b, mqttcore.ConnectOptions{ClientID: "c", SessionExpiry: tt.expiry})
					case "attachclean":
						o := withWill("c", tt.delay, tt.expiry)
						o.CleanStart = true
						c, fe = attach(t, b, o)
					case "takeover":
						c, _ = attach(t, b, withWill("c", tt.delay, tt.expiry))
					case "kick":
						if !b.Kick("c") {
							t.Fatal("Kick reported not attached")
						}
						if r := fe.closeReasons(); len(r) != 1 || !isErr(r[0], mqttcore.ErrKicked) {
							t.Errorf("Close reasons after Kick = %v", r)
						}
					}
					if err != nil {
						t.Fatalf("step %d %s: %v", i, a.do, err)
					}
					synctest.Wait()
					if got := r.take(); !slices.Equal(got, a.want) {
						t.Errorf("step %d (%v, %s): wills %q; want %q", i, a.after, a.do, got, a.want)
					}
				}
				if _, ok := b.Session("c"); ok != tt.sessionAfter {
					t.Errorf("session exists = %v; want %v", ok, tt.sessionAfter)
				}
			})
		})
	}
}

func TestSessionExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, mqttcore.Config{})
		c, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "e", SessionExpiry: time.Minute})
		subscribe(t, c, "t", mqttcore.SubOptions{QoS: 1})
		if err := c.Disconnect(); err != nil {
			t.Fatal(err)
		}
		step(59 * time.Second)
		publish(t, b.Inline("p"), "t", "x", 1, false)
		if info, ok := b.Session("e"); !ok || info.Queued != 1 {
			t.Fatalf("at 59s Session = %+v, %v; want present with 1 queued", info, ok)
		}
		step(time.Second)
		if _, ok := b.Session("e"); ok {
			t.Fatal("session still present after its expiry")
		}
		st := b.Stats()
		if st.SessionsExpired != 1 || st.Sessions != 0 || st.Queued != 0 {
			t.Errorf("Stats = %+v; want 1 expired, 0 sessions, 0 queued", st)
		}
		// Expiry 0 ends the session at disconnect.
		c, _ = attach(t, b, mqttcore.ConnectOptions{ClientID: "z"})
		if err := c.Disconnect(); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.Session("z"); ok {
			t.Error("session with expiry 0 outlived its connection")
		}
		// A resume before expiry cancels it; SetSessionExpiry changes it.
		c, _ = attach(t, b, mqttcore.ConnectOptions{ClientID: "r", SessionExpiry: time.Second})
		if err := c.SetSessionExpiry(time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := c.Disconnect(); err != nil {
			t.Fatal(err)
		}
		step(30 * time.Minute)
		if _, present, err := b.Attach(&fakeFE{}, mqttcore.ConnectOptions{ClientID: "r", SessionExpiry: time.Hour}); err != nil || !present {
			t.Fatalf("resume = %v, present %v", err, present)
		}
		step(2 * time.Hour)
		if _, ok := b.Session("r"); !ok {
			t.Error("attached session expired")
		}
	})
}

func TestSysTopics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttcore.New(mqttcore.Config{SysInterval: time.Second}, mqttcore.Options{Version: "gannet-test"})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		attach(t, b, persistent("a"))
		step(time.Second)
		got := map[string]string{}
		var mu sync.Mutex
		if _, err := b.Inline("t").Subscribe("$SYS/broker/#", mqttcore.SubOptions{}, func(m *mqttcore.Message) {
			mu.Lock()
			got[m.Topic] = string(m.Payload)
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		// Retained $SYS values arrived on subscribe; wait for a fresh round.
		step(time.Second)
		mu.Lock()
		snap := maps.Clone(got)
		mu.Unlock()
		for topic, want := range map[string]string{
			"$SYS/broker/version":           "gannet-test",
			"$SYS/broker/clients/connected": "1",
			"$SYS/broker/clients/total":     "1",
			"$SYS/broker/uptime":            "2 seconds",
			"$SYS/broker/messages/received": "0", // $SYS itself does not count
		} {
			if snap[topic] != want {
				t.Errorf("%s = %q; want %q", topic, snap[topic], want)
			}
		}
		if _, ok := snap["$SYS/broker/messages/received"]; !ok {
			t.Error("no $SYS/broker/messages/received")
		}
		// A leading wildcard does not see $SYS.
		c, _ := attach(t, b, persistent("w"))
		subscribe(t, c, "#", mqttcore.SubOptions{})
		step(time.Second)
		if n := len(drain(c)); n != 0 {
			t.Errorf("'#' subscriber got %d $SYS messages; want 0", n)
		}
	})
}

// TestCloseEndsGoroutines runs a broker with pending timers inside a
// synctest bubble: synctest.Test fails if any goroutine the broker started
// is still running when the test function returns.
func TestCloseEndsGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttcore.New(mqttcore.Config{SysInterval: time.Second}, mqttcore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, fe := attach(t, b, withWill("c", time.Hour, mqttcore.NeverExpire))
		_ = c
		c2, _ := attach(t, b, withWill("d", time.Hour, time.Hour))
		if err := c2.Lost(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if r := fe.closeReasons(); len(r) != 1 || !isErr(r[0], mqttcore.ErrClosed) {
			t.Errorf("attached front-end Close reasons = %v; want [ErrClosed]", r)
		}
		if _, _, err := b.Attach(&fakeFE{}, persistent("x")); !isErr(err, mqttcore.ErrClosed) {
			t.Errorf("Attach after Close = %v; want ErrClosed", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
}

// TestConnWill covers the will a front-end reads and replaces on an
// attached session (MQTT-SN WILLTOPICUPD/WILLMSGUPD), and that a stale Conn
// can do neither.
func TestConnWill(t *testing.T) {
	b := newBroker(t, mqttcore.Config{SysDisabled: true})
	w := &mqttcore.Will{Topic: "will/a", Payload: []byte("gone")}
	c, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "a", Will: w})
	if got := c.Will(); got != w {
		t.Fatalf("Will() = %+v; want the CONNECT will", got)
	}
	w2 := &mqttcore.Will{Topic: "will/a2"}
	if err := c.SetWill(w2); err != nil || c.Will() != w2 {
		t.Fatalf("SetWill: %v; Will() = %+v", err, c.Will())
	}
	if err := c.SetWill(nil); err != nil || c.Will() != nil {
		t.Fatalf("SetWill(nil): %v; Will() = %+v", err, c.Will())
	}
	if err := c.SetWill(&mqttcore.Will{Topic: "a/+"}); err == nil {
		t.Error("SetWill with a wildcard topic succeeded")
	}
	c2, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "a"}) // takes the session over
	if err := c.SetWill(w); !errors.Is(err, mqttcore.ErrDetached) || c.Will() != nil {
		t.Errorf("stale Conn: SetWill = %v, Will() = %+v; want ErrDetached and nil", err, c.Will())
	}
	if err := c.SetSessionExpiry(time.Hour); !errors.Is(err, mqttcore.ErrDetached) {
		t.Errorf("stale Conn: SetSessionExpiry = %v; want ErrDetached", err)
	}
	if err := c2.SetSessionExpiry(time.Hour); err != nil {
		t.Errorf("SetSessionExpiry: %v", err)
	}
}
