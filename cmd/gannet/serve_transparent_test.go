package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/internal/outside"
	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// The transparent-mode tests run the gannet binary in front of a real
// Mosquitto that knows every device by its own password and lets each
// touch only devices/<its client id>/# (a pattern ACL); an "observer" user
// may read and write everything.

// tpRig is one Mosquitto with credentials and an ACL, and the gannet
// binary built for it.
type tpRig struct {
	dir    string
	gannet string
	mport  int
	mosq   *bridgeProc
}

// tpPasswords are the users Mosquitto accepts.
var tpPasswords = map[string]string{
	"valve-1": "pw-valve-1", "valve-2": "pw-valve-2", "valve-3": "pw-valve-3",
	"valve-5": "pw-valve-5", "valve-9": "pw-valve-9", "observer": "pw-observer",
}

// newTPRig writes Mosquitto's password file (with mosquitto_passwd), ACL
// and configuration, starts it on a free port and builds gannet.
func newTPRig(t *testing.T) *tpRig {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the gannet binary; skipped with -short")
	}
	mosqBin := outside.Program(t, "mosquitto", "mosquitto")
	passwdBin := outside.Program(t, "mosquitto_passwd", "mosquitto")
	r := &tpRig{dir: t.TempDir()}
	pwFile := filepath.Join(r.dir, "passwd")
	first := true
	for user, pw := range tpPasswords {
		args := []string{"-b", pwFile, user, pw}
		if first {
			args = append([]string{"-c"}, args...)
			first = false
		}
		if out, err := exec.Command(passwdBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v\n%s", args, err, out)
		}
	}
	aclFile := filepath.Join(r.dir, "acl")
	acl := "user observer\ntopic readwrite #\n\npattern readwrite devices/%c/#\n"
	if err := os.WriteFile(aclFile, []byte(acl), 0o600); err != nil {
		t.Fatal(err)
	}
	r.mport = bridgeFreePort(t, "tcp")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nacl_file %s\npersistence false\nmax_queued_messages 1000\nlog_dest stderr\nlog_type all\n",
		r.mport, pwFile, aclFile)
	if os.Geteuid() == 0 {
		conf += "user root\n" // else it drops to user mosquitto, which cannot read the test's files
	}
	mconf := filepath.Join(r.dir, "mosquitto.conf")
	if err := os.WriteFile(mconf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.mosq = bridgeStart(t, mosqBin, "-c", mconf)
	r.gannet = bridgeBuildGannet(t, r.dir)
	return r
}

// serve writes a gannet configuration named name with [transparent]
// pointing at the rig's Mosquitto (plus extra keys in that section) and
// starts `gannet serve`; it returns the process and its MQTT-SN address.
// With mqttAddr its MQTT listener is on there and $SYS is published every
// 100 ms; otherwise the listener is off.
func (r *tpRig) serve(t *testing.T, name, extra string, mqttAddr ...string) (*bridgeProc, string) {
	t.Helper()
	udp := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "udp"))
	mqttSection := "[mqtt]\ndisabled = true"
	if len(mqttAddr) > 0 {
		mqttSection = fmt.Sprintf("[mqtt]\naddress = %q\n\n[broker]\nsys_interval = \"100ms\"", mqttAddr[0])
	}
	dir := filepath.Join(r.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`[log]
level = "debug"

[[listen]]
network = "udp4"
address = %q

%s

[store]
path = %q

[transparent]
enabled = true
server = "mqtt://127.0.0.1:%d"
client_ids = ["valve-*"]
password = "pw-{client_id}"
connect_timeout = "5s"
%s

[[transparent.device]]
client_id = "valve-3"
username = "valve-3"
password = "not-the-password"
`, udp, mqttSection, filepath.Join(dir, "data"), r.mport, extra)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return bridgeStart(t, r.gannet, "serve", "-config", path), udp
}

// tpMsg is a message an observer or a sensor received.
type tpMsg struct {
	topic, payload string
	qos            byte
}

