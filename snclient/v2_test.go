package snclient_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// The fake gateway's 2.0 side: the client under test has Options.Version
// set to 2.0, and the gateway decodes and encodes with the 2.0 codec.

func (g *fakeGW) recvV2() (sn.MessageV2, []byte) {
	g.t.Helper()
	b := g.recvRaw()
	m, err := sn.DecodeV2(b)
	if err != nil {
		g.t.Fatalf("gateway: DecodeV2(%x) = %v", b, err)
	}
	return m, b
}

// expectV2 returns the next 2.0 packet from the client, which must be an M.
func expectV2[M sn.MessageV2](g *fakeGW) M {
	g.t.Helper()
	m, b := g.recvV2()
	mm, ok := m.(M)
	if !ok {
		var want M
		g.t.Fatalf("gateway: got %v %x; want %T", m.Type(), b, want)
	}
	return mm
}

func (g *fakeGW) sendV2(m sn.MessageV2) {
	g.t.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		g.t.Fatalf("gateway: encode %v: %v", m.Type(), err)
	}
	if _, err := g.conn.WriteTo(b, g.conn.remote); err != nil {
		g.t.Fatalf("gateway: send %v: %v", m.Type(), err)
	}
}

func optionsV2() snclient.Options {
	o := baseOptions()
	o.Version = snclient.Version20
	return o
}

// connectedV2 returns a 2.0 client connected to a fake gateway.
func connectedV2(t *testing.T, opts snclient.Options) (*snclient.Client, *fakeGW) {
	t.Helper()
	c, g := newClient(t, opts)
	done := async(func() error { return c.Connect(context.Background()) })
	m := expectV2[*sn.ConnectV2](g)
	g.sendV2(&sn.ConnackV2{PacketID: m.PacketID})
	if err := wait(t, done); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c, g
}

func TestV2Connect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := newClient(t, optionsV2())
		done := async(func() error { return c.Connect(context.Background()) })
		// Clean Start, Packet Id 1, version 2, Keep Alive 30, Maximum Packet
		// Size 1500 (DefaultMaxMessageSize), ClientId "dev1": vector D17's
		// layout.
		want := []byte{0x0E, 0x01, 0x01, 0x00, 0x01, 0x02, 0x00, 0x1E, 0x05, 0xDC, 'd', 'e', 'v', '1'}
		if got := g.recvRaw(); !bytes.Equal(got, want) {
			t.Fatalf("CONNECT = %x; want %x", got, want)
		}
		g.sendV2(&sn.ConnackV2{PacketID: 9}) // not the answer: another Packet Id
		g.sendV2(&sn.ConnackV2{PacketID: 1})
		if err := wait(t, done); err != nil {
			t.Fatalf("Connect() = %v", err)
		}
		if s := c.State(); s != snclient.StateActive {
			t.Fatalf("State() = %v; want active", s)
		}
	})
}

func TestV2ConnectWillPersistent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := optionsV2()
		opts.PersistentSession = true
		opts.AllowAddressChange = true
		opts.Will = &snclient.Will{Topic: "will/t", Message: []byte("bye"), QoS: 1, Retain: true}
		c, g := newClient(t, opts)
		done := async(func() error { return c.Connect(context.Background()) })
		got := expectV2[*sn.ConnectV2](g)
		want := &sn.ConnectV2{PacketID: 1, KeepAlive: 30, MaxPacketSize: 1500, AllowAddressChange: true,
			HasSessionExpiry: true, SessionExpiry: 0xFFFFFFFF,
			Will: true, WillQoS: 1, WillRetain: true, WillTopicType: sn.TopicTypeName, WillTopic: []byte("will/t"), WillPayload: []byte("bye"),
			ClientID: []byte("dev1")}
		if gb, _ := got.AppendBinary(nil); !bytes.Equal(gb, must(want.AppendBinary(nil))) {
			t.Fatalf("CONNECT = %+v; want %+v", got, want)
		}
		g.sendV2(&sn.ConnackV2{PacketID: 1, SessionPresent: true})
		if err := wait(t, done); err != nil {
			t.Fatalf("Connect() = %v", err)
		}
	})
}

