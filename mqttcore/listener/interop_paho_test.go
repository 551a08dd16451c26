package listener_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/crypto/bcrypt"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// Interop tests of the listener against github.com/eclipse/paho.golang
// (MQTT 5), a client no one here wrote.

func TestPahoSubscribeWildcards(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	sub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "sub", CleanStart: true})
	sub.subscribe(t, ctx, 0, 0, "home/+/temp", "office/#")
	pub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "pub", CleanStart: true})

	tests := []struct {
		topic string
		match bool
	}{
		{"home/kitchen/temp", true},
		{"home/kitchen/humidity", false},
		{"home/temp", false},
		{"home/a/b/temp", false},
		{"office", true}, // # matches the parent level too
		{"office/desk/lamp", true},
		{"offices/x", false},
		{"$SYS/office", false},
	}
	for i, tt := range tests {
		pub.publish(t, ctx, tt.topic, strconv.Itoa(i), 0, false)
	}
	for i, tt := range tests {
		if tt.match {
			sub.expectMsg(t, ctx, tt.topic, strconv.Itoa(i), 0)
		}
	}
	sub.quiet(t, ctx)
}

func TestPahoQoS(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	pub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	for subQoS := byte(0); subQoS <= 2; subQoS++ {
		sub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: fmt.Sprintf("sub%d", subQoS), CleanStart: true})
		sub.subscribe(t, ctx, subQoS, subQoS, fmt.Sprintf("qos/%d", subQoS))
		for pubQoS := byte(0); pubQoS <= 2; pubQoS++ {
			t.Run(fmt.Sprintf("pub%d_sub%d", pubQoS, subQoS), func(t *testing.T) {
				topic := fmt.Sprintf("qos/%d", subQoS)
				payload := fmt.Sprintf("p%d", pubQoS)
				pr := pub.publish(t, ctx, topic, payload, pubQoS, false)
				if pubQoS > 0 && pr.ReasonCode != 0 {
					t.Errorf("publish qos %d: reason 0x%02x; want 0", pubQoS, pr.ReasonCode)
				}
				// Delivered at the lower of the two QoS [MQTT-3.8.4-8].
				sub.expectMsg(t, ctx, topic, payload, min(pubQoS, subQoS))
			})
		}
		sub.quiet(t, ctx)
	}
	// Every QoS 1/2 flow completes: nothing stays in flight on either side.
	// The client's last PUBACK or PUBCOMP may still be on its way when the
	// message has arrived, so this waits (bounded by ctx) for the core to
	// see it.
	for _, id := range []string{"pub", "sub0", "sub1", "sub2"} {
		waitFor(t, ctx, "session "+id+" with nothing in flight or queued", func() bool {
			info, _ := ts.broker.Session(id)
			return info.Inflight == 0 && info.Queued == 0
		})
	}
}

func TestPahoRetained(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	pub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	pub.publish(t, ctx, "status/a", "on", 1, true)
	pub.publish(t, ctx, "status/b", "off", 1, true)
	pub.publish(t, ctx, "status/b", "standby", 1, true) // replaces
	pub.publish(t, ctx, "status/c", "gone", 1, true)
	pub.publish(t, ctx, "status/c", "", 1, true) // deletes

	sub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "sub", CleanStart: true})
	sub.subscribe(t, ctx, 1, 1, "status/#")
	got := map[string]string{}
	for range 2 {
		m := sub.recv(t, ctx)
		if !m.Retain {
			t.Errorf("message on %q: retain flag not set on a retained delivery", m.Topic)
		}
		got[m.Topic] = string(m.Payload)
	}
	if got["status/a"] != "on" || got["status/b"] != "standby" {
		t.Errorf("retained messages = %v; want status/a=on status/b=standby", got)
	}
	sub.quiet(t, ctx)

	// A live publish with retain is delivered with retain 0 to an
	// existing subscription [MQTT-3.3.1-9].
	pub.publish(t, ctx, "status/a", "off", 1, true)
	if m := sub.expectMsg(t, ctx, "status/a", "off", 1); m.Retain {
		t.Errorf("live delivery to an existing subscription has retain set")
	}
}