// observer connects a paho client as the observer user, subscribed to
// filter at QoS 2.
func (r *tpRig) observer(t *testing.T, ctx context.Context, id, filter string) (<-chan tpMsg, *paho.Client) {
	t.Helper()
	msgs := make(chan tpMsg, 1000)
	conn := procDial(t, ctx, r.mosq, fmt.Sprintf("127.0.0.1:%d", r.mport))
	c := paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			msgs <- tpMsg{pr.Packet.Topic, string(pr.Packet.Payload), pr.Packet.QoS}
			return true, nil
		}},
	})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30,
		UsernameFlag: true, Username: "observer", PasswordFlag: true, Password: []byte(tpPasswords["observer"])}); err != nil {
		t.Fatalf("observer connect: %v\n%s", err, r.mosq.out)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 2}}}); err != nil {
		t.Fatalf("observer subscribe %s: %v", filter, err)
	}
	return msgs, c
}

// tpSensor dials an MQTT-SN sensor at udp whose handler feeds the
// returned channel; it is not connected yet.
func tpSensor(t *testing.T, ctx context.Context, udp, id string, persistent bool) (*snclient.Client, <-chan tpMsg) {
	t.Helper()
	got := make(chan tpMsg, 1000)
	c, err := snclient.Dial(ctx, "udp4", udp, snclient.Options{ClientID: id, PersistentSession: persistent,
		RetryInterval: 300 * time.Millisecond, MaxRetries: 3,
		Handler: func(m snclient.Message) {
			got <- tpMsg{m.Topic, string(bytes.Clone(m.Payload)), byte(m.QoS)}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, got
}

// tpConnect connects c, retrying while gannet starts (an unanswered
// CONNECT); a refusal is returned at once.
func tpConnect(t *testing.T, ctx context.Context, p *bridgeProc, c *snclient.Client) error {
	t.Helper()
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.Connect(actx)
		cancel()
		var rc *snclient.ReturnCodeError
		if err == nil || errors.As(err, &rc) {
			return err
		}
		if ctx.Err() != nil {
			t.Fatalf("sensor %s could not connect: %v\n%s", c.ClientID(), err, p.out)
		}
	}
}

// next waits for the next message on ch.
func tpNext(t *testing.T, ctx context.Context, ch <-chan tpMsg, who string, logs ...*bridgeProc) tpMsg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-ctx.Done():
		var out strings.Builder
		for _, p := range logs {
			out.WriteString(p.out.String())
		}
		t.Fatalf("%s: no message: %v\n%s", who, ctx.Err(), out.String())
		return tpMsg{}
	}
}