// Session aliases survive a reconnect only when the CONNACK says the
// session is present.
func TestV2SessionPresentKeepsAliases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := optionsV2()
		opts.PersistentSession = true
		c, g := connectedV2(t, opts)
		ctx := context.Background()
		done := async(func() error { _, err := c.Register(ctx, "a/b"); return err })
		r := expectV2[*sn.RegisterV2](g)
		g.sendV2(&sn.RegackV2{PacketID: r.PacketID, HasTopicAlias: true, TopicAlias: 4})
		if err := wait(t, done); err != nil {
			t.Fatalf("Register() = %v", err)
		}
		for _, present := range []bool{true, false} {
			done = async(func() error { return c.Connect(ctx) })
			m := expectV2[*sn.ConnectV2](g)
			g.sendV2(&sn.ConnackV2{PacketID: m.PacketID, SessionPresent: present})
			if err := wait(t, done); err != nil {
				t.Fatalf("Connect() = %v", err)
			}
			if _, ok := c.TopicID("a/b"); ok != present {
				t.Fatalf("after CONNACK Session Present %v: alias known %v; want %v", present, ok, present)
			}
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestV2ConnectRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := newClient(t, optionsV2())
		done := async(func() error { return c.Connect(context.Background()) })
		m := expectV2[*sn.ConnectV2](g)
		g.sendV2(&sn.ConnackV2{PacketID: m.PacketID, ReasonCode: sn.BadUserNameOrPassword})
		err := wait(t, done)
		var rce *snclient.ReasonCodeError
		if !errors.As(err, &rce) || rce.Code != sn.BadUserNameOrPassword || rce.Packet != sn.PacketConnack {
			t.Fatalf("Connect() = %v; want a ReasonCodeError CONNACK 0x86", err)
		}
		if s := c.State(); s != snclient.StateDisconnected {
			t.Fatalf("State() = %v; want disconnected", s)
		}
	})
}

// CSD01 §4.4: a CONNECT is never retransmitted. The client waits as long
// as its retransmissions would take, then gives up.
func TestV2ConnectNotRetransmitted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := newClient(t, optionsV2())
		done := async(func() error { return c.Connect(context.Background()) })
		expectV2[*sn.ConnectV2](g)
		if err := wait(t, done); !errors.Is(err, snclient.ErrNoResponse) {
			t.Fatalf("Connect() = %v; want ErrNoResponse", err)
		}
		select {
		case b := <-g.conn.in:
			t.Fatalf("gateway: the client sent %x after its CONNECT; want nothing", b)
		default:
		}
		if st := c.Stats(); st.Sent != 1 || st.Retransmitted != 0 {
			t.Fatalf("Stats() = %+v; want one datagram sent, none retransmitted", st)
		}
	})
}