func TestPahoWillOnAbnormalDisconnect(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	watcher := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "watcher", CleanStart: true})
	watcher.subscribe(t, ctx, 1, 1, "wills/#")

	will := func(id string) *paho.Connect {
		return &paho.Connect{ClientID: id, CleanStart: true, WillMessage: &paho.WillMessage{
			Topic: "wills/" + id, Payload: []byte(id + " died"), QoS: 1,
		}}
	}
	// A clean DISCONNECT discards the will.
	clean := mustPaho(t, ctx, ts.addr, will("clean"))
	if err := clean.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		t.Fatalf("Disconnect = %v", err)
	}
	waitFor(t, ctx, "session clean to end", func() bool { _, ok := ts.sessionState("clean"); return !ok })

	// Killing the TCP connection publishes it.
	dying := mustPaho(t, ctx, ts.addr, will("dying"))
	_ = dying.conn.Close()
	watcher.expectMsg(t, ctx, "wills/dying", "dying died", 1)
	watcher.quiet(t, ctx)
	if st := ts.broker.Stats(); st.WillsPublished != 1 {
		t.Errorf("WillsPublished = %d; want 1", st.WillsPublished)
	}
}

func TestPahoPersistentSessionOfflineQueue(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	expiry := uint32(3600)
	cp := &paho.Connect{ClientID: "sleepy", CleanStart: false, Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}
	c1, ca, err := dialPaho(t, ctx, ts.addr, cp)
	if err != nil || ca.SessionPresent {
		t.Fatalf("first Connect = %+v, %v; want success without session present", ca, err)
	}
	c1.subscribe(t, ctx, 1, 1, "inbox/sleepy")
	if err := c1.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		t.Fatalf("Disconnect = %v", err)
	}
	waitFor(t, ctx, "session sleepy to go offline", func() bool {
		st, ok := ts.sessionState("sleepy")
		return ok && st != mqttcore.StateActive
	})

	pub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	// The QoS 0 message goes first: the PUBACKs that follow prove the
	// server has handled it.
	pub.publish(t, ctx, "inbox/sleepy", "q0", 0, false)
	for i := range 3 {
		pub.publish(t, ctx, "inbox/sleepy", fmt.Sprintf("m%d", i), 1, false)
	}
	if info, _ := ts.broker.Session("sleepy"); info.Queued != 4 {
		t.Fatalf("offline session queued %d; want 4", info.Queued)
	}

	c2, ca, err := dialPaho(t, ctx, ts.addr, cp)
	if err != nil || !ca.SessionPresent {
		t.Fatalf("second Connect = %+v, %v; want success with session present", ca, err)
	}
	c2.expectMsg(t, ctx, "inbox/sleepy", "q0", 0)
	for i := range 3 {
		c2.expectMsg(t, ctx, "inbox/sleepy", fmt.Sprintf("m%d", i), 1)
	}
	c2.quiet(t, ctx)
}

func TestPahoSessionTakeover(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	expiry := uint32(60)
	cp := &paho.Connect{ClientID: "twin", CleanStart: false, Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}
	first := mustPaho(t, ctx, ts.addr, cp)
	first.subscribe(t, ctx, 1, 1, "twin/in")

	second, ca, err := dialPaho(t, ctx, ts.addr, cp)
	if err != nil || !ca.SessionPresent {
		t.Fatalf("takeover Connect = %+v, %v; want success with session present", ca, err)
	}
	select {
	case d := <-first.disconnects:
		if d.ReasonCode != 0x8E {
			t.Errorf("first connection got DISCONNECT 0x%02x; want 0x8E session taken over", d.ReasonCode)
		}
	case <-ctx.Done():
		t.Fatalf("first connection got no DISCONNECT: %v", ctx.Err())
	}
	select {
	case <-first.Done():
	case <-ctx.Done():
		t.Fatalf("first connection not closed: %v", ctx.Err())
	}
	// The subscription moved with the session.
	pub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	pub.publish(t, ctx, "twin/in", "hello", 1, false)
	second.expectMsg(t, ctx, "twin/in", "hello", 1)
	if got := ts.srv.Stats().TakenOver; got != 1 {
		t.Errorf("Stats().TakenOver = %d; want 1", got)
	}
}

