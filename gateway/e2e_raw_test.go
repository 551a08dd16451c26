package gateway_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// e2eExpectFrame receives the next frame on r and compares it with want.
func e2eExpectFrame(t *testing.T, ctx context.Context, r *sntest.Raw, want sn.Message) sn.Message {
	t.Helper()
	got := r.Recv(t, ctx)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("gateway sent %#v; want %#v", got, want)
	}
	return got
}

// e2eRawConnect CONNECTs r as clientID without a will.
func e2eRawConnect(t *testing.T, ctx context.Context, r *sntest.Raw, clientID string) {
	t.Helper()
	r.Send(t, &sn.Connect{CleanSession: true, Duration: 60, ClientID: []byte(clientID)})
	e2eExpectFrame(t, ctx, r, &sn.Connack{ReturnCode: sn.Accepted})
}

// TestE2EPublishUnknownTopicID checks that a PUBLISH with a topic id the
// sensor never registered is answered with PUBACK "invalid topic id", at
// QoS 0 and 1, and published nowhere.
func TestE2EPublishUnknownTopicID(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "#")
	r := e.Raw(t)
	e2eRawConnect(t, ctx, r, "raw")
	for _, q := range []sn.QoS{sn.QoS0, sn.QoS1} {
		r.Send(t, &sn.Publish{QoS: q, TopicID: 99, MsgID: 5, Data: []byte("lost")})
		e2eExpectFrame(t, ctx, r, &sn.Puback{TopicID: 99, MsgID: 5, ReturnCode: sn.RejectedInvalidTopicID})
	}
	if st := e.Gateway.Stats(); st.InvalidTopic != 2 {
		t.Errorf("gateway Stats().InvalidTopic = %d; want 2", st.InvalidTopic)
	}
	e2eFence(t, ctx, app, "e2e/fence")
}

// TestE2EDuplicateQoS2DeliveredOnce sends a QoS 2 PUBLISH twice (the
// second with DUP, as after a lost PUBREC): both are answered with PUBREC,
// the MQTT client receives the message once.
func TestE2EDuplicateQoS2DeliveredOnce(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 2, "e2e/#")
	r := e.Raw(t)
	e2eRawConnect(t, ctx, r, "raw")
	r.Send(t, &sn.Register{MsgID: 1, TopicName: []byte("e2e/q2")})
	ra, ok := r.Recv(t, ctx).(*sn.Regack)
	if !ok || ra.ReturnCode != sn.Accepted || ra.MsgID != 1 || ra.TopicID == 0 {
		t.Fatalf("REGISTER answered with %#v; want an accepting REGACK", ra)
	}
	p := &sn.Publish{QoS: sn.QoS2, TopicID: ra.TopicID, MsgID: 7, Data: []byte("once")}
	r.Send(t, p)
	e2eExpectFrame(t, ctx, r, &sn.Pubrec{MsgID: 7})
	p.Dup = true
	r.Send(t, p)
	e2eExpectFrame(t, ctx, r, &sn.Pubrec{MsgID: 7})
	r.Send(t, &sn.Pubrel{MsgID: 7})
	e2eExpectFrame(t, ctx, r, &sn.Pubcomp{MsgID: 7})
	app.Expect(t, ctx, "e2e/q2", "once", 2, false)
	e2eFence(t, ctx, app, "e2e/fence")
}