// TestTransparentCredentialsAndACL: each sensor connects to Mosquitto as
// itself (its own client id, the password from the template or its device
// entry); Mosquitto's ACL refusals of a publish and a subscription, and
// its refusal of a bad password at CONNACK, reach the sensor as MQTT-SN
// return codes.
func TestTransparentCredentialsAndACL(t *testing.T) {
	r := newTPRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	obs, central := r.observer(t, ctx, "obs-acl", "devices/#")
	p, udp := r.serve(t, "a", "")

	s1, got1 := tpSensor(t, ctx, udp, "valve-1", false)
	if err := tpConnect(t, ctx, p, s1); err != nil {
		t.Fatalf("valve-1 connect: %v\n%s", err, p.out)
	}
	asItself := regexp.MustCompile(`New client connected from \S+ as valve-1 \(p5, c1, k60, u'valve-1'\)`)
	waitLog(t, ctx, r.mosq, "valve-1 connecting as user valve-1 with MQTT 5 and clean start", asItself.MatchString)
	if err := s1.Publish(ctx, snclient.Named("devices/valve-1/temp"), snpacket.QoS1, false, []byte("21.5")); err != nil {
		t.Fatalf("publish to its own topic: %v\n%s", err, p.out)
	}
	if m := tpNext(t, ctx, obs, "observer", p); m.topic != "devices/valve-1/temp" || m.payload != "21.5" {
		t.Fatalf("observer got %+v; want devices/valve-1/temp 21.5", m)
	}

	// Another device's topic: Mosquitto refuses the publish (MQTT 5 PUBACK
	// 0x87), and the sensor's PUBACK says so.
	err := s1.Publish(ctx, snclient.Named("devices/valve-2/temp"), snpacket.QoS1, false, []byte("forged"))
	var rc *snclient.ReturnCodeError
	if !errors.As(err, &rc) || rc.Code != snpacket.RejectedNotSupported || rc.Msg != snpacket.TypePuback {
		t.Fatalf("publish to another device's topic: err = %v; want PUBACK rejected: not supported\n%s", err, p.out)
	}
	// The refused message never reached the observer: the next one it
	// gets from valve-1's connection is the one published after it.
	if err := s1.Publish(ctx, snclient.Named("devices/valve-1/temp"), snpacket.QoS1, false, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if m := tpNext(t, ctx, obs, "observer", p); m.payload != "after" {
		t.Fatalf("observer got %+v after the refused publish; want the message published after it", m)
	}

	// A subscription to another device's topics: Mosquitto 2.0 grants it
	// (its ACL file is applied when a message is sent, not at SUBSCRIBE),
	// so the SUBACK is what Mosquitto said, and the other device's
	// commands never arrive: the sensor's next message, from the same
	// publisher, is its own command published after.
	for _, f := range []string{"devices/valve-2/cmd", "devices/valve-1/cmd"} {
		if _, err := s1.Subscribe(ctx, snclient.Named(f), snpacket.QoS1); err != nil {
			t.Fatalf("subscribe %s: %v\n%s", f, err, p.out)
		}
	}
	for _, topic := range []string{"devices/valve-2/cmd", "devices/valve-1/cmd"} {
		if _, err := central.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(topic)}); err != nil {
			t.Fatal(err)
		}
	}
	if m := tpNext(t, ctx, got1, "valve-1", p); m.topic != "devices/valve-1/cmd" {
		t.Fatalf("valve-1 got %+v; want only its own command", m)
	}

	// valve-3's device entry has the wrong password: Mosquitto answers
	// CONNACK 0x86 and the sensor's CONNACK carries the refusal.
	s3, _ := tpSensor(t, ctx, udp, "valve-3", false)
	err = tpConnect(t, ctx, p, s3)
	if !errors.As(err, &rc) || rc.Code != snpacket.RejectedNotSupported || rc.Msg != snpacket.TypeConnack {
		t.Fatalf("valve-3 with a bad password: err = %v; want CONNACK rejected: not supported\n%s", err, p.out)
	}
	// A sensor outside client_ids is not transparent: it is served locally
	// and never appears at Mosquitto.
	sl, _ := tpSensor(t, ctx, udp, "local-1", false)
	if err := tpConnect(t, ctx, p, sl); err != nil {
		t.Fatalf("local-1 connect: %v", err)
	}
	if strings.Contains(r.mosq.out.String(), "local-1") {
		t.Fatalf("a sensor outside client_ids reached Mosquitto:\n%s", r.mosq.out)
	}
}

