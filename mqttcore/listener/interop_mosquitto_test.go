package listener_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// Interop tests of the listener against the mosquitto_pub and
// mosquitto_sub programs (Debian package mosquitto-clients), in MQTT 3.1,
// 3.1.1 and 5.

// versions are mosquitto's -V values.
var versions = []string{"mqttv31", "mqttv311", "mqttv5"}

func TestMosquittoPubSubQoS(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			ctx := testCtx(t)
			ts := startServer(t, listener.Config{}, mqttcore.Config{})
			// Wildcards both ways; -q 2 so the delivered QoS is the
			// publisher's.
			sub := startMosqSub(t, ctx, ts, "-V", v, "-q", "2", "-t", "m/+/x", "-t", "n/#", "-C", "4", "-W", "15")
			// Each mosquitto_pub is its own connection, and nothing orders
			// one connection's PUBLISH against the next one's (a QoS 0
			// publisher may exit before the broker read it): wait for each
			// message before sending the next. "nomatch" would show up
			// before "one".
			mustMosqPub(t, ctx, ts, "-V", v, "-q", "0", "-t", "m/a/x", "-m", "zero")
			sub.expect(t, ctx, "m/a/x 0 0 zero")
			mustMosqPub(t, ctx, ts, "-V", v, "-q", "1", "-t", "m/b/y", "-m", "nomatch")
			mustMosqPub(t, ctx, ts, "-V", v, "-q", "1", "-t", "n", "-m", "one")
			sub.expect(t, ctx, "n 1 0 one")
			mustMosqPub(t, ctx, ts, "-V", v, "-q", "2", "-t", "n/c/d", "-m", "two")
			sub.expect(t, ctx, "n/c/d 2 0 two")
			mustMosqPub(t, ctx, ts, "-V", v, "-q", "2", "-t", "m/c/x", "-m", "two again")
			sub.expect(t, ctx, "m/c/x 2 0 two again")
			if err := sub.wait(t, ctx); err != nil {
				t.Fatalf("mosquitto_sub exit: %v\n%s", err, sub.output())
			}
		})
	}
}

// TestMosquittoPahoBothWays sends each QoS from paho to mosquitto_sub and
// from mosquitto_pub to paho.
func TestMosquittoPahoBothWays(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			ctx := testCtx(t)
			ts := startServer(t, listener.Config{}, mqttcore.Config{})
			pc := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "paho", CleanStart: true})
			pc.subscribe(t, ctx, 2, 2, "to-paho/#")
			sub := startMosqSub(t, ctx, ts, "-V", v, "-q", "2", "-t", "to-mosq/#", "-C", "3", "-W", "15")
			for q := byte(0); q <= 2; q++ {
				pc.publish(t, ctx, fmt.Sprintf("to-mosq/%d", q), fmt.Sprintf("from paho %d", q), q, false)
				sub.expect(t, ctx, fmt.Sprintf("to-mosq/%d %d 0 from paho %d", q, q, q))
				mustMosqPub(t, ctx, ts, "-V", v, "-q", fmt.Sprint(q), "-t", fmt.Sprintf("to-paho/%d", q), "-m", "from mosquitto")
				pc.expectMsg(t, ctx, fmt.Sprintf("to-paho/%d", q), "from mosquitto", q)
			}
			if err := sub.wait(t, ctx); err != nil {
				t.Fatalf("mosquitto_sub exit: %v\n%s", err, sub.output())
			}
		})
	}
}

func TestMosquittoRetained(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			ctx := testCtx(t)
			ts := startServer(t, listener.Config{}, mqttcore.Config{})
			mustMosqPub(t, ctx, ts, "-V", v, "-q", "1", "-r", "-t", "r/a", "-m", "kept")
			mustMosqPub(t, ctx, ts, "-V", v, "-q", "1", "-r", "-t", "r/b", "-m", "dropped")
			mustMosqPub(t, ctx, ts, "-V", v, "-q", "1", "-r", "-t", "r/b", "-n") // empty: delete
			sub := runMosqSub(t, ctx, ts, "-V", v, "-q", "1", "-t", "r/#", "-C", "1", "-W", "15")
			sub.expect(t, ctx, "r/a 1 1 kept")
			if err := sub.wait(t, ctx); err != nil {
				t.Fatalf("mosquitto_sub exit: %v\n%s", err, sub.output())
			}
			if n := ts.broker.Stats().Retained; n != 1 {
				t.Errorf("Stats().Retained = %d; want 1", n)
			}
		})
	}
}

