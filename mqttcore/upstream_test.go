package mqttcore_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// fakeUpstream claims client ids starting with "t-" and records what the
// core asks of their links; completions are the test's to call.
type fakeUpstream struct {
	mu    sync.Mutex
	links map[string]*fakeLink
}

func (u *fakeUpstream) Claims(id string) bool { return strings.HasPrefix(id, "t-") }

func (u *fakeUpstream) Open(id string, in mqttcore.UpstreamSink) mqttcore.UpstreamLink {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := &fakeLink{in: in}
	if u.links == nil {
		u.links = map[string]*fakeLink{}
	}
	u.links[id] = l
	return l
}

func (u *fakeUpstream) link(id string) *fakeLink {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.links[id]
}

// fakeLink is an UpstreamLink that connects only when told.
type fakeLink struct {
	in mqttcore.UpstreamSink

	mu        sync.Mutex
	connected bool
	connects  []mqttcore.ConnectOptions
	done      []func(error) // pending completions, in call order
	published []*mqttcore.Message
	subs      []string
	unsubs    []string
	offline   []mqttcore.State
	wills     []*mqttcore.Will
	setWills  []*mqttcore.Will
	closed    int
}

func (l *fakeLink) Attach(opts mqttcore.ConnectOptions, present bool, done func(error)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.connected && !opts.CleanStart {
		return false
	}
	l.connects = append(l.connects, opts)
	l.done = append(l.done, func(err error) {
		l.mu.Lock()
		l.connected = err == nil
		l.mu.Unlock()
		done(err)
	})
	return true
}

func (l *fakeLink) Publish(m *mqttcore.Message, done func(error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.published = append(l.published, m)
	if done != nil {
		l.done = append(l.done, done)
	}
}

func (l *fakeLink) Subscribe(filter string, _ mqttcore.SubOptions, done func(error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs = append(l.subs, filter)
	l.done = append(l.done, done)
}

func (l *fakeLink) Unsubscribe(filter string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unsubs = append(l.unsubs, filter)
}

func (l *fakeLink) Offline(how mqttcore.State, _ time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.offline = append(l.offline, how)
	if how != mqttcore.StateAsleep {
		l.connected = false
	}
}

func (l *fakeLink) SetWill(w *mqttcore.Will) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setWills = append(l.setWills, w)
}

func (l *fakeLink) PublishWill(w *mqttcore.Will) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wills = append(l.wills, w)
}

func (l *fakeLink) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed++
}

// complete runs the oldest pending completion with err.
func (l *fakeLink) complete(t *testing.T, err error) {
	t.Helper()
	l.mu.Lock()
	if len(l.done) == 0 {
		l.mu.Unlock()
		t.Fatal("no completion pending on the link")
	}
	f := l.done[0]
	l.done = l.done[1:]
	l.mu.Unlock()
	f(err)
}

func upBroker(t *testing.T) (*mqttcore.Broker, *fakeUpstream) {
	t.Helper()
	b := newBroker(t, mqttcore.Config{})
	u := &fakeUpstream{}
	b.SetUpstream(u)
	return b, u
}

// TestUpstreamConnectWaitsForRemote: a transparent session's CONNACK waits
// for the remote (Sync(AckConnect) true, Acked later with the refusal);
// a re-attach to a connected link does not wait; a session the upstream
// does not claim never waits.
func TestUpstreamConnectWaitsForRemote(t *testing.T) {
	b, u := upBroker(t)
	c, fe := attach(t, b, persistent("t-1"))
	if !c.Sync(mqttcore.Ack{Kind: mqttcore.AckConnect}) {
		t.Fatal("Sync(AckConnect) = false for a transparent session whose link connects")
	}
	if n := len(fe.ackList()); n != 0 {
		t.Fatalf("acked before the remote answered: %v", fe.ackList())
	}
	l := u.link("t-1")
	l.complete(t, nil)
	if acks := fe.ackList(); len(acks) != 1 || acks[0].Kind != mqttcore.AckConnect || acks[0].Err != nil {
		t.Fatalf("acks = %+v; want one AckConnect without error", acks)
	}
	c2, _ := attach(t, b, persistent("t-1"))
	if c2.Sync(mqttcore.Ack{Kind: mqttcore.AckConnect}) {
		t.Fatal("Sync(AckConnect) = true although the link was connected")
	}

	// A refusal travels in Err.
	c3, fe3 := attach(t, b, persistent("t-2"))
	if !c3.Sync(mqttcore.Ack{Kind: mqttcore.AckConnect}) {
		t.Fatal("Sync(AckConnect) = false")
	}
	u.link("t-2").complete(t, mqttcore.ErrNotAuthorized)
	if acks := fe3.ackList(); len(acks) != 1 || !errors.Is(acks[0].Err, mqttcore.ErrNotAuthorized) {
		t.Fatalf("acks = %+v; want AckConnect with ErrNotAuthorized", acks)
	}

	cl, _ := attach(t, b, persistent("local"))
	if cl.Sync(mqttcore.Ack{Kind: mqttcore.AckConnect}) || u.link("local") != nil {
		t.Fatal("a session the upstream does not claim got a link or waits")
	}
}