func TestV2PublishUnacked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := optionsV2()
		opts.PredefinedTopics = map[uint16]string{5: "temp"}
		c, g := connectedV2(t, opts)
		ctx := context.Background()
		// QoS 0 by name, no REGISTER: vector D18.
		if err := c.Publish(ctx, snclient.Named("a/b"), 0, false, []byte("hi")); err != nil {
			t.Fatalf("Publish(a/b, 0) = %v", err)
		}
		if got, want := g.recvRaw(), []byte{0x0A, 0x03, 0x03, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'}; !bytes.Equal(got, want) {
			t.Fatalf("PUBLISH = %x; want %x", got, want)
		}
		// QoS -1: PUBWOS, by predefined alias (the name is listed) and by name.
		if err := c.Publish(ctx, snclient.Named("temp"), -1, true, []byte{0x2A}); err != nil {
			t.Fatalf("Publish(temp, -1) = %v", err)
		}
		if got, want := g.recvRaw(), []byte{0x06, 0x12, 0x11, 0x00, 0x05, 0x2A}; !bytes.Equal(got, want) {
			t.Fatalf("PUBWOS = %x; want %x", got, want)
		}
		if err := c.Publish(ctx, snclient.Named("a/b"), -1, false, []byte("x")); err != nil {
			t.Fatalf("Publish(a/b, -1) = %v", err)
		}
		if p := expectV2[*sn.Pubwos](g); p.TopicType != sn.TopicTypeName || string(p.TopicName) != "a/b" {
			t.Fatalf("PUBWOS = %+v; want topic name a/b", p)
		}
		// 2.0 has no short topic names.
		if err := c.Publish(ctx, snclient.Short("ab"), 0, false, nil); !errors.Is(err, snclient.ErrInvalidTopic) {
			t.Fatalf("Publish(short) = %v; want ErrInvalidTopic", err)
		}
		g.quiet(keepAlive / 2)
	})
}

func TestV2PublishQoS1(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connectedV2(t, optionsV2())
		done := async(func() error { return c.Publish(context.Background(), snclient.Named("a/b"), 1, false, []byte("hi")) })
		p := expectV2[*sn.PublishV2](g)
		if p.QoS != 1 || p.TopicType != sn.TopicTypeName || string(p.TopicName) != "a/b" || p.PacketID == 0 || p.Dup {
			t.Fatalf("PUBLISH = %+v; want QoS 1 by name with a Packet Id", p)
		}
		// Unanswered: the retransmission is identical, DUP still 0 (QoS 1).
		if r := expectV2[*sn.PublishV2](g); r.Dup || r.PacketID != p.PacketID {
			t.Fatalf("retransmitted PUBLISH = %+v; want DUP 0 and Packet Id %d", r, p.PacketID)
		}
		g.sendV2(&sn.PubackV2{PacketID: p.PacketID})
		if err := wait(t, done); err != nil {
			t.Fatalf("Publish() = %v", err)
		}

		done = async(func() error { return c.Publish(context.Background(), snclient.Named("x"), 1, false, nil) })
		p = expectV2[*sn.PublishV2](g)
		g.sendV2(&sn.PubackV2{PacketID: p.PacketID, ReasonCode: sn.NotAuthorized})
		var rce *snclient.ReasonCodeError
		if err := wait(t, done); !errors.As(err, &rce) || rce.Code != sn.NotAuthorized || rce.Topic != "x" {
			t.Fatalf("Publish(x) = %v; want ReasonCodeError 0x87", err)
		}
	})
}

func TestV2PublishQoS2(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connectedV2(t, optionsV2())
		done := async(func() error { return c.Publish(context.Background(), snclient.Named("a/b"), 2, false, []byte("hi")) })
		p := expectV2[*sn.PublishV2](g)
		if p.Dup {
			t.Fatalf("first PUBLISH has DUP set")
		}
		if r := expectV2[*sn.PublishV2](g); !r.Dup || r.PacketID != p.PacketID {
			t.Fatalf("retransmitted QoS 2 PUBLISH = %+v; want DUP 1", r)
		}
		g.sendV2(&sn.PubrecV2{PacketID: p.PacketID})
		rel := expectV2[*sn.PubrelV2](g)
		if rel.PacketID != p.PacketID {
			t.Fatalf("PUBREL = %+v; want Packet Id %d", rel, p.PacketID)
		}
		g.sendV2(&sn.PubcompV2{PacketID: p.PacketID})
		if err := wait(t, done); err != nil {
			t.Fatalf("Publish() = %v", err)
		}
	})
}