// TestMosquittoPersistentSession subscribes with a persistent session
// (-c), leaves, and collects what was published meanwhile.
func TestMosquittoPersistentSession(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			ctx := testCtx(t)
			ts := startServer(t, listener.Config{}, mqttcore.Config{})
			args := []string{"-V", v, "-c", "-i", "mosq-" + v, "-q", "1", "-t", "later/#"}
			if v == "mqttv5" {
				args = append(args, "-x", "3600") // session expiry
			}
			// -E: exit once subscribed.
			first := runMosqSub(t, ctx, ts, append(args, "-E")...)
			if err := first.wait(t, ctx); err != nil {
				t.Fatalf("mosquitto_sub -E exit: %v\n%s", err, first.output())
			}
			waitFor(t, ctx, "the session to go offline", func() bool {
				st, ok := ts.sessionState("mosq-" + v)
				return ok && st != mqttcore.StateActive
			})
			mustMosqPub(t, ctx, ts, "-V", v, "-q", "1", "-t", "later/1", "-m", "first")
			mustMosqPub(t, ctx, ts, "-V", v, "-q", "2", "-t", "later/2", "-m", "second")
			again := runMosqSub(t, ctx, ts, append(args, "-C", "2", "-W", "15")...)
			again.expect(t, ctx, "later/1 1 0 first")
			again.expect(t, ctx, "later/2 1 0 second")
			if err := again.wait(t, ctx); err != nil {
				t.Fatalf("mosquitto_sub exit: %v\n%s", err, again.output())
			}
		})
	}
}

// TestMosquittoWill kills a mosquitto_sub that set a will: its TCP
// connection ends without DISCONNECT and the will is published.
func TestMosquittoWill(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			ctx := testCtx(t)
			ts := startServer(t, listener.Config{}, mqttcore.Config{})
			watcher := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "watcher", CleanStart: true})
			watcher.subscribe(t, ctx, 1, 1, "wills/#")
			victim := startMosqSub(t, ctx, ts, "-V", v, "-i", "victim", "-t", "x",
				"--will-topic", "wills/victim", "--will-payload", "gone", "--will-qos", "1")
			if err := victim.cmd.Process.Kill(); err != nil {
				t.Fatalf("kill mosquitto_sub: %v", err)
			}
			watcher.expectMsg(t, ctx, "wills/victim", "gone", 1)
		})
	}
}

// TestMosquittoSharedSubscription: two mosquitto_sub members of one group
// share the messages, each message going to exactly one of them.
func TestMosquittoSharedSubscription(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			ctx := testCtx(t)
			ts := startServer(t, listener.Config{}, mqttcore.Config{})
			const n = 20
			a := startMosqSub(t, ctx, ts, "-V", v, "-q", "1", "-t", "$share/g/work/+")
			b := startMosqSub(t, ctx, ts, "-V", v, "-q", "1", "-t", "$share/g/work/+")
			pc := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "pub", CleanStart: true})
			for i := range n {
				pc.publish(t, ctx, fmt.Sprintf("work/%d", i), fmt.Sprint(i), 1, false)
			}
			seen := map[string]int{}
			counts := [2]int{}
			for range n {
				select {
				case m := <-a.msgs:
					seen[m]++
					counts[0]++
				case m := <-b.msgs:
					seen[m]++
					counts[1]++
				case <-ctx.Done():
					t.Fatalf("received %d of %d: %v", len(seen), n, ctx.Err())
				}
			}
			for i := range n {
				if m := fmt.Sprintf("work/%d 1 0 %d", i, i); seen[m] != 1 {
					t.Errorf("%q received %d times; want 1", m, seen[m])
				}
			}
			if counts[0] == 0 || counts[1] == 0 {
				t.Errorf("per-member counts %v: want both members used", counts)
			}
		})
	}
}