// TestE2EGatewayRetransmission checks the gateway-to-sensor QoS 1 flow
// with Tretry/Nretry: an unacknowledged PUBLISH is resent with DUP and the
// same MsgId, the next message waits until it is acknowledged (one in
// flight per client, §6.5), and a sensor that never acknowledges is lost
// after max_retries and its will published.
func TestE2EGatewayRetransmission(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	// 500 ms between resends: the test's PUBACK may be that late on a
	// loaded machine and still beat max_retries.
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{RetryInterval: 500 * time.Millisecond, MaxRetries: 2}})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "e2e/will/#")
	r := e.Raw(t)
	r.Send(t, &sn.Connect{Will: true, CleanSession: true, Duration: 60, ClientID: []byte("deaf")})
	e2eExpectFrame(t, ctx, r, &sn.WillTopicReq{})
	r.Send(t, &sn.WillTopic{Topic: []byte("e2e/will/deaf")})
	e2eExpectFrame(t, ctx, r, &sn.WillMsgReq{})
	r.Send(t, &sn.WillMsg{Message: []byte("never acked")})
	e2eExpectFrame(t, ctx, r, &sn.Connack{ReturnCode: sn.Accepted})
	r.Send(t, &sn.Subscribe{QoS: sn.QoS1, MsgID: 1, TopicName: []byte("e2e/rt")})
	sa, ok := r.Recv(t, ctx).(*sn.Suback)
	if !ok || sa.ReturnCode != sn.Accepted || sa.TopicID == 0 {
		t.Fatalf("SUBSCRIBE answered with %#v; want an accepting SUBACK with a topic id", sa)
	}

	app.Publish(t, ctx, "e2e/rt", 1, false, "first")
	app.Publish(t, ctx, "e2e/rt", 1, false, "second")
	first, ok := r.Recv(t, ctx).(*sn.Publish)
	if !ok || first.Dup || first.QoS != sn.QoS1 || first.TopicID != sa.TopicID || string(first.Data) != "first" {
		t.Fatalf("gateway sent %#v; want PUBLISH QoS 1 of \"first\" with topic id %d", first, sa.TopicID)
	}
	again := *first
	again.Dup = true
	e2eExpectFrame(t, ctx, r, &again) // not "second": one message in flight
	r.Send(t, &sn.Puback{TopicID: first.TopicID, MsgID: first.MsgID})
	next := r.Recv(t, ctx)
	for reflect.DeepEqual(next, &again) { // resent again before our PUBACK arrived
		next = r.Recv(t, ctx)
	}
	second, ok := next.(*sn.Publish)
	if !ok || second.Dup || string(second.Data) != "second" || second.MsgID == first.MsgID {
		t.Fatalf("after PUBACK the gateway sent %#v; want a new PUBLISH of \"second\"", second)
	}
	// Never acknowledged: resent max_retries times, then the sensor is lost.
	for range 2 {
		again := *second
		again.Dup = true
		e2eExpectFrame(t, ctx, r, &again)
	}
	app.Expect(t, ctx, "e2e/will/deaf", "never acked", 0, false)
	e.WaitGone(t, ctx, "deaf") // lost: a clean session ends
	// The loop forgets the client just after the core ends its session.
	sntest.WaitFor(t, ctx, "the gateway to forget the lost sensor", func() bool { return e.Gateway.Stats().Clients == 0 })
	if st := e.Gateway.Stats(); st.Retransmits < 3 || st.Clients != 0 {
		t.Errorf("gateway Stats() Retransmits %d, Clients %d; want at least 3, and 0", st.Retransmits, st.Clients)
	}
}

// TestE2EForwarder checks forwarder encapsulation: each Wireless Node Id
// behind one forwarder address is its own client, and every answer comes
// back wrapped with the node id it concerns.
func TestE2EForwarder(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	fw := e.Raw(t)
	wrap := func(node string, m sn.Message) *sn.Encapsulated {
		return &sn.Encapsulated{NodeID: []byte(node), Inner: m}
	}
	for _, n := range []string{"node-1", "node-2"} {
		fw.Send(t, wrap(n, &sn.Connect{CleanSession: true, Duration: 60, ClientID: []byte("fw-" + n)}))
		e2eExpectFrame(t, ctx, fw, wrap(n, &sn.Connack{ReturnCode: sn.Accepted}))
		e.WaitSession(t, ctx, "fw-"+n, mqttcore.StateActive)
	}
	if st := e.Gateway.Stats(); st.Clients != 2 {
		t.Errorf("gateway holds %d clients; want one per node id, 2", st.Clients)
	}
	fw.Send(t, wrap("node-2", &sn.Subscribe{MsgID: 3, TopicIDType: sn.TopicIDShort, TopicID: 0x6677})) // "fw"
	e2eExpectFrame(t, ctx, fw, wrap("node-2", &sn.Suback{MsgID: 3, ReturnCode: sn.Accepted}))
	app.Publish(t, ctx, "fw", 0, false, "to node 2")
	e2eExpectFrame(t, ctx, fw, wrap("node-2", &sn.Publish{TopicIDType: sn.TopicIDShort, TopicID: 0x6677, Data: []byte("to node 2")}))
	// Without the envelope the forwarder's own address is a stranger.
	fw.Send(t, &sn.PingReq{})
	e2eExpectFrame(t, ctx, fw, &sn.Disconnect{})
}