func TestPahoSharedSubscription(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	const members, n = 3, 60
	var group []*pahoClient
	for i := range members {
		c := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: fmt.Sprintf("worker%d", i), CleanStart: true})
		c.subscribe(t, ctx, 1, 1, "$share/workers/jobs/#")
		group = append(group, c)
	}
	// A second group and a plain subscriber each get every message.
	other := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "auditor", CleanStart: true})
	other.subscribe(t, ctx, 1, 1, "$share/audit/jobs/+", "jobs/#")

	pub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	for i := range n {
		pub.publish(t, ctx, "jobs/"+strconv.Itoa(i), strconv.Itoa(i), 1, false)
	}
	seen := make(map[string]int)
	perMember := make([]int, members)
	for range n {
		select {
		case m := <-group[0].msgs:
			seen[string(m.Payload)]++
			perMember[0]++
		case m := <-group[1].msgs:
			seen[string(m.Payload)]++
			perMember[1]++
		case m := <-group[2].msgs:
			seen[string(m.Payload)]++
			perMember[2]++
		case <-ctx.Done():
			t.Fatalf("group received %d of %d messages: %v", len(seen), n, ctx.Err())
		}
	}
	for i := range n {
		if seen[strconv.Itoa(i)] != 1 {
			t.Errorf("message %d delivered %d times to the group; want exactly 1", i, seen[strconv.Itoa(i)])
		}
	}
	for _, c := range group {
		c.quiet(t, ctx)
	}
	busy := 0
	for _, k := range perMember {
		if k > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("per-member deliveries %v: want the group's load spread over more than one member", perMember)
	}
	// The auditor: once through its shared group, once through jobs/#.
	got := 0
	for range 2 * n {
		other.recv(t, ctx)
		got++
	}
	other.quiet(t, ctx)
	if got != 2*n {
		t.Errorf("auditor received %d; want %d", got, 2*n)
	}
}

// writeAuthFiles writes a password file (bcrypt, hashed here at the
// minimum cost to keep the tests fast under -race) and an ACL file to a
// temporary directory and returns their paths.
func writeAuthFiles(t testing.TB, users map[string]string, acl string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var pw []byte
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("bcrypt.GenerateFromPassword = %v", err)
		}
		pw = fmt.Appendf(pw, "%s:%s\n", u, h)
	}
	pwFile := filepath.Join(dir, "passwords")
	aclFile := filepath.Join(dir, "acl")
	if err := os.WriteFile(pwFile, pw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(aclFile, []byte(acl), 0o600); err != nil {
		t.Fatal(err)
	}
	return pwFile, aclFile
}

const testACL = `
user alice
topic readwrite alice/#
topic read public/#
user bob
topic readwrite public/#
user carol
topic read #
`

func TestPahoAuthAndACL(t *testing.T) {
	ctx := testCtx(t)
	pwFile, aclFile := writeAuthFiles(t, map[string]string{"alice": "wonderland", "bob": "builder"}, testACL)
	ts := startServer(t, listener.Config{Auth: auth.Config{PasswordFile: pwFile, ACLFile: aclFile, Anonymous: auth.AnonymousDeny}}, mqttcore.Config{})

	t.Run("connect", func(t *testing.T) {
		tests := []struct {
			name     string
			user, pw string
			want     byte
		}{
			{"good password", "alice", "wonderland", 0x00},
			{"wrong password", "alice", "wonderland!", 0x86},
			{"unknown user", "mallory", "x", 0x86},
			{"anonymous refused", "", "", 0x87},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cp := &paho.Connect{ClientID: "c-" + tt.user, CleanStart: true}
				if tt.user != "" {
					cp.Username, cp.UsernameFlag = tt.user, true
					cp.Password, cp.PasswordFlag = []byte(tt.pw), true
				}
				_, ca, err := dialPaho(t, ctx, ts.addr, cp)
				if ca == nil {
					t.Fatalf("Connect(%q): no CONNACK: %v", tt.user, err)
				}
				if ca.ReasonCode != tt.want {
					t.Errorf("Connect(%q) CONNACK 0x%02x; want 0x%02x", tt.user, ca.ReasonCode, tt.want)
				}
			})
		}
	})

	alice := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "alice1", CleanStart: true,
		Username: "alice", UsernameFlag: true, Password: []byte("wonderland"), PasswordFlag: true})
	bob := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "bob1", CleanStart: true,
		Username: "bob", UsernameFlag: true, Password: []byte("builder"), PasswordFlag: true})

	// Subscribe: allowed filters get their QoS, the rest 0x87.
	alice.subscribe(t, ctx, 1, 1, "alice/#", "public/+")
	alice.subscribe(t, ctx, 1, 0x87, "bob/#", "#", "+/diary")
	before := ts.srv.Stats()

	// Publish: denied gets PUBACK 0x87 and reaches no one.
	pr, err := alice.Publish(ctx, &paho.Publish{Topic: "public/news", Payload: []byte("forged"), QoS: 1})
	if pr == nil || pr.ReasonCode != 0x87 {
		t.Errorf("alice publish to public/news = %+v, %v; want PUBACK 0x87", pr, err)
	}
	bob.publish(t, ctx, "public/news", "real", 1, false)
	alice.expectMsg(t, ctx, "public/news", "real", 1)
	alice.publish(t, ctx, "alice/diary", "mine", 1, false)
	alice.expectMsg(t, ctx, "alice/diary", "mine", 1)
	alice.quiet(t, ctx)
	after := ts.srv.Stats()
	if d := after.PublishDenied - before.PublishDenied; d != 1 {
		t.Errorf("PublishDenied grew by %d; want 1", d)
	}
	if after.SubscribeDenied != 3 {
		t.Errorf("SubscribeDenied = %d; want 3", after.SubscribeDenied)
	}
	if after.RefusedAuth != 3 {
		t.Errorf("RefusedAuth = %d; want 3", after.RefusedAuth)
	}
}