// TestMosquittoAuthAndACL: a password file with bcrypt hashes made here, an
// ACL, anonymous access refused.
func TestMosquittoAuthAndACL(t *testing.T) {
	pwFile, aclFile := writeAuthFiles(t, map[string]string{"alice": "wonderland", "carol": "singer"}, testACL)
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			ctx := testCtx(t)
			ts := startServer(t, listener.Config{Auth: auth.Config{PasswordFile: pwFile, ACLFile: aclFile, Anonymous: auth.AnonymousDeny}}, mqttcore.Config{})
			alice := []string{"-V", v, "-u", "alice", "-P", "wonderland"}

			// Refused connections: mosquitto_pub fails and says why.
			refused := []struct {
				name string
				args []string
				want string
			}{
				{"anonymous", []string{"-V", v}, "not authori"},
				{"wrong password", []string{"-V", v, "-u", "alice", "-P", "nope"}, "bad user name or password"},
			}
			for _, r := range refused {
				out, err := mosqPub(t, ctx, ts, append(r.args, "-t", "public/x", "-m", "m")...)
				if err == nil || !isExitErr(err) {
					t.Errorf("%s: mosquitto_pub = %v; want a failed exit\n%s", r.name, err, out)
				}
				if !strings.Contains(strings.ToLower(out), r.want) {
					t.Errorf("%s: mosquitto_pub said %q; want it to mention %q", r.name, out, r.want)
				}
			}
			if got := ts.srv.Stats().RefusedAuth; got != 2 {
				t.Errorf("Stats().RefusedAuth = %d; want 2", got)
			}

			// A subscription the ACL refuses gets a failure code.
			sub := runMosqSub(t, ctx, ts, append(alice, "-t", "bob/#", "-W", "10")...)
			select {
			case line := <-sub.subacked:
				if !strings.Contains(line, "128") && !strings.Contains(line, "135") {
					t.Errorf("SUBACK for a denied filter: %q; want 128 (3.1.1) or 135 (MQTT 5)", line)
				}
			case <-ctx.Done():
				t.Fatalf("no SUBACK: %v\n%s", ctx.Err(), sub.output())
			}
			_ = sub.cmd.Process.Kill()

			// A denied publish reaches no one; an allowed one does.
			watch := startMosqSub(t, ctx, ts, "-V", v, "-u", "carol", "-P", "singer", "-q", "1", "-t", "#")
			out, _ := mosqPub(t, ctx, ts, append(alice, "-q", "1", "-t", "public/forged", "-m", "no")...)
			if v == "mqttv5" && !strings.Contains(out, "Not authorized") {
				// MQTT 5 mosquitto_pub reports the PUBACK reason 0x87;
				// MQTT 3.1.1 has no way to refuse a publish.
				t.Errorf("MQTT 5 denied publish: mosquitto_pub said %q; want it to report Not authorized", out)
			}
			mustMosqPub(t, ctx, ts, append(alice, "-q", "1", "-t", "alice/ok", "-m", "yes")...)
			watch.expect(t, ctx, "alice/ok 1 0 yes")
			if got := ts.srv.Stats().PublishDenied; got != 1 {
				t.Errorf("Stats().PublishDenied = %d; want 1", got)
			}
		})
	}
}