// TestE2EDiscovery checks GWINFO in answer to SEARCHGW (with snclient's
// SearchGateway) and periodic ADVERTISE to the configured address.
func TestE2EDiscovery(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	adv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adv.Close() })
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{GatewayID: 42,
		Advertise: gateway.AdvertiseConfig{Interval: time.Second, Address: adv.LocalAddr().String()}}})

	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	info, err := snclient.SearchGateway(ctx, pc, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(e.UDPAddr)), 1, time.Second)
	if err != nil || info.ID != 42 {
		t.Fatalf("SearchGateway = %+v, %v; want gateway id 42", info, err)
	}

	dl, _ := ctx.Deadline()
	if err := adv.SetReadDeadline(dl); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := adv.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("waiting for ADVERTISE: %v", err)
	}
	m, err := sn.Decode(buf[:n])
	if want := (&sn.Advertise{GatewayID: 42, Duration: 1}); err != nil || !reflect.DeepEqual(m, want) {
		t.Errorf("received %#v, %v from %v; want %#v", m, err, from, want)
	}
	if from.String() != e.UDPAddr {
		t.Errorf("ADVERTISE came from %v; want the gateway's %v", from, e.UDPAddr)
	}
}

// TestE2EQoSMinus1AllowFrom checks that QoS -1 publishes are accepted only
// from the configured source prefixes.
func TestE2EQoSMinus1AllowFrom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		allow  string
		wanted bool
	}{{"127.0.0.0/8", true}, {"10.0.0.0/8", false}} {
		t.Run(tc.allow, func(t *testing.T) {
			t.Parallel()
			ctx := sntest.Context(t)
			e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{
				QoSMinus1: gateway.QoSMinus1Config{Enabled: true, AllowFrom: []string{tc.allow}}}})
			app := e.MQTT(t, ctx, "app")
			app.Subscribe(t, ctx, 0, "q1")
			s := e.Sensor(t, ctx, snclient.Options{ClientID: "anon"})
			if err := s.Publish(ctx, snclient.Short("q1"), sn.QoSMinus1, false, []byte("hello")); err != nil {
				t.Fatalf("Publish QoS -1 = %v", err)
			}
			if tc.wanted {
				app.Expect(t, ctx, "q1", "hello", 0, false)
				return
			}
			sntest.WaitFor(t, ctx, "the QoS -1 publish to be refused", func() bool { return e.Gateway.Stats().Rejected == 1 })
			e2eFence(t, ctx, app, "q1")
		})
	}
}

