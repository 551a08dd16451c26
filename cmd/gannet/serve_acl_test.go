package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// aclTestACL is the ACL of TestServeACLBindsSensors. Sensors on plain UDP
// are their client id; the DTLS sensor authenticates as identity
// "sensor1", which identity_map binds to client id "node-17", and is user
// sensor1.
const aclTestACL = `# anonymous: the test's MQTT observer and commander
topic read #
topic read $SYS/broker/mqttsn/#
topic write cmd/#
topic write dtlscmd/#

# every sensor: its own subtree, one line each for a whole fleet
pattern write sensors/%c/#
pattern read cmd/%c/#
pattern write fleet/%c/#

user sn-a
topic write ab

user gannet-qos-1
topic write sensors/qosm1/#
topic write qa

user sensor1
topic write dtls/sensor1/#
topic read dtlscmd/#
topic write db
`

// aclMsg is one message the MQTT observer received.
type aclMsg struct {
	topic, payload string
	retain         bool
}

// aclObserver connects a paho client to gannet's MQTT listener (retrying
// while gannet starts), subscribes to filters at QoS 1 in one SUBSCRIBE and
// returns what arrives, in order.
func aclObserver(t *testing.T, ctx context.Context, addr string, proc *bridgeProc, id string, filters ...string) (<-chan aclMsg, *paho.Client) {
	t.Helper()
	msgs := make(chan aclMsg, 10000)
	conn := procDial(t, ctx, proc, addr)
	c := paho.NewClient(paho.ClientConfig{
		ClientID: id,
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			msgs <- aclMsg{pr.Packet.Topic, string(pr.Packet.Payload), pr.Packet.Retain}
			return true, nil
		}},
	})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	var subs []paho.SubscribeOptions
	for _, f := range filters {
		subs = append(subs, paho.SubscribeOptions{Topic: f, QoS: 1})
	}
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		t.Fatal(err)
	}
	return msgs, c
}

// aclSensor connects an MQTT-SN sensor over UDP with opts. It
// disconnects at cleanup (unless closed before), so that the gateway keeps
// no client at an address a later socket of the test may be given: a QoS
// -1 PUBLISH from there would be the old client's.
func aclSensor(t *testing.T, ctx context.Context, addr string, opts snclient.Options) *snclient.Client {
	t.Helper()
	c := aclDial(t, ctx, addr, opts)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("sensor %s: connect: %v", opts.ClientID, err)
	}
	t.Cleanup(func() { // runs before aclDial's Close
		if c.State() == snclient.StateActive {
			if err := c.Disconnect(ctx); err != nil && !errors.Is(err, snclient.ErrClosed) {
				t.Errorf("sensor %s: disconnect: %v", opts.ClientID, err)
			}
		}
	})
	return c
}