// A SUBACK's session alias is used for publishing and for delivery; a
// PUBACK "unknown topic alias" sends the client back to the full name.
func TestV2SubscribeAlias(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(inbox, 4)
		opts := optionsV2()
		opts.Handler = in.handler
		c, g := connectedV2(t, opts)
		ctx := context.Background()
		var sub snclient.Subscription
		done := async(func() (err error) { sub, err = c.Subscribe(ctx, snclient.Named("a/b"), 1); return err })
		s := expectV2[*sn.SubscribeV2](g)
		if s.TopicType != sn.TopicTypeName || string(s.TopicFilter) != "a/b" || s.QoS != 1 {
			t.Fatalf("SUBSCRIBE = %+v", s)
		}
		g.sendV2(&sn.SubackV2{PacketID: s.PacketID, HasTopicAlias: true, TopicAlias: 5, ReasonCode: sn.GrantedQoS1})
		if err := wait(t, done); err != nil || sub != (snclient.Subscription{QoS: 1, TopicID: 5}) {
			t.Fatalf("Subscribe() = %+v, %v; want QoS 1, alias 5", sub, err)
		}
		// Publishing uses the alias now.
		if err := c.Publish(ctx, snclient.Named("a/b"), 0, false, []byte("1")); err != nil {
			t.Fatal(err)
		}
		if p := expectV2[*sn.PublishV2](g); p.TopicType != sn.TopicTypeSession || p.TopicAlias != 5 {
			t.Fatalf("PUBLISH = %+v; want session alias 5", p)
		}
		// Delivery by alias.
		g.sendV2(&sn.PublishV2{QoS: 1, PacketID: 77, TopicAlias: 5, Data: []byte("v")})
		if m := in.next(t); m.Topic != "a/b" || m.QoS != 1 || string(m.Payload) != "v" {
			t.Fatalf("handler got %+v; want a/b QoS 1 v", m)
		}
		if a := expectV2[*sn.PubackV2](g); a.PacketID != 77 || a.ReasonCode != sn.Success {
			t.Fatalf("PUBACK = %+v; want 77 success", a)
		}
		// The gateway forgot the alias: the client publishes once more by name.
		done = async(func() error { return c.Publish(ctx, snclient.Named("a/b"), 1, false, []byte("2")) })
		p := expectV2[*sn.PublishV2](g)
		if p.TopicType != sn.TopicTypeSession {
			t.Fatalf("PUBLISH = %+v; want session alias", p)
		}
		g.sendV2(&sn.PubackV2{PacketID: p.PacketID, ReasonCode: sn.UnknownTopicAlias})
		p = expectV2[*sn.PublishV2](g)
		if p.TopicType != sn.TopicTypeName || string(p.TopicName) != "a/b" {
			t.Fatalf("PUBLISH after 0xF0 = %+v; want by name", p)
		}
		g.sendV2(&sn.PubackV2{PacketID: p.PacketID})
		if err := wait(t, done); err != nil {
			t.Fatalf("Publish() = %v", err)
		}
		// Unsubscribe by name.
		done = async(func() error { return c.Unsubscribe(ctx, snclient.Named("a/b")) })
		u := expectV2[*sn.UnsubscribeV2](g)
		if u.TopicType != sn.TopicTypeName || string(u.TopicFilter) != "a/b" {
			t.Fatalf("UNSUBSCRIBE = %+v", u)
		}
		g.sendV2(&sn.UnsubackV2{PacketID: u.PacketID})
		if err := wait(t, done); err != nil {
			t.Fatalf("Unsubscribe() = %v", err)
		}
	})
}

