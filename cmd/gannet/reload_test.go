package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestReloadUnderLiveSensors runs the gannet binary without a DTLS
// listener (where SIGHUP used to kill the process) with MQTT-SN sensors
// connected and an MQTT client whose publishing the ACL refuses. A reload
// (gannet reload, then SIGHUP) with an ACL that allows it takes effect on
// the established connection and drops no sensor; lowered [gateway] limits
// (max_message_size, max_clients) are enforced on the sensors already
// connected, without dropping them, and a key fixed at start (loops) is
// reported as needing a restart; a broken configuration and a broken ACL
// file are rejected whole and the running configuration stays.
func TestReloadUnderLiveSensors(t *testing.T) {
	dir := t.TempDir()
	gannet := bridgeBuildGannet(t, dir)
	// Every listener on port 0: the bound addresses are read from the
	// log, so no other process can take a port between a probe and the
	// bind.
	const udpConf, mqttConf, httpConf = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	acl := filepath.Join(dir, "acl")
	cfgPath := filepath.Join(dir, "gannet.toml")
	writeConfig := func(extra string) {
		t.Helper()
		cfg := fmt.Sprintf(`[log]
level = "info"
[[listen]]
network = "udp4"
address = %q
[mqtt]
address = %q
[mqtt.auth]
acl_file = %q
[http]
enabled = true
address = %q
%s`, udpConf, mqttConf, acl, httpConf, extra)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The anonymous MQTT application may use sensors/#; each sensor (its
	// client id is its user on plain UDP) may write its own topic. The ACL
	// binds both (docs/security.md).
	const sensorsACL = "pattern write sensors/%c\ntopic readwrite sensors/#\n"
	writeACL := func(text string) {
		t.Helper()
		if err := os.WriteFile(acl, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeACL(sensorsACL) // cmd/# is refused
	writeConfig("")
	p := bridgeStart(t, gannet, "serve", "-config", cfgPath)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alive := func() {
		t.Helper()
		select {
		case <-p.exit:
			t.Fatalf("gannet exited: %v\n%s", p.cmd.ProcessState, p.out.String())
		default:
		}
	}
	var udp, mqttAddr, httpURL string
	waitFor(t, "gannet's listeners in its log", func() bool {
		alive()
		log := p.out.String()
		u := regexp.MustCompile(`msg="serving MQTT-SN" network=udp4 address=(\S+)`).FindStringSubmatch(log)
		m := regexp.MustCompile(`msg="mqtt listener listening" listener=tcp addr=(\S+)`).FindStringSubmatch(log)
		h := regexp.MustCompile(`msg="serving http[^"]*" url=(http://\S+)/ `).FindStringSubmatch(log)
		if u == nil || m == nil || h == nil {
			return false
		}
		udp, mqttAddr, httpURL = u[1], m[1], h[1]
		return true
	})
	waitFor(t, "gannet ready", func() bool {
		alive()
		resp, err := http.Get(httpURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	var sensors []*snclient.Client
	for i := range 3 {
		c := bridgeSensor(t, ctx, udp, fmt.Sprintf("live-%d", i))
		if c == nil {
			t.FailNow()
		}
		t.Cleanup(func() { c.Close() })
		sensors = append(sensors, c)
	}
	publishAll := func(when string) {
		t.Helper()
		for _, c := range sensors {
			if err := c.Publish(ctx, snclient.Named("sensors/"+c.ClientID()), sn.QoS1, false, []byte(when)); err != nil {
				t.Fatalf("%s: sensor %s Publish = %v; want PUBACK", when, c.ClientID(), err)
			}
		}
	}
	publishAll("before")
	big := bytes.Repeat([]byte("x"), 200)
	if err := sensors[0].Publish(ctx, snclient.Named("sensors/live-0"), sn.QoS1, false, big); err != nil {
		t.Fatalf("a 200-octet PUBLISH under max_message_size 1500: %v; want PUBACK", err)
	}
	// Predefined id 7 is not defined yet.
	if err := sensors[1].Publish(ctx, snclient.Predefined(7), sn.QoS1, false, []byte("pre")); err == nil {
		t.Fatal("PUBLISH with predefined id 7 before it is defined: accepted; want invalid topic id")
	}

	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", mqttAddr)
	if err != nil {
		t.Fatal(err)
	}
	app := paho.NewClient(paho.ClientConfig{Conn: nc})
	if _, err := app.Connect(ctx, &paho.Connect{ClientID: "app", CleanStart: true, KeepAlive: 60}); err != nil {
		t.Fatal(err)
	}
	defer app.Disconnect(&paho.Disconnect{})
	pubCmd := func() byte {
		t.Helper()
		pr, err := app.Publish(ctx, &paho.Publish{Topic: "cmd/live-0", QoS: 1, Payload: []byte("on")})
		if pr == nil {
			t.Fatalf("Publish cmd/live-0: %v", err)
		}
		return pr.ReasonCode
	}
	if rc := pubCmd(); rc != 0x87 {
		t.Fatalf("publish to cmd/# under the first ACL: reason %#x; want 0x87 (not authorized)", rc)
	}

	// gannet reload: the ACL allows cmd/#, the log level, a predefined
	// topic id and [gateway]'s limits change.
	writeACL(sensorsACL + "topic write cmd/#\n")
	writeConfig("[gateway]\nmax_clients = 5000\nmax_message_size = 100\nloops = 3\n[[gateway.predefined]]\nid = 7\ntopic = \"sensors/live-1\"\n")
	sedLevel := func(level string) {
		t.Helper()
		b, _ := os.ReadFile(cfgPath)
		os.WriteFile(cfgPath, bytes.Replace(b, []byte(`level = "info"`), []byte(`level = "`+level+`"`), 1), 0o600)
	}
	sedLevel("debug")
	var out, errOut bytes.Buffer
	if rc := run(ctx, []string{"reload", "-url", httpURL}, nil, &out, &errOut); rc != 0 {
		t.Fatalf("gannet reload = %d: %s%s", rc, out.String(), errOut.String())
	}
	for _, want := range []string{"applied:      log.level = DEBUG", "applied:      mqtt.auth", "applied:      gateway.predefined = (1 topic ids)",
		"applied:      gateway.max_clients = 5000", "applied:      gateway.max_message_size = 100",
		"not applied:  gateway.loops changed: needs a restart"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("gannet reload printed %q; want %q in it", out.String(), want)
		}
	}
	if rc := pubCmd(); rc >= 0x80 {
		t.Errorf("publish to cmd/# after the reload: reason %#x; want success", rc)
	}
	alive()
	publishAll("after reload")
	// The lowered max_message_size binds the sensors already connected: a
	// 200-octet PUBLISH is now dropped (QoS 0: nothing to wait for; the
	// limit counter says it was seen), and the sensor goes on.
	if err := sensors[0].Publish(ctx, snclient.Named("sensors/live-0"), sn.QoS0, false, big); err != nil {
		t.Fatalf("QoS 0 PUBLISH: %v", err)
	}
	waitFor(t, "the oversized PUBLISH counted against max_message_size", func() bool {
		alive()
		return value(t, scrape(t, httpURL), "gannet_mqttsn_limit_hits_total", "limit", "max_message_size_received") == 1
	})
	publishAll("after the oversized one")
	if err := sensors[1].Publish(ctx, snclient.Predefined(7), sn.QoS1, false, []byte("pre")); err != nil {
		t.Errorf("PUBLISH with predefined id 7 after the reload defined it: %v; want PUBACK", err)
	}
	if code, body, _ := get(t, httpURL+"/api/status"); code != 200 || !strings.Contains(body, `"Active":3`) {
		t.Errorf("GET /api/status after reload = %d %s; want 3 active sensors", code, body)
	}

	// A broken configuration, by SIGHUP: rejected, the process and the
	// running configuration stay.
	writeConfig("[gateway]\nmax_clients = -1\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rejected reload in the log", func() bool {
		alive()
		return strings.Contains(p.out.String(), "reload rejected") && strings.Contains(p.out.String(), "max_clients = -1")
	})
	// A broken ACL file, through the endpoint: rejected too.
	writeConfig("")
	writeACL(sensorsACL + "frobnicate cmd/#\n")
	out.Reset()
	errOut.Reset()
	if rc := run(ctx, []string{"reload", "-url", httpURL}, nil, &out, &errOut); rc != 1 || !strings.Contains(errOut.String(), "reload rejected") {
		t.Errorf("gannet reload with a broken ACL = %d, %q; want 1 and \"reload rejected\"", rc, errOut.String())
	}
	if rc := pubCmd(); rc >= 0x80 {
		t.Errorf("publish to cmd/# after the rejected reloads: reason %#x; want success (the ACL in force stays)", rc)
	}

	// SIGHUP with a good configuration, without any DTLS listener: reloaded,
	// and the process lives on.
	writeACL(sensorsACL)
	n := strings.Count(p.out.String(), "configuration reloaded")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload in the log", func() bool {
		alive()
		return strings.Count(p.out.String(), "configuration reloaded") > n
	})
	if rc := pubCmd(); rc != 0x87 {
		t.Errorf("publish to cmd/# after the SIGHUP reload: reason %#x; want 0x87", rc)
	}
	if err := sensors[1].Publish(ctx, snclient.Predefined(7), sn.QoS1, false, []byte("pre")); err == nil {
		t.Error("PUBLISH with predefined id 7 after the SIGHUP reload removed it: accepted; want invalid topic id")
	}
	publishAll("after SIGHUP")
	fams := scrape(t, httpURL)
	if lost := value(t, fams, "gannet_mqttsn_sensors_lost_total"); lost != 0 {
		t.Errorf("gannet_mqttsn_sensors_lost_total = %v; want 0 (no sensor dropped)", lost)
	}
	if active := value(t, fams, "gannet_mqttsn_sensors", "state", "active"); active != 3 {
		t.Errorf("gannet_mqttsn_sensors{state=active} = %v; want 3", active)
	}
}

// TestReloadCommandFindsHTTP: gannet reload -config finds the [http]
// listener in the file, posts to /-/reload and prints the answer; a file
// without [http] is refused with a hint to send SIGHUP.
func TestReloadCommandFindsHTTP(t *testing.T) {
	posted := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posted <- r.Method + " " + r.URL.Path
		writeJSON(w, http.StatusOK, reloadReport{Applied: []string{"log.level = DEBUG"}, NotApplied: []string{"[gateway] changed: needs a restart"}})
	}))
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "gannet.toml")
	base := "[[listen]]\naddress = \"127.0.0.1:0\"\n"
	os.WriteFile(path, []byte(base+fmt.Sprintf("[http]\nenabled = true\naddress = %q\n", strings.TrimPrefix(srv.URL, "http://"))), 0o600)
	var out, errOut bytes.Buffer
	if rc := run(context.Background(), []string{"reload", "-config", path}, nil, &out, &errOut); rc != 0 {
		t.Fatalf("gannet reload = %d: %s", rc, errOut.String())
	}
	if got := <-posted; got != "POST /-/reload" {
		t.Errorf("request %q; want POST /-/reload", got)
	}
	if want := "applied:      log.level = DEBUG\nnot applied:  [gateway] changed: needs a restart\n"; out.String() != want {
		t.Errorf("printed %q; want %q", out.String(), want)
	}
	os.WriteFile(path, []byte(base), 0o600)
	errOut.Reset()
	if rc := run(context.Background(), []string{"reload", "-config", path}, nil, &out, &errOut); rc != 1 || !strings.Contains(errOut.String(), "send SIGHUP") {
		t.Errorf("gannet reload without [http] = %d, %q; want 1 and a hint to send SIGHUP", rc, errOut.String())
	}
}