// aclDial makes an MQTT-SN client over UDP without connecting.
func aclDial(t *testing.T, ctx context.Context, addr string, opts snclient.Options) *snclient.Client {
	t.Helper()
	opts.RetryInterval, opts.MaxRetries = 500*time.Millisecond, 6
	c, err := snclient.Dial(ctx, "udp4", addr, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// aclWaitFor reads msgs until one has topic and payload; it fails the test if
// a message whose payload says DENIED arrives first, or on ctx's end.
func aclWaitFor(t *testing.T, ctx context.Context, msgs <-chan aclMsg, topic, payload string) aclMsg {
	t.Helper()
	for {
		select {
		case m := <-msgs:
			if strings.Contains(m.payload, "DENIED") {
				t.Fatalf("a denied message reached the subscriber: %+v (waiting for %s %q)", m, topic, payload)
			}
			if m.topic == topic && m.payload == payload {
				return m
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %s %q: %v", topic, payload, ctx.Err())
		}
	}
}

// mustRefuse fails the test unless err is the gateway's "rejected: not
// supported".
func mustRefuse(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, snclient.ErrNotSupported) {
		t.Errorf("%s = %v; want the gateway's refusal, rejected: not supported", what, err)
	}
}

// TestServeACLBindsSensors runs the gannet binary with an ACL in [mqtt.auth]
// and checks every MQTT-SN path against it, with an MQTT observer
// subscribed to "#": REGISTERed, SUBACK-assigned, predefined and short
// topic ids at QoS 0, 1 and 2, QoS -1, retained publishes, wills and will
// updates, SUBSCRIBE with wildcards and $SYS, the same over DTLS with the
// PSK identity as ACL user, and one pattern line covering 100 sensors. What
// the ACL allows arrives; what it denies gets the protocol's refusal and
// never reaches the observer (each check ends with an allowed message from
// the same sender, after which nothing denied may have arrived: one
// publisher's messages reach a subscriber in order).
func TestServeACLBindsSensors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gannet binary; skipped with -short")
	}
	dir := t.TempDir()
	gannet := bridgeBuildGannet(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	const dtlsKey = "00112233445566778899aabbccddeeff"
	udp := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "udp"))
	dtlsAddr := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "udp"))
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "tcp"))
	acl, psk := filepath.Join(dir, "acl"), filepath.Join(dir, "psk")
	cfgPath := filepath.Join(dir, "config.toml")
	for path, data := range map[string]string{
		acl: aclTestACL,
		psk: "sensor1:" + dtlsKey + "\n",
		cfgPath: fmt.Sprintf(`[[listen]]
network = "udp4"
address = %q

[[listen]]
network = "dtls"
address = %q
[listen.dtls]
psk_file = %q
identity_rule = "map"
identity_map = { "sensor1" = "node-17" }

[gateway]
retry_interval = "1s"

[[gateway.predefined]]
id = 1
topic = "secret/cmd"

[[gateway.predefined]]
id = 2
topic = "sensors/{client_id}/pre"

[[gateway.predefined]]
id = 3
topic = "sensors/qosm1/pre"

[gateway.qos_minus_one]
enabled = true
allow_from = ["127.0.0.0/8"]
client_id = "gannet-qos-1"

[broker]
sys_interval = "200ms"

[mqtt]
address = %q
[mqtt.auth]
acl_file = %q
`, udp, dtlsAddr, psk, mqttAddr, acl),
	} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	proc := bridgeStart(t, gannet, "serve", "-config", cfgPath)
	msgs, commander := aclObserver(t, ctx, mqttAddr, proc, "observer", "#")
	deny := []byte("DENIED")

	t.Run("publish", func(t *testing.T) {
		s := aclSensor(t, ctx, udp, snclient.Options{ClientID: "sn-a"})
		for _, q := range []snpacket.QoS{snpacket.QoS0, snpacket.QoS1, snpacket.QoS2} {
			for _, tp := range []snclient.Topic{snclient.Named("sensors/sn-a/n"), snclient.Predefined(2), snclient.Short("ab")} {
				if err := s.Publish(ctx, tp, q, false, fmt.Appendf(nil, "ok %v %v", tp, q)); err != nil {
					t.Fatalf("allowed publish %v at %v: %v", tp, q, err)
				}
				want := map[snpacket.TopicIDType]string{snpacket.TopicIDNormal: "sensors/sn-a/n",
					snpacket.TopicIDPredefined: "sensors/sn-a/pre", snpacket.TopicIDShort: "ab"}[tp.Kind]
				aclWaitFor(t, ctx, msgs, want, fmt.Sprintf("ok %v %v", tp, q))
			}
		}
		// A normal id the gateway assigned in SUBACK (read allowed, write not).
		if _, err := s.Subscribe(ctx, snclient.Named("cmd/sn-a/x"), snpacket.QoS1); err != nil {
			t.Fatalf("subscribe cmd/sn-a/x: %v", err)
		}
		for _, q := range []snpacket.QoS{snpacket.QoS1, snpacket.QoS2} {
			mustRefuse(t, fmt.Sprintf("publish to cmd/sn-a/x (SUBACK's id) at %v", q),
				s.Publish(ctx, snclient.Named("cmd/sn-a/x"), q, false, deny))
			for _, tp := range []snclient.Topic{snclient.Named("secret/n"), snclient.Predefined(1), snclient.Short("zz")} {
				mustRefuse(t, fmt.Sprintf("publish %v at %v", tp, q), s.Publish(ctx, tp, q, false, deny))
			}
		}
		// QoS 0 refusals are PUBACKs the client does not wait for: what
		// matters is that nothing arrives.
		for _, tp := range []snclient.Topic{snclient.Named("cmd/sn-a/x"), snclient.Predefined(1), snclient.Short("zz")} {
			if err := s.Publish(ctx, tp, snpacket.QoS0, false, deny); err != nil {
				t.Fatalf("qos 0 publish %v: %v", tp, err)
			}
		}
		mustRefuse(t, "qos 0 publish secret/n (REGISTER)", s.Publish(ctx, snclient.Named("secret/n"), snpacket.QoS0, false, deny))
		if err := s.Publish(ctx, snclient.Named("sensors/sn-a/n"), snpacket.QoS1, false, []byte("marker publish")); err != nil {
			t.Fatal(err)
		}
		aclWaitFor(t, ctx, msgs, "sensors/sn-a/n", "marker publish")
	})

	t.Run("retained", func(t *testing.T) {
		s := aclSensor(t, ctx, udp, snclient.Options{ClientID: "sn-r"})
		mustRefuse(t, "retained publish to predefined secret/cmd", s.Publish(ctx, snclient.Predefined(1), snpacket.QoS1, true, deny))
		mustRefuse(t, "retained publish to secret/state", s.Publish(ctx, snclient.Named("secret/state"), snpacket.QoS1, true, deny))
		if err := s.Publish(ctx, snclient.Named("sensors/sn-r/state"), snpacket.QoS1, true, []byte("ret ok")); err != nil {
			t.Fatal(err)
		}
		aclWaitFor(t, ctx, msgs, "sensors/sn-r/state", "ret ok")
		// A later subscriber gets the retained messages of its filters in
		// filter order: nothing retained under secret/ before ours.
		late, _ := aclObserver(t, ctx, mqttAddr, proc, "late", "secret/#", "sensors/sn-r/state")
		if m := aclWaitFor(t, ctx, late, "sensors/sn-r/state", "ret ok"); !m.retain {
			t.Errorf("late subscriber got %+v; want it retained", m)
		}
	})

	t.Run("qos -1", func(t *testing.T) {
		s := aclDial(t, ctx, udp, snclient.Options{ClientID: "unused"})
		for _, tp := range []snclient.Topic{snclient.Predefined(1), snclient.Short("zz")} {
			if err := s.Publish(ctx, tp, snpacket.QoSMinus1, false, deny); err != nil {
				t.Fatalf("qos -1 publish %v: %v", tp, err)
			}
		}
		// Predefined 2 is sensors/{client_id}/pre: for QoS -1, client id
		// gannet-qos-1, which the pattern sensors/%c/# lets write there.
		for _, tp := range []snclient.Topic{snclient.Short("qa"), snclient.Predefined(3), snclient.Predefined(2)} {
			if err := s.Publish(ctx, tp, snpacket.QoSMinus1, false, []byte("ok -1")); err != nil {
				t.Fatal(err)
			}
		}
		aclWaitFor(t, ctx, msgs, "qa", "ok -1")
		aclWaitFor(t, ctx, msgs, "sensors/qosm1/pre", "ok -1")
		aclWaitFor(t, ctx, msgs, "sensors/gannet-qos-1/pre", "ok -1")
	})

	t.Run("subscribe", func(t *testing.T) {
		got := make(chan snclient.Message, 16)
		s := aclSensor(t, ctx, udp, snclient.Options{ClientID: "sn-s", Handler: func(m snclient.Message) { got <- m }})
		for _, f := range []string{"#", "$SYS/#", "$SYS/broker/mqttsn/messages/not_authorized", "cmd/+/x", "cmd/#", "sensors/sn-s/#"} {
			_, err := s.Subscribe(ctx, snclient.Named(f), snpacket.QoS1)
			mustRefuse(t, "subscribe "+f, err)
		}
		mustRefuse(t, "subscribe predefined secret/cmd", func() error {
			_, err := s.Subscribe(ctx, snclient.Predefined(1), snpacket.QoS1)
			return err
		}())
		if _, err := s.Subscribe(ctx, snclient.Named("cmd/sn-s/+"), snpacket.QoS1); err != nil {
			t.Fatalf("subscribe cmd/sn-s/+: %v", err)
		}
		for _, tp := range []string{"cmd/sn-x/y", "cmd/sn-s/y"} {
			if _, err := commander.Publish(ctx, &paho.Publish{Topic: tp, QoS: 1, Payload: []byte(tp)}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case m := <-got:
			if m.Topic != "cmd/sn-s/y" {
				t.Errorf("sensor received %s; want only cmd/sn-s/y", m.Topic)
			}
		case <-ctx.Done():
			t.Fatal("the allowed command never reached the sensor")
		}
	})

	t.Run("will", func(t *testing.T) {
		bad := aclDial(t, ctx, udp, snclient.Options{ClientID: "sn-w",
			Will: &snclient.Will{Topic: "secret/will", Message: deny}})
		mustRefuse(t, "connect with a will on secret/will", bad.Connect(ctx))
		bad.Close()
		s := aclSensor(t, ctx, udp, snclient.Options{ClientID: "sn-w", KeepAlive: time.Second,
			Will: &snclient.Will{Topic: "sensors/sn-w/will", Message: []byte("will ok"), QoS: snpacket.QoS1}})
		mustRefuse(t, "will topic update to secret/will", s.UpdateWillTopic(ctx, "secret/will", snpacket.QoS1, false))
		if err := s.UpdateWillTopic(ctx, "sensors/sn-w/will2", snpacket.QoS1, false); err != nil {
			t.Fatalf("allowed will topic update: %v", err)
		}
		s.Close() // silently: the gateway loses it after 1.5 keep-alives and publishes the will
		aclWaitFor(t, ctx, msgs, "sensors/sn-w/will2", "will ok")
	})

	t.Run("dtls identity is the acl user", func(t *testing.T) {
		gw, err := net.ResolveUDPAddr("udp4", dtlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan snclient.Message, 16)
		s := dialSensor(t, ctx, gw, "sensor1", dtlsKey, "node-17", func(m snclient.Message) { got <- m })
		if err := s.Connect(ctx); err != nil {
			t.Fatalf("dtls connect as node-17: %v", err)
		}
		mustRefuse(t, "dtls publish secret/n", s.Publish(ctx, snclient.Named("secret/n"), snpacket.QoS1, false, deny))
		mustRefuse(t, "dtls publish predefined secret/cmd", s.Publish(ctx, snclient.Predefined(1), snpacket.QoS2, false, deny))
		mustRefuse(t, "dtls publish dtls/other/n", s.Publish(ctx, snclient.Named("dtls/other/n"), snpacket.QoS1, false, deny))
		mustRefuse(t, "dtls publish short zz", s.Publish(ctx, snclient.Short("zz"), snpacket.QoS1, false, deny))
		mustRefuse(t, "dtls retained publish secret/cmd", s.Publish(ctx, snclient.Predefined(1), snpacket.QoS1, true, deny))
		for _, tp := range []snclient.Topic{snclient.Predefined(1), snclient.Short("zz")} {
			if err := s.Publish(ctx, tp, snpacket.QoS0, false, deny); err != nil {
				t.Fatalf("dtls qos 0 publish %v: %v", tp, err)
			}
		}
		mustRefuse(t, "dtls will topic update to secret/will", s.UpdateWillTopic(ctx, "secret/will", snpacket.QoS1, false))
		_, err = s.Subscribe(ctx, snclient.Named("#"), snpacket.QoS1)
		mustRefuse(t, "dtls subscribe #", err)
		_, err = s.Subscribe(ctx, snclient.Named("$SYS/#"), snpacket.QoS1)
		mustRefuse(t, "dtls subscribe $SYS/#", err)
		for _, q := range []snpacket.QoS{snpacket.QoS0, snpacket.QoS1, snpacket.QoS2} {
			if err := s.Publish(ctx, snclient.Short("db"), q, false, fmt.Appendf(nil, "dtls short %v", q)); err != nil {
				t.Fatalf("dtls publish short db at %v: %v", q, err)
			}
			aclWaitFor(t, ctx, msgs, "db", fmt.Sprintf("dtls short %v", q))
		}
		// Rights of user sensor1 (the PSK identity), not of client id node-17.
		if err := s.Publish(ctx, snclient.Named("dtls/sensor1/n"), snpacket.QoS1, true, []byte("dtls ok")); err != nil {
			t.Fatalf("dtls publish dtls/sensor1/n: %v", err)
		}
		aclWaitFor(t, ctx, msgs, "dtls/sensor1/n", "dtls ok")
		if _, err := s.Subscribe(ctx, snclient.Named("dtlscmd/#"), snpacket.QoS1); err != nil {
			t.Fatalf("dtls subscribe dtlscmd/#: %v", err)
		}
		if _, err := commander.Publish(ctx, &paho.Publish{Topic: "dtlscmd/go", QoS: 1, Payload: []byte("go")}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m.Topic != "dtlscmd/go" {
				t.Errorf("dtls sensor received %s; want dtlscmd/go", m.Topic)
			}
		case <-ctx.Done():
			t.Fatal("dtlscmd/go never reached the dtls sensor")
		}
		// The same client id on plain UDP is only its claim: user node-17.
		u := aclSensor(t, ctx, udp, snclient.Options{ClientID: "node-17"})
		mustRefuse(t, "udp node-17 publish dtls/sensor1/n", u.Publish(ctx, snclient.Named("dtls/sensor1/n"), snpacket.QoS1, false, deny))
		if err := u.Publish(ctx, snclient.Named("sensors/node-17/n"), snpacket.QoS1, false, []byte("udp node-17 ok")); err != nil {
			t.Fatal(err)
		}
		aclWaitFor(t, ctx, msgs, "sensors/node-17/n", "udp node-17 ok")
	})

	t.Run("one pattern line, 100 sensors", func(t *testing.T) {
		const n = 100
		fleet, _ := aclObserver(t, ctx, mqttAddr, proc, "fleet-observer", "fleet/#")
		var wg sync.WaitGroup
		ids := make(chan int, n)
		for i := range n {
			ids <- i
		}
		close(ids)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range ids {
					id := fmt.Sprintf("dev-%03d", i)
					c, err := snclient.Dial(ctx, "udp4", udp, snclient.Options{ClientID: id, RetryInterval: 500 * time.Millisecond, MaxRetries: 6})
					if err != nil {
						t.Error(err)
						return
					}
					if err := c.Connect(ctx); err != nil {
						t.Errorf("%s: connect: %v", id, err)
					} else {
						other := fmt.Sprintf("fleet/dev-%03d/t", (i+1)%n)
						if err := c.Publish(ctx, snclient.Named(other), snpacket.QoS1, false, deny); !errors.Is(err, snclient.ErrNotSupported) {
							t.Errorf("%s publish %s = %v; want rejected: not supported", id, other, err)
						}
						if err := c.Publish(ctx, snclient.Named("fleet/"+id+"/t"), snpacket.QoS1, false, []byte(id)); err != nil {
							t.Errorf("%s publish its own topic: %v", id, err)
						}
					}
					c.Close()
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		seen := map[string]bool{}
		for len(seen) < n {
			select {
			case m := <-fleet:
				if m.topic != "fleet/"+m.payload+"/t" || strings.Contains(m.payload, "DENIED") {
					t.Fatalf("fleet observer got %+v; want each sensor on its own topic only", m)
				}
				seen[m.payload] = true
			case <-ctx.Done():
				t.Fatalf("%d of %d fleet messages arrived", len(seen), n)
			}
		}
	})

	// Every refusal was counted ($SYS) and logged.
	sys, _ := aclObserver(t, ctx, mqttAddr, proc, "sys", "$SYS/broker/mqttsn/messages/not_authorized")
	for {
		var m aclMsg
		select {
		case m = <-sys:
		case <-ctx.Done():
			t.Fatalf("no $SYS not authorized count of 100 or more: %v", ctx.Err())
		}
		if n, _ := strconv.Atoi(m.payload); n >= 100 {
			break
		}
	}
	if !strings.Contains(proc.out.String(), "not authorized") {
		t.Errorf("gannet logged no 'not authorized' line:\n%s", proc.out)
	}
}