// A wildcard subscription: the gateway REGISTERs each topic before its
// first PUBLISH; QoS 2 is delivered once; an unknown alias is refused.
func TestV2SubscribeWildcardRegisterQoS2(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(inbox, 4)
		opts := optionsV2()
		opts.Handler = in.handler
		c, g := connectedV2(t, opts)
		ctx := context.Background()
		done := async(func() error { _, err := c.Subscribe(ctx, snclient.Named("s/#"), 2); return err })
		s := expectV2[*sn.SubscribeV2](g)
		g.sendV2(&sn.SubackV2{TopicType: sn.TopicTypePredefined, PacketID: s.PacketID, ReasonCode: sn.GrantedQoS2})
		if err := wait(t, done); err != nil {
			t.Fatalf("Subscribe() = %v", err)
		}
		g.sendV2(&sn.RegisterV2{PacketID: 300, HasTopicAlias: true, TopicAlias: 9, TopicName: []byte("s/x")})
		if r := expectV2[*sn.RegackV2](g); r.PacketID != 300 || r.ReasonCode != sn.Success || r.HasTopicAlias {
			t.Fatalf("REGACK = %+v; want 300 success without alias", r)
		}
		pub := &sn.PublishV2{QoS: 2, PacketID: 301, TopicAlias: 9, Data: []byte("q2")}
		g.sendV2(pub)
		if m := in.next(t); m.Topic != "s/x" || m.QoS != 2 {
			t.Fatalf("handler got %+v; want s/x QoS 2", m)
		}
		expectV2[*sn.PubrecV2](g)
		pub.Dup = true
		g.sendV2(pub) // PUBREC lost: the duplicate is acknowledged, not delivered
		expectV2[*sn.PubrecV2](g)
		g.sendV2(&sn.PubrelV2{PacketID: 301})
		if m := expectV2[*sn.PubcompV2](g); m.PacketID != 301 {
			t.Fatalf("PUBCOMP = %+v; want 301", m)
		}
		g.sendV2(&sn.PublishV2{QoS: 1, PacketID: 302, TopicAlias: 10, Data: []byte("?")})
		if a := expectV2[*sn.PubackV2](g); a.PacketID != 302 || a.ReasonCode != sn.UnknownTopicAlias {
			t.Fatalf("PUBACK = %+v; want 302 unknown topic alias", a)
		}
		select {
		case m := <-in:
			t.Fatalf("handler got %+v; want nothing more", m)
		default:
		}
	})
}

func TestV2Register(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connectedV2(t, optionsV2())
		done := async(func() error {
			id, err := c.Register(context.Background(), "a/b")
			if err == nil && id != 4 {
				t.Errorf("Register() = %d; want 4", id)
			}
			return err
		})
		r := expectV2[*sn.RegisterV2](g)
		if r.HasTopicAlias || string(r.TopicName) != "a/b" {
			t.Fatalf("REGISTER = %+v; want a name without alias", r)
		}
		g.sendV2(&sn.RegackV2{PacketID: r.PacketID, HasTopicAlias: true, TopicAlias: 4})
		if err := wait(t, done); err != nil {
			t.Fatalf("Register() = %v", err)
		}
		if id, ok := c.TopicID("a/b"); !ok || id != 4 {
			t.Fatalf("TopicID(a/b) = %d, %v; want 4", id, ok)
		}
	})
}

func TestV2Disconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connectedV2(t, optionsV2())
		if err := c.Disconnect(context.Background()); err != nil {
			t.Fatalf("Disconnect() = %v", err)
		}
		// The draft's DISCONNECT: Flags octet 0, reason Success; never answered.
		if got, want := g.recvRaw(), []byte{0x03, 0x0E, 0x00}; !bytes.Equal(got, want) {
			t.Fatalf("DISCONNECT = %x; want %x", got, want)
		}
		if s := c.State(); s != snclient.StateDisconnected {
			t.Fatalf("State() = %v; want disconnected", s)
		}
		g.quiet(10 * keepAlive)
	})
}

func TestV2GatewayDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lost := make(chan error, 1)
		opts := optionsV2()
		opts.ConnectionLost = func(err error) { lost <- err }
		c, g := connectedV2(t, opts)
		g.sendV2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.SessionTakenOver})
		if err := <-lost; !errors.Is(err, snclient.ErrGatewayDisconnected) {
			t.Fatalf("ConnectionLost(%v); want ErrGatewayDisconnected", err)
		}
		if s := c.State(); s != snclient.StateDisconnected {
			t.Fatalf("State() = %v; want disconnected", s)
		}
	})
}