// TestMosquitto31 runs MQTT 3.1 clients (mosquitto -V mqttv31, protocol
// "MQIsdp" level 3) against 3.1.1 and 5.0 clients through one broker, both
// ways, and checks the 3.1 client-identifier rule: 1 to 23 characters,
// refused with return code 2 (identifier rejected) otherwise, while 3.1.1
// takes the same identifier.
func TestMosquitto31(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	p5 := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "paho5", CleanStart: true})
	p5.subscribe(t, ctx, 2, 2, "from31/#")
	sub311 := startMosqSub(t, ctx, ts, "-V", "mqttv311", "-q", "2", "-t", "from31/#", "-C", "2", "-W", "15")
	sub31 := startMosqSub(t, ctx, ts, "-V", "mqttv31", "-i", "sub31", "-q", "2", "-t", "to31/#", "-C", "3", "-W", "15")

	// 3.1 -> 3.1.1 and 5.0.
	mustMosqPub(t, ctx, ts, "-V", "mqttv31", "-i", "pub31", "-q", "1", "-t", "from31/a", "-m", "hello from 3.1")
	mustMosqPub(t, ctx, ts, "-V", "mqttv31", "-i", "pub31", "-q", "2", "-t", "from31/b", "-m", "again")
	p5.expectMsg(t, ctx, "from31/a", "hello from 3.1", 1)
	p5.expectMsg(t, ctx, "from31/b", "again", 2)
	sub311.expect(t, ctx, "from31/a 1 0 hello from 3.1")
	sub311.expect(t, ctx, "from31/b 2 0 again")

	// 3.1.1 and 5.0 -> 3.1. Each publisher has its acknowledgement before
	// the next starts, so the broker queues them in this order; the QoS 2
	// message comes last because mosquitto_sub prints one only when its
	// PUBREL arrives, after later QoS 0 and 1 messages it already printed.
	mustMosqPub(t, ctx, ts, "-V", "mqttv311", "-q", "1", "-t", "to31/x", "-m", "from 3.1.1")
	mustMosqPub(t, ctx, ts, "-V", "mqttv5", "-q", "1", "-t", "to31/y", "-m", "from mosquitto 5")
	p5.publish(t, ctx, "to31/z", "from 5.0", 2, false)
	sub31.expect(t, ctx, "to31/x 1 0 from 3.1.1")
	sub31.expect(t, ctx, "to31/y 1 0 from mosquitto 5")
	sub31.expect(t, ctx, "to31/z 2 0 from 5.0")
	for _, s := range []*mosqSub{sub311, sub31} {
		if err := s.wait(t, ctx); err != nil {
			t.Fatalf("mosquitto_sub exit: %v\n%s", err, s.output())
		}
	}

	long := strings.Repeat("x", 24)
	before := ts.srv.Stats().RefusedClientID
	out, err := mosqPub(t, ctx, ts, "-V", "mqttv31", "-i", long, "-t", "t", "-m", "m")
	if err == nil || !strings.Contains(strings.ToLower(out), "identifier rejected") {
		t.Errorf("MQTT 3.1 with a 24-character client id: mosquitto_pub = %v, %q; want identifier rejected", err, out)
	}
	if got := ts.srv.Stats().RefusedClientID; got != before+1 {
		t.Errorf("Stats().RefusedClientID = %d; want %d", got, before+1)
	}
	mustMosqPub(t, ctx, ts, "-V", "mqttv311", "-i", long, "-t", "t", "-m", "m")
	mustMosqPub(t, ctx, ts, "-V", "mqttv31", "-i", long[:23], "-t", "t", "-m", "m")
}

// TestMosquittoDeniedSubscribeExample runs the example of
// docs/mqtt-listener.md ("Trying the failure path"): with the one-line ACL
// "topic readwrite public/#", anonymous mosquitto_sub gets SUBACK codes
// "0, 135" (MQTT 5) or "0, 128" (3.1.1 and 3.1) for public/x and secret/x.
func TestMosquittoDeniedSubscribeExample(t *testing.T) {
	_, aclFile := writeAuthFiles(t, nil, "topic readwrite public/#\n")
	want := map[string]string{"mqttv31": "0, 128", "mqttv311": "0, 128", "mqttv5": "0, 135"}
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			ctx := testCtx(t)
			ts := startServer(t, listener.Config{Auth: auth.Config{ACLFile: aclFile}}, mqttcore.Config{})
			sub := runMosqSub(t, ctx, ts, "-V", v, "-t", "public/x", "-t", "secret/x", "-W", "10")
			select {
			case line := <-sub.subacked:
				if !strings.HasSuffix(line, "): "+want[v]) {
					t.Errorf("mosquitto_sub: %q; want it to end with %q", line, "): "+want[v])
				}
			case <-ctx.Done():
				t.Fatalf("no SUBACK: %v\n%s", ctx.Err(), sub.output())
			}
			if got := ts.srv.Stats().SubscribeDenied; got != 1 {
				t.Errorf("Stats().SubscribeDenied = %d; want 1", got)
			}
		})
	}
}
