package gateway_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestAuthorizationRefusalsCounted checks that each MQTT-SN path the core's
// Authorizer refuses gets its refusal and is counted once in Stats.Denied
// and in Rejected (cmd/gannet's TestServeACLBindsSensors checks that nothing
// denied arrives, with the built binary).
func TestAuthorizationRefusalsCounted(t *testing.T) {
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{
		Predefined: []gateway.PredefinedTopic{{ID: 1, Topic: "secret/x"}, {ID: 2, Topic: "open/qosm1"}},
		QoSMinus1:  gateway.QoSMinus1Config{Enabled: true},
	}})
	acl, err := auth.ParseACL(strings.NewReader(`topic read #
topic write #
pattern write sensors/%c/#
user gannet-qos-1
topic write open/#
`), "acl")
	if err != nil {
		t.Fatal(err)
	}
	e.Broker.SetAuthorizer(acl)
	app := e.MQTT(t, ctx, "app") // anonymous: reads everything
	app.Subscribe(t, ctx, 1, "#")

	s := e.Connected(t, ctx, snclient.Options{ClientID: "s1",
		Will: &snclient.Will{Topic: "sensors/s1/will", Message: []byte("bye")}})
	before := e.Gateway.Stats()
	step := 0
	check := func(what string, err error) {
		t.Helper()
		step++
		if !errors.Is(err, snclient.ErrNotSupported) {
			t.Errorf("%s = %v; want rejected: not supported", what, err)
		}
		st := e.Gateway.Stats()
		if got := st.Denied - before.Denied; got != uint64(step) {
			t.Errorf("after %s: Denied grew by %d; want %d", what, got, step)
		}
		if got := st.Rejected - before.Rejected; got != uint64(step) {
			t.Errorf("after %s: Rejected grew by %d; want %d", what, got, step)
		}
	}
	_, err = s.Register(ctx, "secret/a")
	check("REGISTER secret/a", err)
	check("PUBLISH predefined secret/x QoS 1", s.Publish(ctx, snclient.Predefined(1), sn.QoS1, false, []byte("no")))
	check("PUBLISH short zz QoS 2", s.Publish(ctx, snclient.Short("zz"), sn.QoS2, false, []byte("no")))
	_, err = s.Subscribe(ctx, snclient.Named("sensors/#"), sn.QoS1)
	check("SUBSCRIBE sensors/#", err)
	check("WILLTOPICUPD secret/w", s.UpdateWillTopic(ctx, "secret/w", sn.QoS0, false))
	w := e.Sensor(t, ctx, snclient.Options{ClientID: "s2", Will: &snclient.Will{Topic: "secret/w", Message: []byte("no")}})
	check("CONNECT with will secret/w", w.Connect(ctx))

	// QoS -1 has no answer: a later allowed message from the same socket
	// shows the denied one was handled.
	q := e.Sensor(t, ctx, snclient.Options{ClientID: "unused"})
	if err := q.Publish(ctx, snclient.Predefined(1), sn.QoSMinus1, false, []byte("no")); err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, snclient.Predefined(2), sn.QoSMinus1, false, []byte("yes")); err != nil {
		t.Fatal(err)
	}
	app.Expect(t, ctx, "open/qosm1", "yes", 0, false)
	// The gateway counts the accepted QoS -1 publish after the core took
	// it, and the core may deliver it to app first.
	sntest.WaitFor(t, ctx, "the QoS -1 publish counted", func() bool { return e.Gateway.Stats().QoSMinus1 > before.QoSMinus1 })
	if st := e.Gateway.Stats(); st.Denied-before.Denied != 7 || st.QoSMinus1-before.QoSMinus1 != 1 {
		t.Errorf("after QoS -1: Denied grew by %d, QoSMinus1 by %d; want 7 and 1", st.Denied-before.Denied, st.QoSMinus1-before.QoSMinus1)
	}
	if d := e.Broker.Stats().Denied; d.Publish != 4 || d.Subscribe != 1 || d.Will != 2 {
		t.Errorf("core Stats.Denied = %+v; want Publish 4 (REGISTER, two PUBLISH, QoS -1), Subscribe 1, Will 2", d)
	}
}
