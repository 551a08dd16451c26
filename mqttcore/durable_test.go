package mqttcore_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// waitAck returns the next deferred acknowledgement fe receives, failing
// after a few seconds.
func waitAck(t testing.TB, ch chan mqttcore.Ack) mqttcore.Ack {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no deferred acknowledgement")
	}
	return mqttcore.Ack{}
}

// attachAcks attaches a front-end whose deferred acknowledgements arrive on
// the returned channel.
func attachAcks(t testing.TB, b *mqttcore.Broker, opts mqttcore.ConnectOptions) (*mqttcore.Conn, chan mqttcore.Ack) {
	t.Helper()
	ch := make(chan mqttcore.Ack, 16)
	c, _, err := b.Attach(&fakeFE{ackCh: ch}, opts)
	if err != nil {
		t.Fatalf("Attach(%q) = %v", opts.ClientID, err)
	}
	return c, ch
}

// TestJournalAckAfterCommit: a QoS 1 publish bound for a persistent
// session is acknowledged only after the commit that holds it, and the
// subscriber gets it only then; one bound only for clean sessions costs no
// commit and is acknowledged at once.
func TestJournalAckAfterCommit(t *testing.T) {
	j := newMemJournal(t)
	b := newJournalled(t, mqttcore.Config{}, j)
	sub, _ := attach(t, b, persistent("sub"))
	subscribe(t, sub, "durable", mqttcore.SubOptions{QoS: 1})
	clean, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "clean"})
	subscribe(t, clean, "volatile", mqttcore.SubOptions{QoS: 1})
	pub, acks := attachAcks(t, b, mqttcore.ConnectOptions{ClientID: "pub"})
	j.sync(t)

	before := b.Stats().Commits
	if st := pubConn(t, pub, "volatile", "v", 1, 1); st != mqttcore.PublishDone {
		t.Fatalf("publish to a clean session = %v; want done at once", st)
	}
	if got := b.Stats().Commits; got != before {
		t.Errorf("a publish to clean sessions committed (%d -> %d commits)", before, got)
	}

	j.hold()
	if st := pubConn(t, pub, "durable", "d", 1, 2); st != mqttcore.PublishPending {
		t.Fatalf("publish to a persistent session = %v; want pending", st)
	}
	if got := drain(sub); len(got) != 0 {
		t.Fatalf("delivered before the commit: %q", payloads(got))
	}
	select {
	case a := <-acks:
		t.Fatalf("acknowledged before the commit: %+v", a)
	default:
	}
	j.release()
	if a := waitAck(t, acks); a.PacketID != 2 || a.Err != nil || a.Kind != mqttcore.AckPublish {
		t.Fatalf("deferred ack = %+v; want packet 2 accepted", a)
	}
	j.sync(t)
	if got := payloads(drain(sub)); !slices.Equal(got, []string{"d"}) {
		t.Errorf("after the commit delivered %q; want [d]", got)
	}
	if n := j.entryCount(); n != 1 {
		t.Errorf("journal holds %d entries; want 1", n)
	}
}

// TestJournalCommitFailure: a failed commit refuses the acknowledgement
// with ErrStoreFailed and takes the message out of the subscriber's queue;
// the next publish goes through.
func TestJournalCommitFailure(t *testing.T) {
	j := newMemJournal(t)
	b := newJournalled(t, mqttcore.Config{}, j)
	sub, _ := attach(t, b, persistent("sub"))
	subscribe(t, sub, "t", mqttcore.SubOptions{QoS: 1})
	pub, acks := attachAcks(t, b, mqttcore.ConnectOptions{ClientID: "pub"})
	j.sync(t)
	j.mu.Lock()
	j.failNext = errors.New("disk full")
	j.mu.Unlock()
	pubConn(t, pub, "t", "lost", 1, 1)
	if a := waitAck(t, acks); !isErr(a.Err, mqttcore.ErrStoreFailed) && a.Err == nil {
		t.Fatalf("ack after a failed commit = %+v; want an error", a)
	}
	if info, _ := b.Session("sub"); info.Queued != 0 {
		t.Errorf("subscriber queue after a failed commit = %d; want 0", info.Queued)
	}
	pubConn(t, pub, "t", "kept", 1, 2)
	if a := waitAck(t, acks); a.Err != nil {
		t.Fatalf("ack after recovery = %+v; want success", a)
	}
	j.sync(t)
	if got := payloads(drain(sub)); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("delivered %q; want [kept]", got)
	}
	if st := b.Stats(); st.CommitErrors == 0 {
		t.Errorf("Stats = %+v; want a counted commit error", st)
	}
}