// TestUpstreamPublishSubscribe: publishes go to the link, not the local
// tree, acknowledged (or refused) when the link says; a subscription is
// made on the link, and its SUBACK waits for it; messages the link
// delivers are queued for the session.
func TestUpstreamPublishSubscribe(t *testing.T) {
	b, u := upBroker(t)
	c, fe := attach(t, b, persistent("t-1"))
	l := u.link("t-1")
	l.complete(t, nil)
	local, lfe := attach(t, b, persistent("local"))
	subscribe(t, local, "#", mqttcore.SubOptions{QoS: 1})

	st, err := c.Publish(&mqttcore.Message{Topic: "a/b", Payload: []byte("x"), QoS: 2}, 7, 0)
	if err != nil || st != mqttcore.PublishPending {
		t.Fatalf("Publish = %v, %v; want pending", st, err)
	}
	l.complete(t, mqttcore.ErrNotAuthorized)
	acks := fe.ackList()
	if len(acks) != 1 || acks[0].Kind != mqttcore.AckPublish || acks[0].PacketID != 7 || !errors.Is(acks[0].Err, mqttcore.ErrNotAuthorized) {
		t.Fatalf("acks = %+v; want the publish refused with ErrNotAuthorized", acks)
	}
	// The refused QoS 2 id is free again: a retry is no duplicate.
	st, err = c.Publish(&mqttcore.Message{Topic: "a/b", Payload: []byte("x"), QoS: 2}, 7, 0)
	if err != nil || st != mqttcore.PublishPending {
		t.Fatalf("retry of a refused QoS 2 publish = %v, %v; want pending, not a duplicate", st, err)
	}
	l.complete(t, nil)
	if d := drain(local); len(d) != 0 || lfe.notes.Load() != 0 {
		t.Fatalf("a transparent publish reached the local tree: %v", topics(d))
	}

	if err := c.Subscribe("cmd/#", mqttcore.SubOptions{QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if !c.Sync(mqttcore.Ack{Kind: mqttcore.AckSubscribe, PacketID: 9}) {
		t.Fatal("Sync(AckSubscribe) = false for a transparent subscription")
	}
	l.complete(t, mqttcore.ErrNotAuthorized)
	acks = fe.ackList()
	if last := acks[len(acks)-1]; last.Kind != mqttcore.AckSubscribe || last.PacketID != 9 || !errors.Is(last.Err, mqttcore.ErrNotAuthorized) {
		t.Fatalf("last ack = %+v; want the SUBACK refused", last)
	}
	if info, _ := b.Session("t-1"); info.Subscriptions != 0 {
		t.Fatalf("the subscription went to the local tree: %+v", info)
	}
	// The local tree does not feed a transparent session; the link does.
	publish(t, b.Inline("app"), "cmd/x", "local", 1, false)
	if err := l.in.Deliver(&mqttcore.Message{Topic: "cmd/y", Payload: []byte("remote"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if got := topics(drain(c)); len(got) != 1 || got[0] != "cmd/y" {
		t.Fatalf("deliveries = %v; want only cmd/y from the link", got)
	}
	if _, err := c.Unsubscribe("cmd/#"); err != nil || len(l.unsubs) != 1 {
		t.Fatalf("Unsubscribe = %v, link unsubs %v", err, l.unsubs)
	}
}

// TestUpstreamLifecycle: sleep and loss reach the link; a lost session's
// will goes to the link, not to local subscribers; a remote takeover
// closes the front-end; a session that ends closes its link.
func TestUpstreamLifecycle(t *testing.T) {
	b, u := upBroker(t)
	local, _ := attach(t, b, persistent("local"))
	subscribe(t, local, "#", mqttcore.SubOptions{QoS: 1})
	opts := persistent("t-1")
	opts.Will = &mqttcore.Will{Topic: "will/t-1", Payload: []byte("gone")}
	c, _ := attach(t, b, opts)
	l := u.link("t-1")
	l.complete(t, nil)
	if got := l.connects[0].Will; got != opts.Will {
		t.Fatalf("the link connected with will %+v; want the session's", got)
	}
	w2 := &mqttcore.Will{Topic: "will/t-1", Payload: []byte("gone, updated")}
	if err := c.SetWill(w2); err != nil {
		t.Fatal(err)
	}
	if len(l.setWills) != 1 || l.setWills[0] != w2 {
		t.Fatalf("link SetWill calls %+v; want the updated will", l.setWills)
	}
	if err := c.Sleep(time.Hour); err != nil {
		t.Fatal(err)
	}
	c, _ = attach(t, b, mqttcore.ConnectOptions{ClientID: "t-1", SessionExpiry: mqttcore.NeverExpire, KeepWill: true})
	if err := c.Lost(); err != nil {
		t.Fatal(err)
	}
	if want := []mqttcore.State{mqttcore.StateAsleep, mqttcore.StateLost}; len(l.offline) != 2 || l.offline[0] != want[0] || l.offline[1] != want[1] {
		t.Fatalf("link offline calls %v; want %v", l.offline, want)
	}
	if len(l.wills) != 1 || l.wills[0] != w2 {
		t.Fatalf("link wills %+v; want the session's will", l.wills)
	}
	if d := drain(local); len(d) != 0 {
		t.Fatalf("a transparent session's will was published locally: %v", topics(d))
	}

	c, fe := attach(t, b, persistent("t-1"))
	l.complete(t, nil)
	l.in.TakenOver()
	if r := fe.closeReasons(); len(r) != 1 || !errors.Is(r[0], mqttcore.ErrTakenOver) {
		t.Fatalf("close reasons %v; want ErrTakenOver", r)
	}
	if _, err := c.Publish(&mqttcore.Message{Topic: "a", QoS: 1}, 1, 0); !errors.Is(err, mqttcore.ErrDetached) {
		t.Fatalf("publish after the takeover: %v; want ErrDetached", err)
	}

	// A clean start ends the session and closes its link; the new session
	// opens its own.
	attach(t, b, mqttcore.ConnectOptions{ClientID: "t-1", CleanStart: true})
	if l.closed != 1 || u.link("t-1") == l {
		t.Fatalf("after a clean start: old link closed %d times, new link %p (old %p)", l.closed, u.link("t-1"), l)
	}
}