// TestTransparentQoS12BothWays: QoS 1 and QoS 2 from the sensor reach a
// subscriber at Mosquitto once each, and QoS 1 and 2 commands published at
// Mosquitto reach the sensor at their QoS.
func TestTransparentQoS12BothWays(t *testing.T) {
	r := newTPRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	obs, central := r.observer(t, ctx, "obs-qos", "devices/valve-2/up/#")
	p, udp := r.serve(t, "a", "")
	s, got := tpSensor(t, ctx, udp, "valve-2", true)
	if err := tpConnect(t, ctx, p, s); err != nil {
		t.Fatalf("connect: %v\n%s", err, p.out)
	}
	for _, q := range []snpacket.QoS{snpacket.QoS1, snpacket.QoS2} {
		payload := fmt.Sprintf("up-qos%d", q)
		if err := s.Publish(ctx, snclient.Named("devices/valve-2/up/x"), q, false, []byte(payload)); err != nil {
			t.Fatalf("publish qos %d: %v\n%s", q, err, p.out)
		}
		if m := tpNext(t, ctx, obs, "observer", p); m.payload != payload || m.qos != byte(q) {
			t.Fatalf("observer got %+v; want %s at qos %d", m, payload, q)
		}
	}
	if _, err := s.Subscribe(ctx, snclient.Named("devices/valve-2/cmd/#"), snpacket.QoS2); err != nil {
		t.Fatalf("subscribe: %v\n%s", err, p.out)
	}
	for _, q := range []byte{1, 2} {
		payload := fmt.Sprintf("down-qos%d", q)
		if _, err := central.Publish(ctx, &paho.Publish{Topic: "devices/valve-2/cmd/open", QoS: q, Payload: []byte(payload)}); err != nil {
			t.Fatal(err)
		}
		if m := tpNext(t, ctx, got, "sensor", p); m.topic != "devices/valve-2/cmd/open" || m.payload != payload || m.qos != q {
			t.Fatalf("sensor got %+v; want devices/valve-2/cmd/open %s at qos %d", m, payload, q)
		}
	}
	// Exactly once: the QoS 2 publish upstream went once (the observer's
	// next message is a fresh one, not a duplicate of up-qos2).
	if err := s.Publish(ctx, snclient.Named("devices/valve-2/up/x"), snpacket.QoS1, false, []byte("last")); err != nil {
		t.Fatal(err)
	}
	if m := tpNext(t, ctx, obs, "observer", p); m.payload != "last" {
		t.Fatalf("observer got %+v; want last (no duplicate)", m)
	}
}

// connectsOf counts Mosquitto's "New client connected ... as id" lines.
func connectsOf(log, id string) int {
	return strings.Count(log, " as "+id+" (")
}