// TestJournalSyncBarrier: a subscription change of a persistent session is
// durable when Sync's acknowledgement arrives, and survives a restart; a
// clean session needs no barrier.
func TestJournalSyncBarrier(t *testing.T) {
	j := newMemJournal(t)
	b := newJournalled(t, mqttcore.Config{}, j)
	c, acks := attachAcks(t, b, persistent("p"))
	subscribe(t, c, "cmd/#", mqttcore.SubOptions{QoS: 1})
	j.hold()
	if !c.Sync(mqttcore.Ack{Kind: mqttcore.AckSubscribe, PacketID: 7}) {
		t.Fatal("Sync on a persistent session = false; want a barrier")
	}
	select {
	case a := <-acks:
		t.Fatalf("barrier passed before the commit: %+v", a)
	default:
	}
	j.release()
	if a := waitAck(t, acks); a.Kind != mqttcore.AckSubscribe || a.PacketID != 7 {
		t.Fatalf("barrier ack = %+v; want subscribe 7", a)
	}
	j.mu.Lock()
	var subs []mqttcore.SubscriptionRecord
	for _, r := range j.sessions {
		subs = r.Subscriptions
	}
	j.mu.Unlock()
	if len(subs) != 1 || subs[0].Filter != "cmd/#" {
		t.Errorf("journalled subscriptions = %+v; want cmd/#", subs)
	}
	clean, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "clean"})
	if clean.Sync(mqttcore.Ack{Kind: mqttcore.AckSubscribe}) {
		t.Error("Sync on a clean session = true; want nothing to wait for")
	}
}

// TestJournalFrontEndStateSurvives: front-end state comes back through
// Restored after a restart, and a session that was attached comes back
// asleep (its front-end re-attaches it) instead of lost with its will
// published.
func TestJournalFrontEndStateSurvives(t *testing.T) {
	j := newMemJournal(t)
	b1, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	opts := withWill("sensor", 0, time.Hour)
	c, _ := attach(t, b1, opts)
	c.SetFrontEndState([]byte("addr+topics"))
	app, _ := attach(t, b1, withWill("app", 0, time.Hour))
	_ = app
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	j.sync(t)
	b2 := newJournalled(t, mqttcore.Config{}, j)
	r := b2.Restored()
	if len(r) != 1 || r[0].ClientID != "sensor" || string(r[0].FrontEnd) != "addr+topics" || r[0].State != mqttcore.StateAsleep {
		t.Fatalf("Restored() = %+v; want sensor, asleep, with its state", r)
	}
	if again := b2.Restored(); again != nil {
		t.Errorf("second Restored() = %+v; want nil", again)
	}
	if info, _ := b2.Session("sensor"); info.State != mqttcore.StateAsleep || !info.HasWill {
		t.Errorf("sensor after restart = %+v; want asleep with its will", info)
	}
	if info, _ := b2.Session("app"); info.State != mqttcore.StateLost {
		t.Errorf("app after restart = %+v; want lost", info)
	}
}

// TestJournalEndedSessionLeaves: a persistent session that ends (clean
// start, or expiry changed to 0) leaves the journal.
func TestJournalEndedSessionLeaves(t *testing.T) {
	j := newMemJournal(t)
	b := newJournalled(t, mqttcore.Config{}, j)
	c, _ := attach(t, b, persistent("a"))
	subscribe(t, c, "x", mqttcore.SubOptions{QoS: 1})
	publish(t, b.Inline("p"), "x", "1", 1, false)
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	j.sync(t)
	if n, e := j.sessionCount(), j.entryCount(); n != 1 || e != 1 {
		t.Fatalf("journal after a persistent disconnect: %d sessions, %d entries; want 1, 1", n, e)
	}
	b2 := newJournalled(t, mqttcore.Config{}, j)
	attach(t, b2, mqttcore.ConnectOptions{ClientID: "a", CleanStart: true})
	b2.Close()
	j.sync(t)
	if n, e := j.sessionCount(), j.entryCount(); n != 0 || e != 0 {
		t.Errorf("journal after a clean start: %d sessions, %d entries; want 0, 0", n, e)
	}
}