func TestV2KeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connectedV2(t, optionsV2())
		p := expectV2[*sn.PingReqV2](g) // one keep-alive period later
		if p.PacketID == 0 {
			t.Fatalf("PINGREQ Packet Id 0")
		}
		g.sendV2(&sn.PingRespV2{PacketID: p.PacketID})
		if p2 := expectV2[*sn.PingReqV2](g); p2.PacketID == p.PacketID {
			t.Fatalf("second PINGREQ reuses Packet Id %d", p.PacketID)
		}
		if s := c.State(); s != snclient.StateActive {
			t.Fatalf("State() = %v; want active", s)
		}
	})
}

func TestV2Unsupported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := connectedV2(t, optionsV2())
		ctx := context.Background()
		for name, err := range map[string]error{
			"UpdateWillTopic":   c.UpdateWillTopic(ctx, "w", 0, false),
			"UpdateWillMessage": c.UpdateWillMessage(ctx, nil),
		} {
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("%s() = %v; want errors.ErrUnsupported", name, err)
			}
		}
	})
}

// SLEEPREQ/SLEEPRESP, no keep-alive while asleep, and a wake-up PINGREQ
// that collects a buffered message until PINGRESP.
func TestV2SleepAndWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(inbox, 4)
		opts := optionsV2()
		opts.Handler = in.handler
		c, g := connectedV2(t, opts)
		ctx := context.Background()
		done := async(func() error { return c.Sleep(ctx, 600*time.Second) })
		req := expectV2[*sn.SleepReq](g)
		// Vector D20's layout: Retain Topic Aliases, the Packet Id, 600 s.
		if want := (sn.SleepReq{RetainTopicAliases: true, PacketID: req.PacketID, SleepDuration: 600}); *req != want || req.PacketID == 0 {
			t.Fatalf("SLEEPREQ = %+v; want %+v", req, want)
		}
		g.sendV2(&sn.SleepResp{PacketID: req.PacketID + 1}) // not the answer
		if r := expectV2[*sn.SleepReq](g); r.PacketID != req.PacketID {
			t.Fatalf("retransmitted SLEEPREQ = %+v; want Packet Id %d", r, req.PacketID)
		}
		g.sendV2(&sn.SleepResp{PacketID: req.PacketID})
		if err := wait(t, done); err != nil {
			t.Fatalf("Sleep() = %v", err)
		}
		if s := c.State(); s != snclient.StateAsleep {
			t.Fatalf("State() = %v; want asleep", s)
		}
		g.quiet(10 * keepAlive) // no keep-alive while asleep

		done = async(func() error { return c.CheckMessages(ctx) })
		ping := expectV2[*sn.PingReqV2](g)
		g.sendV2(&sn.PublishV2{QoS: 1, PacketID: 40, TopicType: sn.TopicTypeName, TopicName: []byte("a/b"), Data: []byte("queued")})
		if m := in.next(t); m.Topic != "a/b" || string(m.Payload) != "queued" {
			t.Fatalf("handler got %+v; want the queued message", m)
		}
		if a := expectV2[*sn.PubackV2](g); a.PacketID != 40 {
			t.Fatalf("PUBACK = %+v; want 40", a)
		}
		g.sendV2(&sn.PingRespV2{PacketID: ping.PacketID, HasRemaining: true})
		if err := wait(t, done); err != nil {
			t.Fatalf("CheckMessages() = %v", err)
		}
		if s := c.State(); s != snclient.StateAsleep {
			t.Fatalf("State() after PINGRESP = %v; want asleep", s)
		}

		// A refused SLEEPREQ leaves an active client active.
		connectDone := async(func() error { return c.Connect(ctx) })
		cm := expectV2[*sn.ConnectV2](g)
		g.sendV2(&sn.ConnackV2{PacketID: cm.PacketID})
		if err := wait(t, connectDone); err != nil {
			t.Fatalf("Connect() = %v", err)
		}
		done = async(func() error { return c.Sleep(ctx, time.Minute) })
		req = expectV2[*sn.SleepReq](g)
		g.sendV2(&sn.SleepResp{PacketID: req.PacketID, ReasonCode: sn.NotAuthorized})
		var rce *snclient.ReasonCodeError
		if err := wait(t, done); !errors.As(err, &rce) || rce.Code != sn.NotAuthorized || rce.Packet != sn.PacketSleepResp {
			t.Fatalf("Sleep() = %v; want ReasonCodeError SLEEPRESP 0x87", err)
		}
		if s := c.State(); s != snclient.StateActive {
			t.Fatalf("State() = %v; want active", s)
		}
	})
}