// waitLog waits until cond holds for Mosquitto's log; Mosquitto is an
// outside process whose only report is its log, so this polls, bounded by
// ctx.
func waitLog(t *testing.T, ctx context.Context, m *bridgeProc, what string, cond func(string) bool) {
	t.Helper()
	for !cond(m.out.String()) {
		select {
		case <-ctx.Done():
			t.Fatalf("Mosquitto never logged %s:\n%s", what, m.out)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestTransparentSleepCloses: with close_on_sleep a sleeping sensor holds
// no connection at Mosquitto; commands published while it sleeps are held
// by Mosquitto and arrive during its wake-up, before the PINGRESP.
func TestTransparentSleepCloses(t *testing.T) {
	r := newTPRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, central := r.observer(t, ctx, "obs-sleep", "nothing")
	p, udp := r.serve(t, "a", "close_on_sleep = true\nsession_expiry = \"1h\"")
	s, got := tpSensor(t, ctx, udp, "valve-5", true)
	if err := tpConnect(t, ctx, p, s); err != nil {
		t.Fatalf("connect: %v\n%s", err, p.out)
	}
	if _, err := s.Subscribe(ctx, snclient.Named("devices/valve-5/cmd"), snpacket.QoS1); err != nil {
		t.Fatalf("subscribe: %v\n%s", err, p.out)
	}
	if n := connectsOf(r.mosq.out.String(), "valve-5"); n != 1 {
		t.Fatalf("valve-5 connected %d times at Mosquitto before sleeping; want 1\n%s", n, r.mosq.out)
	}
	if err := s.Sleep(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ctx, r.mosq, "valve-5's disconnect", func(l string) bool { return strings.Contains(l, "Client valve-5 disconnected.") })
	asleepFrom := len(r.mosq.out.String())
	const n = 3
	for i := range n {
		if _, err := central.Publish(ctx, &paho.Publish{Topic: "devices/valve-5/cmd", QoS: 1, Payload: fmt.Appendf(nil, "cmd-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Mosquitto logs in order: once it logged a later exchange with the
	// observer, whatever happened to valve-5 before is in the log.
	if _, err := central.Publish(ctx, &paho.Publish{Topic: "devices/marker", QoS: 1, Payload: []byte("marker")}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ctx, r.mosq, "the marker", func(l string) bool { return strings.Contains(l, "'devices/marker'") })
	// Asleep: no connection at Mosquitto, the commands held there, nothing
	// at the sensor.
	asleep := r.mosq.out.String()[asleepFrom:]
	if c := connectsOf(asleep, "valve-5"); c != 0 || strings.Contains(asleep, "Sending PUBLISH to valve-5") {
		t.Fatalf("valve-5 had a connection at Mosquitto while asleep:\n%s", asleep)
	}
	if len(got) != 0 {
		t.Fatalf("the sensor got %d messages while asleep", len(got))
	}
	if err := s.CheckMessages(ctx); err != nil {
		t.Fatalf("wake: %v\n%s", err, p.out)
	}
	// The handler runs before the PINGRESP is read: all are here.
	if len(got) != n {
		t.Fatalf("the wake-up delivered %d messages before PINGRESP; want %d\n%s", len(got), n, p.out)
	}
	for i := range n {
		if m := <-got; m.payload != fmt.Sprintf("cmd-%d", i) {
			t.Fatalf("message %d = %+v; want cmd-%d", i, m, i)
		}
	}
	// The wake-up opened one connection, and going back to sleep closed it.
	waitLog(t, ctx, r.mosq, "valve-5's second disconnect", func(l string) bool { return strings.Count(l, "Client valve-5 disconnected.") == 2 })
	if c := connectsOf(r.mosq.out.String(), "valve-5"); c != 2 {
		t.Fatalf("valve-5 connected %d times at Mosquitto; want 2 (before the sleep, at the wake-up)", c)
	}
}

// TestTransparentFailover: a sensor subscribed through gateway A; A is
// SIGKILLed; commands are published at Mosquitto while the sensor has no
// gateway; the sensor connects to gateway B with CleanSession=0 and gets
// every one, from the session Mosquitto held.
func TestTransparentFailover(t *testing.T) {
	r := newTPRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, central := r.observer(t, ctx, "obs-failover", "nothing")
	extra := "session_expiry = \"1h\""
	pa, udpA := r.serve(t, "a", extra)
	pb, udpB := r.serve(t, "b", extra)

	sa, gotA := tpSensor(t, ctx, udpA, "valve-9", true)
	if err := tpConnect(t, ctx, pa, sa); err != nil {
		t.Fatalf("connect to A: %v\n%s", err, pa.out)
	}
	if _, err := sa.Subscribe(ctx, snclient.Named("devices/valve-9/cmd"), snpacket.QoS1); err != nil {
		t.Fatalf("subscribe through A: %v\n%s", err, pa.out)
	}
	if _, err := central.Publish(ctx, &paho.Publish{Topic: "devices/valve-9/cmd", QoS: 1, Payload: []byte("through-a")}); err != nil {
		t.Fatal(err)
	}
	if m := tpNext(t, ctx, gotA, "sensor via A", pa); m.payload != "through-a" {
		t.Fatalf("sensor via A got %+v", m)
	}

	killed := time.Now()
	pa.kill()
	const n = 20
	for i := range n {
		if _, err := central.Publish(ctx, &paho.Publish{Topic: "devices/valve-9/cmd", QoS: 1, Payload: fmt.Appendf(nil, "moved-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// The sensor notices A is gone (its next publish goes unanswered),
	// then moves to B with the same client id and CleanSession=0.
	err := sa.Publish(ctx, snclient.Named("devices/valve-9/up"), snpacket.QoS1, false, []byte("hello?"))
	if !errors.Is(err, snclient.ErrNoResponse) {
		t.Fatalf("publish to the killed gateway: %v; want no response", err)
	}
	noticed := time.Now()
	sb, gotB := tpSensor(t, ctx, udpB, "valve-9", true)
	if err := tpConnect(t, ctx, pb, sb); err != nil {
		t.Fatalf("connect to B: %v\n%s", err, pb.out)
	}
	dups := 0
	for i := 0; i < n; {
		m := tpNext(t, ctx, gotB, "sensor via B", pb)
		if i == 0 && dups == 0 {
			now := time.Now()
			t.Logf("failover: %v from SIGKILL of A to the first delivery through B: %v for the sensor to notice (its retries), %v from its move to B",
				now.Sub(killed).Round(time.Millisecond), noticed.Sub(killed).Round(time.Millisecond), now.Sub(noticed).Round(time.Millisecond))
		}
		if m.payload == "through-a" && i == 0 {
			// At least once: A queued it for the sensor before paho's
			// PUBACK to Mosquitto went out, and A died in between.
			dups++
			continue
		}
		if m.topic != "devices/valve-9/cmd" || m.payload != fmt.Sprintf("moved-%d", i) {
			t.Fatalf("message %d through B = %+v; want moved-%d", i, m, i)
		}
		i++
	}
	t.Logf("failover: %d messages through B, %d redelivered from A's time", n, dups)
	// The subscription itself moved: a command published now arrives too.
	if _, err := central.Publish(ctx, &paho.Publish{Topic: "devices/valve-9/cmd", QoS: 1, Payload: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if m := tpNext(t, ctx, gotB, "sensor via B", pb); m.payload != "after" {
		t.Fatalf("sensor via B got %+v; want after", m)
	}
}

// tpListen is the least a configuration needs besides [transparent].
const tpListen = "[[listen]]\nnetwork = \"udp4\"\naddress = \"127.0.0.1:0\"\n\n"

// TestTransparentConfig: the example in config.toml loads, and bad
// [transparent] sections are refused naming the key.
func TestTransparentConfig(t *testing.T) {
	cfg := loadRootExample(t, "TRANSPARENT")
	tc := cfg.Transparent
	if !tc.Enabled || !tc.CloseOnSleep || tc.SessionExpiry != 24*time.Hour || len(tc.Devices) != 1 || !tc.Claims("valve-7") || tc.Claims("pump-1") {
		t.Fatalf("config.toml's transparent example decoded as %+v", tc)
	}
	for _, c := range []struct{ body, want string }{
		{"enabled = true\nclient_ids = [\"a*\"]", "server is required"},
		{"enabled = true\nserver = \"ws://h:1\"\nclient_ids = [\"a*\"]", "scheme"},
		{"enabled = true\nserver = \"mqtt://h:1\"\nclient_ids = [\"a*\"]\n[transparent.tls]\nca_file = \"x\"", "not mqtts"},
		{"enabled = true\nserver = \"mqtts://h:1\"\nclient_ids = [\"a*\"]\n[transparent.tls]\ncert_file = \"x\"", "both cert_file and key_file"},
		{"enabled = true\nserver = \"mqtt://h:1\"", "client_ids"},
		{"enabled = true\nserver = \"mqtt://h:1\"\nclient_ids = [\"[\"]", "pattern"},
		{"enabled = true\nserver = \"mqtt://h:1\"\nclient_ids = [\"a*\"]\nmax_connections = -1", "max_connections"},
		{"enabled = true\nserver = \"mqtt://h:1\"\nclient_ids = [\"a*\"]\nsession_expiry = \"-1s\"", "session_expiry"},
		{"enabled = true\nserver = \"mqtt://h:1\"\nclient_ids = [\"a*\"]\nkeep_alive = \"1500ms\"", "keep_alive"},
		{"enabled = true\nserver = \"mqtt://h:1\"\nclient_ids = [\"a*\"]\n[[transparent.device]]\nclient_id = \"b\"\nusername = \"b\"", "matches none"},
		{"enabled = true\nserver = \"mqtt://h:1\"\nclient_ids = [\"a*\"]\n[[transparent.device]]\nclient_id = \"a1\"", "username is required"},
		{"enabled = true\nserver = \"mqtt://h:1\"\nclient_ids = [\"a*\"]\nmax_conections = 3", "unknown key"},
	} {
		path := filepath.Join(t.TempDir(), "gannet.toml")
		if err := os.WriteFile(path, []byte(tpListen+"[transparent]\n"+c.body+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadConfig(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("[transparent] %q: err = %v; want one naming %q", c.body, err, c.want)
		}
	}
	// Off (the default), nothing else is checked.
	path := filepath.Join(t.TempDir(), "gannet.toml")
	if err := os.WriteFile(path, []byte(tpListen+"[transparent]\nenabled = false\nserver = \"nonsense\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(path); err != nil {
		t.Errorf("a disabled [transparent]: %v", err)
	}
}

// TestTransparentMaxConnections: with max_connections = 1 a second
// transparent sensor is refused with CONNACK "rejected: congestion" and
// the refusal is logged; once the first disconnects, it gets in.
func TestTransparentMaxConnections(t *testing.T) {
	r := newTPRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "tcp"))
	p, udp := r.serve(t, "a", "max_connections = 1", mqttAddr)
	s1, _ := tpSensor(t, ctx, udp, "valve-1", false)
	if err := tpConnect(t, ctx, p, s1); err != nil {
		t.Fatalf("valve-1: %v\n%s", err, p.out)
	}
	s2, _ := tpSensor(t, ctx, udp, "valve-2", false)
	err := tpConnect(t, ctx, p, s2)
	var rc *snclient.ReturnCodeError
	if !errors.As(err, &rc) || rc.Code != snpacket.RejectedCongestion || rc.Msg != snpacket.TypeConnack {
		t.Fatalf("valve-2 beyond max_connections: err = %v; want CONNACK rejected: congestion\n%s", err, p.out)
	}
	waitLog(t, ctx, p, "the refusal", func(l string) bool { return strings.Contains(l, "max_connections reached") })
	if strings.Contains(r.mosq.out.String(), "as valve-2 (") {
		t.Fatalf("valve-2 reached Mosquitto beyond max_connections:\n%s", r.mosq.out)
	}
	// The counters are in $SYS on the gateway's MQTT listener.
	sys := make(chan tpMsg, 1000)
	sc := paho.NewClient(paho.ClientConfig{Conn: procDial(t, ctx, p, mqttAddr),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			sys <- tpMsg{pr.Packet.Topic, string(pr.Packet.Payload), pr.Packet.QoS}
			return true, nil
		}}})
	if _, err := sc.Connect(ctx, &paho.Connect{ClientID: "sys-watch", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	defer sc.Disconnect(&paho.Disconnect{})
	if _, err := sc.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "$SYS/broker/transparent/#"}}}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for seen["$SYS/broker/transparent/connections"] != "1" || seen["$SYS/broker/transparent/refused/max_connections"] != "1" {
		m := tpNext(t, ctx, sys, "$SYS/broker/transparent", p)
		seen[m.topic] = m.payload
	}
	if err := s1.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	// The slot frees once valve-1's upstream DISCONNECT went out, which
	// the gateway does after answering the sensor: retry until then.
	for {
		s2, _ = tpSensor(t, ctx, udp, "valve-2", false)
		err := tpConnect(t, ctx, p, s2)
		if err == nil {
			break
		}
		if !errors.As(err, &rc) || rc.Code != snpacket.RejectedCongestion {
			t.Fatalf("valve-2 after valve-1 left: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("valve-2 never got in after valve-1 left\n%s", p.out)
		case <-time.After(20 * time.Millisecond): // retry, as a refused sensor would
		}
	}
}

// TestTransparentCheckConfigReadsTLSFiles: check-config (and serve) read
// [transparent.tls]'s files and name a missing one.
func TestTransparentCheckConfigReadsTLSFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gannet.toml")
	body := tpListen + "[transparent]\nenabled = true\nserver = \"mqtts://h:8883\"\nclient_ids = [\"a*\"]\n[transparent.tls]\nca_file = \"" + filepath.Join(dir, "missing.pem") + "\"\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := checkConfig([]string{"-config", path}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "[transparent.tls]") || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("check-config with a missing ca_file: %v; want an error naming [transparent.tls] and the file", err)
	}
}

// TestTransparentSleepKeepsConnection: without close_on_sleep a sleeping
// sensor keeps its upstream connection; Mosquitto sends the commands at
// once, the gateway holds them in the sensor's core session, and the
// wake-up delivers them.
func TestTransparentSleepKeepsConnection(t *testing.T) {
	r := newTPRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, central := r.observer(t, ctx, "obs-keep", "nothing")
	p, udp := r.serve(t, "a", "session_expiry = \"1h\"")
	s, got := tpSensor(t, ctx, udp, "valve-5", true)
	if err := tpConnect(t, ctx, p, s); err != nil {
		t.Fatalf("connect: %v\n%s", err, p.out)
	}
	if _, err := s.Subscribe(ctx, snclient.Named("devices/valve-5/cmd"), snpacket.QoS1); err != nil {
		t.Fatal(err)
	}
	if err := s.Sleep(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	const n = 3
	for i := range n {
		if _, err := central.Publish(ctx, &paho.Publish{Topic: "devices/valve-5/cmd", QoS: 1, Payload: fmt.Appendf(nil, "cmd-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Mosquitto hands them to the gateway while the sensor sleeps, and
	// gets them acknowledged.
	waitLog(t, ctx, r.mosq, "the commands sent to valve-5's connection", func(l string) bool {
		return strings.Count(l, "Sending PUBLISH to valve-5") == n && strings.Count(l, "Received PUBACK from valve-5") == n
	})
	if strings.Contains(r.mosq.out.String(), "Client valve-5 disconnected") || len(got) != 0 {
		t.Fatalf("the sleep closed the upstream connection or reached the sensor")
	}
	if err := s.CheckMessages(ctx); err != nil {
		t.Fatalf("wake: %v\n%s", err, p.out)
	}
	if len(got) != n {
		t.Fatalf("the wake-up delivered %d messages before PINGRESP; want %d", len(got), n)
	}
	if c := connectsOf(r.mosq.out.String(), "valve-5"); c != 1 {
		t.Fatalf("valve-5 connected %d times at Mosquitto; want 1 (kept through the sleep)", c)
	}
}

// TestTransparentGatewayRestart: `gannet serve` stopped with SIGTERM
// disconnects its upstream sessions normally, so Mosquitto keeps them;
// commands published while the gateway is down arrive at the sensor once
// it is back (its session restored from [store], its remote session
// resumed), without the sensor doing anything.
func TestTransparentGatewayRestart(t *testing.T) {
	r := newTPRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, central := r.observer(t, ctx, "obs-restart", "nothing")
	p, udp := r.serve(t, "a", "session_expiry = \"1h\"")
	s, got := tpSensor(t, ctx, udp, "valve-1", true)
	if err := tpConnect(t, ctx, p, s); err != nil {
		t.Fatalf("connect: %v\n%s", err, p.out)
	}
	if _, err := s.Subscribe(ctx, snclient.Named("devices/valve-1/cmd"), snpacket.QoS1); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.exit
	waitLog(t, ctx, r.mosq, "valve-1's normal disconnect", func(l string) bool { return strings.Contains(l, "Client valve-1 disconnected.") })
	const n = 3
	for i := range n {
		if _, err := central.Publish(ctx, &paho.Publish{Topic: "devices/valve-1/cmd", QoS: 1, Payload: fmt.Appendf(nil, "cmd-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	p2 := bridgeStart(t, r.gannet, "serve", "-config", filepath.Join(r.dir, "a", "config.toml"))
	for i := range n {
		if m := tpNext(t, ctx, got, "sensor after the restart", p2); m.payload != fmt.Sprintf("cmd-%d", i) {
			t.Fatalf("message %d after the restart = %+v; want cmd-%d", i, m, i)
		}
	}
}