// TestE2ERegackRejection checks that a sensor refusing the gateway's
// REGISTER for a wildcard match is not sent that topic again, while other
// matches still arrive.
func TestE2ERegackRejection(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	s := e.Connected(t, ctx, snclient.Options{ClientID: "picky",
		RegisterFilter: func(id uint16, topic string) sn.ReturnCode {
			if topic == "e2e/rj/no" {
				return sn.RejectedNotSupported
			}
			return sn.Accepted
		}})
	if _, err := s.Subscribe(ctx, snclient.Named("e2e/rj/+"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	app.Publish(t, ctx, "e2e/rj/no", 1, false, "x")
	app.Publish(t, ctx, "e2e/rj/no", 1, false, "y")
	app.Publish(t, ctx, "e2e/rj/yes", 1, false, "fence")
	if m := s.Next(t, ctx); m.Topic != "e2e/rj/yes" || string(m.Payload) != "fence" {
		t.Fatalf("sensor received (%q, %q); want only (e2e/rj/yes, fence)", m.Topic, m.Payload)
	}
	s.NoMessage(t)
}

// TestE2ELimits checks the configurable limits end to end: each refusal is
// the protocol's answer and is counted.
func TestE2ELimits(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{
		Gateway: gateway.Config{MaxClients: 2, MaxTopicsPerClient: 1, MaxMessageSize: 100},
		Core:    mqttcore.Config{MaxQueued: 2, HoldTimeout: 200 * time.Millisecond},
	})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 0, "e2e/#")
	s := e.Connected(t, ctx, snclient.Options{ClientID: "one", PersistentSession: true})
	e.Connected(t, ctx, snclient.Options{ClientID: "two"})

	// max_clients: CONNACK "rejected: congestion".
	third := e.Sensor(t, ctx, snclient.Options{ClientID: "three"})
	if err := third.Connect(ctx); !errors.Is(err, snclient.ErrCongestion) {
		t.Errorf("third Connect = %v; want ErrCongestion", err)
	}
	// max_topics_per_client: the second REGISTER gets REGACK congestion.
	if _, err := s.Register(ctx, "e2e/lim/a"); err != nil {
		t.Fatalf("first Register = %v", err)
	}
	if _, err := s.Register(ctx, "e2e/lim/b"); !errors.Is(err, snclient.ErrCongestion) {
		t.Errorf("second Register = %v; want ErrCongestion", err)
	}
	// max_message_size in: a larger datagram is dropped and counted.
	big := make([]byte, 150)
	if err := s.Publish(ctx, snclient.Named("e2e/lim/a"), sn.QoS0, false, big); err != nil {
		t.Fatalf("Publish of %d octets = %v", len(big), err)
	}
	sntest.WaitFor(t, ctx, "the oversized datagram to be counted", func() bool {
		return e.Gateway.Stats().LimitHits[gateway.LimitMessageSizeIn] == 1
	})
	e2eFence(t, ctx, app, "e2e/fence") // and it was not published
	// max_message_size out: too large for the sensor, abandoned, counted.
	if _, err := s.Subscribe(ctx, snclient.Short("xy"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	app.Publish(t, ctx, "xy", 1, false, string(big))
	app.Publish(t, ctx, "xy", 1, false, "small")
	if m := s.Next(t, ctx); string(m.Payload) != "small" {
		t.Errorf("sensor received %d octets; want only the small message", len(m.Payload))
	}
	if n := e.Gateway.Stats().LimitHits[gateway.LimitMessageSizeOut]; n != 1 {
		t.Errorf("messages too large for the sensor counted %d; want 1", n)
	}
	// broker max_queued bounds what queues for a sleeping sensor. The
	// sensor's PUBACK for "small" races its sleep request (the handler runs
	// before the acknowledgement is sent): wait until the core has it, or
	// "small" would rightly come again, with DUP, at the wake.
	sntest.WaitFor(t, ctx, "the PUBACK of the small message", func() bool {
		info, _ := e.Broker.Session("one")
		return info.Inflight == 0
	})
	if err := s.Sleep(ctx, time.Minute); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	e.WaitSession(t, ctx, "one", mqttcore.StateAsleep)
	// The default overflow policy is backpressure: the publish that finds
	// the sleeper's queue full is held, then refused with MQTT 5 0x97
	// "quota exceeded" after hold_timeout; nothing acknowledged is dropped.
	for _, p := range []string{"q1", "q2"} {
		app.Publish(t, ctx, "xy", 1, false, p)
	}
	resp, err := app.Client.Publish(ctx, &paho.Publish{Topic: "xy", QoS: 1, Payload: []byte("q3")})
	if err == nil || resp == nil || resp.ReasonCode != 0x97 {
		t.Errorf("publish to a full queue = %+v, %v; want reason 0x97 after the hold", resp, err)
	}
	if st := e.Broker.Stats(); st.LimitHits.Hold != 1 || st.Dropped != 0 {
		t.Errorf("broker Stats() = %+v; want one hold timeout and nothing dropped", st)
	}
	if err := s.CheckMessages(ctx); err != nil {
		t.Fatalf("CheckMessages = %v", err)
	}
	for _, want := range []string{"q1", "q2"} {
		if m := s.Next(t, ctx); string(m.Payload) != want {
			t.Errorf("after the wake the sensor received %q; want %q", m.Payload, want)
		}
	}
	s.NoMessage(t)
}

// TestE2EWillDialogueAbandoned checks a connected sensor that CONNECTs
// again with the Will flag and then falls silent: the gateway gives up
// the dialogue after max_retries prompts, and the client, active since its
// CONNECT, is lost: its core session must not stay attached to a client
// the gateway has forgotten.
func TestE2EWillDialogueAbandoned(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{RetryInterval: 200 * time.Millisecond, MaxRetries: 2}})
	r := e.Raw(t)
	e2eRawConnect(t, ctx, r, "mute")
	e.WaitSession(t, ctx, "mute", mqttcore.StateActive)
	r.Send(t, &sn.Connect{Will: true, Duration: 60, ClientID: []byte("mute")})
	for range 3 { // the prompt and max_retries resends
		e2eExpectFrame(t, ctx, r, &sn.WillTopicReq{})
	}
	sntest.WaitFor(t, ctx, "the gateway to give the dialogue up", func() bool { return e.Gateway.Stats().Clients == 0 })
	e.WaitGone(t, ctx, "mute") // lost: a clean session ends
}
