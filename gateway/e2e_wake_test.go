package gateway_test

import (
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestE2EWakeRepeatedPingReqResends checks the wake-burst fix: a sensor that
// repeats its wake-up PINGREQ (it heard nothing for its T_retry: our PUBLISH
// or its PUBACK was lost) gets the PUBLISH in flight again at once, not
// after the gateway's retry_interval (a minute here, so only the PINGREQ can
// cause the resend), and then the rest of its queue and PINGRESP.
func TestE2EWakeRepeatedPingReqResends(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{RetryInterval: time.Minute, MaxRetries: 3}})
	app := e.MQTT(t, ctx, "app")
	r := e.Raw(t)
	r.Send(t, &sn.Connect{Duration: 60, ClientID: []byte("waker")}) // persistent session
	e2eExpectFrame(t, ctx, r, &sn.Connack{ReturnCode: sn.Accepted})
	r.Send(t, &sn.Subscribe{QoS: sn.QoS1, MsgID: 1, TopicName: []byte("e2e/wake")})
	sa, ok := r.Recv(t, ctx).(*sn.Suback)
	if !ok || sa.ReturnCode != sn.Accepted || sa.TopicID == 0 {
		t.Fatalf("SUBSCRIBE answered with %#v; want an accepting SUBACK with a topic id", sa)
	}
	r.Send(t, &sn.Disconnect{HasDuration: true, Duration: 60})
	e2eExpectFrame(t, ctx, r, &sn.Disconnect{})
	e.WaitSession(t, ctx, "waker", mqttcore.StateAsleep)

	app.Publish(t, ctx, "e2e/wake", 1, false, "one")
	app.Publish(t, ctx, "e2e/wake", 1, false, "two")
	sntest.WaitFor(t, ctx, "two messages queued for the sleeper", func() bool {
		info, _ := e.Broker.Session("waker")
		return info.Queued == 2
	})

	wake := &sn.PingReq{ClientID: []byte("waker")}
	r.Send(t, wake)
	first, ok := r.Recv(t, ctx).(*sn.Publish)
	if !ok || first.Dup || first.QoS != sn.QoS1 || first.TopicID != sa.TopicID || string(first.Data) != "one" {
		t.Fatalf("wake answered with %#v; want PUBLISH QoS 1 of \"one\" on topic id %d", first, sa.TopicID)
	}
	// As if that PUBLISH was lost: the sensor repeats its PINGREQ.
	r.Send(t, wake)
	again := *first
	again.Dup = true
	e2eExpectFrame(t, ctx, r, &again)
	if st := e.Gateway.Stats(); st.Retransmits != 1 {
		t.Errorf("gateway Stats().Retransmits = %d after one repeated PINGREQ; want 1", st.Retransmits)
	}
	r.Send(t, &sn.Puback{TopicID: first.TopicID, MsgID: first.MsgID})
	second, ok := r.Recv(t, ctx).(*sn.Publish)
	if !ok || second.Dup || string(second.Data) != "two" {
		t.Fatalf("after PUBACK the gateway sent %#v; want PUBLISH of \"two\"", second)
	}
	r.Send(t, &sn.Puback{TopicID: second.TopicID, MsgID: second.MsgID})
	e2eExpectFrame(t, ctx, r, &sn.PingResp{})
	e.WaitSession(t, ctx, "waker", mqttcore.StateAsleep)
}

// TestE2EHeldPublishRepeatNotPublishedTwice checks a sensor whose T_retry
// is shorter than flow control's hold: its PUBLISH waits for room in a
// sleeper's full queue, it resends the PUBLISH (DUP, same MsgId), and the
// repeat is absorbed (counted in HeldRepeats) instead of being published a
// second time; the one PUBACK comes when the first copy is routed, a repeat
// crossing it gets the PUBACK again, and the sleeper gets the message once.
func TestE2EHeldPublishRepeatNotPublishedTwice(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Core: mqttcore.Config{MaxQueued: 1, HoldTimeout: time.Minute}})
	app := e.MQTT(t, ctx, "app")
	sleeper := e.Connected(t, ctx, snclient.Options{ClientID: "sleeper", PersistentSession: true})
	if _, err := sleeper.Subscribe(ctx, snclient.Named("e2e/held"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if err := sleeper.Sleep(ctx, time.Minute); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	e.WaitSession(t, ctx, "sleeper", mqttcore.StateAsleep)
	app.Publish(t, ctx, "e2e/held", 1, false, "first") // the queue is full now

	r := e.Raw(t)
	e2eRawConnect(t, ctx, r, "publisher")
	r.Send(t, &sn.Register{MsgID: 1, TopicName: []byte("e2e/held")})
	ra, ok := r.Recv(t, ctx).(*sn.Regack)
	if !ok || ra.ReturnCode != sn.Accepted {
		t.Fatalf("REGISTER answered with %#v; want an accepting REGACK", ra)
	}
	pub := &sn.Publish{QoS: sn.QoS1, TopicIDType: sn.TopicIDNormal, TopicID: ra.TopicID, MsgID: 7, Data: []byte("held")}
	r.Send(t, pub)
	sntest.WaitFor(t, ctx, "the publish to be held", func() bool { return e.Broker.Stats().HeldNow == 1 })
	dup := *pub
	dup.Dup = true
	r.Send(t, &dup)
	sntest.WaitFor(t, ctx, "the repeat to be absorbed", func() bool { return e.Gateway.Stats().HeldRepeats == 1 })

	// The wake drains the queue; the held publish is routed and acknowledged.
	if err := sleeper.CheckMessages(ctx); err != nil {
		t.Fatalf("CheckMessages = %v", err)
	}
	e2eExpectFrame(t, ctx, r, &sn.Puback{TopicID: ra.TopicID, MsgID: 7, ReturnCode: sn.Accepted})
	// A repeat that crossed the PUBACK gets the PUBACK again, not a copy.
	r.Send(t, &dup)
	e2eExpectFrame(t, ctx, r, &sn.Puback{TopicID: ra.TopicID, MsgID: 7, ReturnCode: sn.Accepted})
	if n := e.Gateway.Stats().HeldRepeats; n != 2 {
		t.Errorf("gateway Stats().HeldRepeats = %d; want 2", n)
	}
	if err := sleeper.CheckMessages(ctx); err != nil { // collects whatever queued since
		t.Fatalf("second CheckMessages = %v", err)
	}
	for _, want := range []string{"first", "held"} {
		if m := sleeper.Next(t, ctx); string(m.Payload) != want {
			t.Errorf("sleeper received %q; want %q", m.Payload, want)
		}
	}
	sleeper.NoMessage(t)
	if st := e.Broker.Stats(); st.Held != 1 || st.Dropped != 0 {
		t.Errorf("broker Stats() Held %d, Dropped %d; want 1 and 0", st.Held, st.Dropped)
	}
}