// TestPahoSubscriptionOptions covers the MQTT 5 subscription options:
// no local, retain as published and retain handling.
func TestPahoSubscriptionOptions(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	pub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	pub.publish(t, ctx, "opt/retained", "old", 1, true)

	c := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "c", CleanStart: true})
	subscribe := func(o paho.SubscribeOptions) {
		t.Helper()
		sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{o}})
		if err != nil || len(sa.Reasons) != 1 || sa.Reasons[0] != o.QoS {
			t.Fatalf("Subscribe(%+v) = %+v, %v", o, sa, err)
		}
	}
	// Retain handling 2: no retained messages at subscribe.
	subscribe(paho.SubscribeOptions{Topic: "opt/retained", QoS: 1, RetainHandling: 2})
	c.quiet(t, ctx)
	// Retain handling 1: only for a new subscription.
	subscribe(paho.SubscribeOptions{Topic: "opt/+", QoS: 1, RetainHandling: 1})
	c.expectMsg(t, ctx, "opt/retained", "old", 1)
	subscribe(paho.SubscribeOptions{Topic: "opt/+", QoS: 1, RetainHandling: 1})
	c.quiet(t, ctx)
	if _, err := c.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{"opt/+", "opt/retained"}}); err != nil {
		t.Fatal(err)
	}

	// No local: the client's own publishes are not sent back to it.
	subscribe(paho.SubscribeOptions{Topic: "loop/#", QoS: 1, NoLocal: true})
	c.publish(t, ctx, "loop/self", "mine", 1, false)
	pub.publish(t, ctx, "loop/other", "theirs", 1, false)
	c.expectMsg(t, ctx, "loop/other", "theirs", 1)
	c.quiet(t, ctx)

	// Retain as published: a live retained message keeps its flag.
	subscribe(paho.SubscribeOptions{Topic: "rap/#", QoS: 1, RetainAsPublished: true, RetainHandling: 2})
	pub.publish(t, ctx, "rap/x", "flagged", 1, true)
	if m := c.expectMsg(t, ctx, "rap/x", "flagged", 1); !m.Retain {
		t.Errorf("retain-as-published delivery has retain 0; want 1")
	}
}

// TestTakeover311 takes over an MQTT 3.1.1 session: the first connection
// is closed without a packet (3.1.1 has no server DISCONNECT).
func TestTakeover311(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	first := dialRaw(t, ts.addr, "same")
	dialRaw(t, ts.addr, "same")
	_ = first.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if typ, body, err := first.read(); !errors.Is(err, io.EOF) {
		t.Errorf("first connection after takeover: type %d body %x err %v; want EOF", typ, body, err)
	}
	waitFor(t, ctx, "the takeover to be counted", func() bool { return ts.srv.Stats().TakenOver == 1 })
}