// TestKeepDetachedFrontEndState: state handed over for a session whose
// attachment ended earlier (asleep) comes back to the attachment that
// resumes it, and survives a restart; a session that is attached, ended,
// unknown, or does not outlive its attachments keeps nothing.
func TestKeepDetachedFrontEndState(t *testing.T) {
	j := newMemJournal(t)
	b1 := newJournalled(t, mqttcore.Config{}, j)
	c, _ := attach(t, b1, persistent("sleeper"))
	if b1.KeepDetachedFrontEndState("sleeper", []byte("x")) {
		t.Error("KeepDetachedFrontEndState for an attached session = true; want false")
	}
	if err := c.Sleep(time.Minute); err != nil {
		t.Fatal(err)
	}
	if !b1.KeepDetachedFrontEndState("sleeper", []byte("aliases")) {
		t.Fatal("KeepDetachedFrontEndState for an asleep session = false; want true")
	}
	if b1.KeepDetachedFrontEndState("nobody", []byte("x")) {
		t.Error("KeepDetachedFrontEndState for an unknown client = true; want false")
	}
	short, _ := attach(t, b1, mqttcore.ConnectOptions{ClientID: "short", SessionExpiry: time.Hour})
	_ = short.Sleep(time.Minute)
	once, _ := attach(t, b1, mqttcore.ConnectOptions{ClientID: "once"})
	_ = once.Sleep(time.Minute)
	if b1.KeepDetachedFrontEndState("once", []byte("x")) {
		t.Error("KeepDetachedFrontEndState for a session without expiry = true; want false")
	}
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	j.sync(t)
	b2 := newJournalled(t, mqttcore.Config{}, j)
	var got []string
	for _, r := range b2.Restored() {
		got = append(got, fmt.Sprintf("%s %v %q", r.ClientID, r.State, r.FrontEnd))
	}
	if want := []string{`sleeper asleep "aliases"`}; !slices.Equal(got, want) {
		t.Fatalf("Restored() = %q; want %q", got, want)
	}
	// A session restored asleep is its front-end's to rebuild; one that
	// does not rebuild it hands the state back for the resume.
	if !b2.KeepDetachedFrontEndState("sleeper", []byte("aliases")) {
		t.Fatal("KeepDetachedFrontEndState after a restart = false; want true")
	}
	c, _ = attach(t, b2, persistent("sleeper"))
	if got := string(c.TakeFrontEndState()); got != "aliases" {
		t.Errorf("TakeFrontEndState after a restart = %q; want aliases", got)
	}
}

// TestKeptFrontEndState: state kept at a disconnect comes back, once, to
// the attachment that resumes the session; a clean start, a session that
// ends with its attachment and a restart (for a disconnected session) each
// behave as documented.
func TestKeptFrontEndState(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	c, _ := attach(t, b, persistent("a"))
	c.KeepFrontEndState([]byte("aliases"))
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if got := c.TakeFrontEndState(); got != nil {
		t.Errorf("TakeFrontEndState on a detached Conn = %q; want nil", got)
	}
	c, _ = attach(t, b, persistent("a"))
	if got := string(c.TakeFrontEndState()); got != "aliases" {
		t.Errorf("TakeFrontEndState after a resume = %q; want aliases", got)
	}
	if got := c.TakeFrontEndState(); got != nil {
		t.Errorf("second TakeFrontEndState = %q; want nil", got)
	}
	c.KeepFrontEndState([]byte("again"))
	_ = c.Lost()
	clean := persistent("a")
	clean.CleanStart = true
	c, _ = attach(t, b, clean)
	if got := c.TakeFrontEndState(); got != nil {
		t.Errorf("TakeFrontEndState after a clean start = %q; want nil", got)
	}
	gone, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "gone"})
	gone.KeepFrontEndState([]byte("x"))
	_ = gone.Disconnect()
	gone, _ = attach(t, b, persistent("gone"))
	if got := gone.TakeFrontEndState(); got != nil {
		t.Errorf("TakeFrontEndState for a session that ended = %q; want nil", got)
	}

	j := newMemJournal(t)
	b1 := newJournalled(t, mqttcore.Config{}, j)
	d, _ := attach(t, b1, persistent("d"))
	d.KeepFrontEndState([]byte("kept"))
	_ = d.Disconnect()
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	j.sync(t)
	b2 := newJournalled(t, mqttcore.Config{}, j)
	if r := b2.Restored(); len(r) != 1 || r[0].State != mqttcore.StateDisconnected || string(r[0].FrontEnd) != "kept" {
		t.Errorf("Restored() = %+v; want d, disconnected, with its state", r)
	}
	d, _ = attach(t, b2, persistent("d"))
	if got := string(d.TakeFrontEndState()); got != "kept" {
		t.Errorf("TakeFrontEndState after a restart = %q; want kept", got)
	}
}