func TestV2SubscribeOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connectedV2(t, optionsV2())
		ctx := context.Background()
		o := snclient.SubscribeOptions{NoLocal: true, RetainAsPublished: true, RetainHandling: snclient.RetainDoNotSend}
		done := async(func() error { _, err := c.SubscribeWith(ctx, snclient.Named("s/#"), 1, o); return err })
		// Flags: No Local, QoS 1, Retain As Published, Retain Handling 2, topic filter.
		got := g.recvRaw()
		if want := []byte{0x08, 0x08, 0xBB, 0, 0, 's', '/', '#'}; len(got) != len(want) || !bytes.Equal(got[:3], want[:3]) || !bytes.Equal(got[5:], want[5:]) {
			t.Fatalf("SUBSCRIBE = %x; want %x with any Packet Id", got, want)
		}
		pid := uint16(got[3])<<8 | uint16(got[4])
		g.sendV2(&sn.SubackV2{TopicType: sn.TopicTypePredefined, PacketID: pid, ReasonCode: sn.GrantedQoS1})
		if err := wait(t, done); err != nil {
			t.Fatalf("SubscribeWith() = %v", err)
		}
		if _, err := c.SubscribeWith(ctx, snclient.Named("x"), 0, snclient.SubscribeOptions{RetainHandling: 3}); !errors.Is(err, snclient.ErrInvalidOption) {
			t.Fatalf("SubscribeWith(retain handling 3) = %v; want ErrInvalidOption", err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		c, g := connected(t, baseOptions()) // 1.2
		if _, err := c.SubscribeWith(context.Background(), snclient.Named("x"), 0, snclient.SubscribeOptions{NoLocal: true}); !errors.Is(err, snclient.ErrInvalidOption) {
			t.Fatalf("1.2 SubscribeWith(NoLocal) = %v; want ErrInvalidOption", err)
		}
		g.quiet(time.Second)
	})
}

// Authentication in the CONNECT: SASL PLAIN data, a refusal with the
// reason code, and a gateway that wants a second step.
func TestV2ConnectAuth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := optionsV2()
		opts.Auth = snclient.PlainAuth("user", "wrong")
		c, g := newClient(t, opts)
		done := async(func() error { return c.Connect(context.Background()) })
		m := expectV2[*sn.ConnectV2](g)
		if !m.Auth || string(m.AuthMethod) != "PLAIN" || string(m.AuthData) != "\x00user\x00wrong" {
			t.Fatalf("CONNECT auth = %v %q %q; want PLAIN \\0user\\0wrong", m.Auth, m.AuthMethod, m.AuthData)
		}
		g.sendV2(&sn.ConnackV2{PacketID: m.PacketID, ReasonCode: sn.BadUserNameOrPassword})
		var rce *snclient.ReasonCodeError
		if err := wait(t, done); !errors.As(err, &rce) || rce.Code != sn.BadUserNameOrPassword {
			t.Fatalf("Connect() = %v; want ReasonCodeError 0x86", err)
		}

		done = async(func() error { return c.Connect(context.Background()) })
		m = expectV2[*sn.ConnectV2](g)
		g.sendV2(&sn.Auth{PacketID: m.PacketID, ReasonCode: sn.ContinueAuthentication, Method: []byte("PLAIN")})
		if err := wait(t, done); !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("Connect() answered by AUTH = %v; want errors.ErrUnsupported", err)
		}
		if s := c.State(); s != snclient.StateDisconnected {
			t.Fatalf("State() = %v; want disconnected", s)
		}
	})
	for name, o := range map[string]snclient.Options{
		"1.2":          {Auth: snclient.PlainAuth("u", "p")},
		"1.2 address":  {AllowAddressChange: true},
		"empty method": {Version: snclient.Version20, Auth: &snclient.Auth{}},
	} {
		if err := o.Validate(); !errors.Is(err, snclient.ErrInvalidOption) {
			t.Errorf("Validate(%s) = %v; want ErrInvalidOption", name, err)
		}
	}
}

func TestV2OptionsVersion(t *testing.T) {
	o := baseOptions()
	o.Version = 3
	if err := o.Validate(); !errors.Is(err, snclient.ErrInvalidOption) {
		t.Fatalf("Validate(Version 3) = %v; want ErrInvalidOption", err)
	}
	for _, v := range []sn.Version{sn.VersionUnknown, sn.Version12, sn.Version20} {
		o.Version = v
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(Version %v) = %v", v, err)
		}
	}
}

// A gateway that has a predefined alias for a name answers REGISTER and
// SUBSCRIBE with it (Topic Type predefined, "topic alias exists"): the
// client publishes by it and understands deliveries by it, without the
// alias in Options.PredefinedTopics.
func TestV2PredefinedAliasLearned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(inbox, 4)
		opts := optionsV2()
		opts.Handler = in.handler
		c, g := connectedV2(t, opts)
		ctx := context.Background()
		done := async(func() error {
			id, err := c.Register(ctx, "p/x")
			if err == nil && id != 7 {
				t.Errorf("Register() = %d; want the predefined alias 7", id)
			}
			return err
		})
		r := expectV2[*sn.RegisterV2](g)
		g.sendV2(&sn.RegackV2{TopicType: sn.TopicTypePredefined, PacketID: r.PacketID, HasTopicAlias: true, TopicAlias: 7, ReasonCode: sn.TopicAliasExists})
		if err := wait(t, done); err != nil {
			t.Fatalf("Register() = %v", err)
		}
		if _, ok := c.TopicID("p/x"); ok {
			t.Error("the predefined alias was recorded as a session alias")
		}
		if err := c.Publish(ctx, snclient.Named("p/x"), 0, false, []byte("1")); err != nil {
			t.Fatal(err)
		}
		if p := expectV2[*sn.PublishV2](g); p.TopicType != sn.TopicTypePredefined || p.TopicAlias != 7 {
			t.Fatalf("PUBLISH = %+v; want predefined alias 7", p)
		}
		done = async(func() error { _, err := c.Subscribe(ctx, snclient.Named("p/y"), 1); return err })
		s := expectV2[*sn.SubscribeV2](g)
		g.sendV2(&sn.SubackV2{TopicType: sn.TopicTypePredefined, PacketID: s.PacketID, HasTopicAlias: true, TopicAlias: 8, ReasonCode: sn.GrantedQoS1})
		if err := wait(t, done); err != nil {
			t.Fatalf("Subscribe() = %v", err)
		}
		g.sendV2(&sn.PublishV2{QoS: 1, PacketID: 90, TopicType: sn.TopicTypePredefined, TopicAlias: 8, Data: []byte("v")})
		if m := in.next(t); m.Topic != "p/y" || string(m.Payload) != "v" {
			t.Fatalf("handler got %+v; want p/y v", m)
		}
		if a := expectV2[*sn.PubackV2](g); a.PacketID != 90 || a.ReasonCode != sn.Success {
			t.Fatalf("PUBACK = %+v; want 90 success", a)
		}
	})
}
