package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
	"github.com/gannet-mqtt/gannet/radio"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// opsEnv is a running gateway (sntest.Env) with a radio UDP link of its
// own, served by the [http] handler on an httptest server.
type opsEnv struct {
	*sntest.Env
	in   *instance
	url  string // the HTTP server's base URL
	link string // the radio link's address, for sensors
}

func startOps(t testing.TB, opts sntest.Options) *opsEnv {
	t.Helper()
	e := sntest.Start(t, opts)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	links, err := openLinks([]radio.ListenerConfig{{Network: "udp4", Address: "127.0.0.1:0"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.Gateway.Serve(links[0]) }() // exits when the gateway closes
	t.Cleanup(func() {
		e.Close() // closes the gateway, which closes the link
		if err := <-served; err != nil {
			t.Errorf("Serve(radio link) = %v", err)
		}
	})
	lims, err := (&rateLimitConfig{}).apply(&gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{
		version: "test", started: time.Now(), log: log,
		broker: e.Broker, gw: e.Gateway, links: links, mqtt: e.Listener, limiters: lims.named(),
	}
	in.ready.Store(true)
	srv := httptest.NewServer(in.handler())
	t.Cleanup(srv.Close)
	return &opsEnv{Env: e, in: in, url: srv.URL, link: links[0].LocalAddr().String()}
}

// sensor connects an MQTT-SN client to the radio link.
func (o *opsEnv) sensor(t *testing.T, ctx context.Context, id string) *snclient.Client {
	t.Helper()
	return o.sensorWith(t, ctx, snclient.Options{ClientID: id, KeepAlive: time.Minute})
}

// sensorWith connects an MQTT-SN client with opts to the radio link.
func (o *opsEnv) sensorWith(t testing.TB, ctx context.Context, opts snclient.Options) *snclient.Client {
	t.Helper()
	id := opts.ClientID
	c, err := snclient.Dial(ctx, "udp4", o.link, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("sensor %s: Connect = %v", id, err)
	}
	return c
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// scrape fetches /metrics and parses the whole exposition: a malformed
// line fails the test.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, _ := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", code, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include want, failing the test if there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric family %s", name)
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	t.Fatalf("%s has no sample with labels %v", name, want)
	return 0
}

// TestMetricsAfterTraffic scrapes /metrics after real traffic: MQTT-SN
// sensors (snclient) publish at QoS 1 and one sleeps, an MQTT client
// (paho) subscribes and receives, a malformed datagram arrives. The values
// must be those of the parts' Stats, the one source of truth. The core is
// durable (a bbolt store) with max_queued 10, and the sleeper has 5
// messages queued: half full.
func TestMetricsAfterTraffic(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "gannet.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the Env's cleanup: the core closes first
	o := startOps(t, sntest.Options{Core: mqttcore.Config{MaxQueued: 10}, Journal: st})
	o.in.store = st
	ctx := sntest.Context(t)
	app := o.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "m/#")

	const perSensor = 5
	var sensors []*snclient.Client
	for i := range 2 {
		sensors = append(sensors, o.sensor(t, ctx, fmt.Sprintf("s%d", i)))
	}
	// s2's session is persistent: what is queued for it is written to the
	// store before the publisher's PUBACK.
	sensors = append(sensors, o.sensorWith(t, ctx, snclient.Options{ClientID: "s2", KeepAlive: time.Minute, PersistentSession: true}))
	// s0 receives s1's messages; s2 subscribes to q/s2 and sleeps.
	if _, err := sensors[0].Subscribe(ctx, snclient.Named("m/s1"), sn.QoS1); err != nil {
		t.Fatal(err)
	}
	if _, err := sensors[2].Subscribe(ctx, snclient.Named("q/s2"), sn.QoS1); err != nil {
		t.Fatal(err)
	}
	for i, s := range sensors {
		for j := range perSensor {
			if err := s.Publish(ctx, snclient.Named(fmt.Sprintf("m/s%d", i)), sn.QoS1, false, []byte{byte(j)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 3 * perSensor {
		app.Next(t, ctx)
	}
	if err := sensors[2].Sleep(ctx, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	o.WaitSession(t, ctx, "s2", mqttcore.StateAsleep)
	for i := range perSensor {
		app.Publish(t, ctx, "q/s2", 1, false, fmt.Sprint(i))
	}
	sntest.WaitFor(t, ctx, "5 messages queued for the sleeper", func() bool {
		s, _ := o.Broker.Session("s2")
		return s.Queued == perSensor
	})
	sntest.WaitFor(t, ctx, "s1's messages sent to s0", func() bool { return o.Gateway.Stats().PublishesOut[2] == perSensor })
	// A malformed datagram: length 5, type PUBLISH, cut short.
	raw, err := net.Dial("udp4", o.link)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write([]byte{0x05, 0x0C, 0x00}); err != nil {
		t.Fatal(err)
	}
	sntest.WaitFor(t, ctx, "the malformed datagram", func() bool { return o.Gateway.Stats().Malformed == 1 })

	fams := scrape(t, o.url)
	gs, bs := o.Gateway.Stats(), o.Broker.Stats()
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gannet_mqttsn_sensors", []string{"state", "active"}, 2},
		{"gannet_mqttsn_sensors", []string{"state", "asleep"}, 1},
		{"gannet_mqttsn_sensors", []string{"state", "awake"}, 0},
		{"gannet_mqttsn_registrations", nil, 3 + 2}, // the publishers' and the subscriptions'
		{"gannet_mqttsn_unverified_sensors", nil, 0},
		{"gannet_mqttsn_messages_received_total", []string{"qos", "1"}, 3 * perSensor},
		{"gannet_mqttsn_messages_received_total", []string{"qos", "0"}, 0},
		{"gannet_mqttsn_messages_received_total", []string{"qos", "-1"}, 0},
		{"gannet_mqttsn_messages_sent_total", []string{"qos", "1"}, perSensor},
		{"gannet_mqttsn_messages_sent_total", []string{"qos", "2"}, 0},
		{"gannet_mqttsn_held_repeats_total", nil, 0},
		{"gannet_broker_queue_fullest_ratio", nil, 0.5},
		{"gannet_broker_queued_messages", nil, perSensor},
		{"gannet_broker_held_publishes", nil, 0},
		{"gannet_broker_limit_hits_total", []string{"limit", "hold_timeout"}, 0},
		{"gannet_broker_store_commit_errors_total", nil, 0},
		{"gannet_store_commit_failures_total", nil, 0},
		{"gannet_mqttsn_malformed_datagrams_total", nil, 1},
		{"gannet_mqttsn_datagrams_received_total", nil, float64(gs.Received)},
		{"gannet_mqttsn_datagrams_sent_total", nil, float64(gs.Sent)},
		{"gannet_radio_datagrams_received_total", []string{"listener", o.link, "network", "udp"}, float64(gs.Received)},
		{"gannet_mqttsn_sensors_lost_total", nil, 0},
		{"gannet_broker_messages_received_total", nil, 4 * perSensor},
		{"gannet_broker_messages_received_total", nil, float64(bs.MessagesReceived)},
		{"gannet_broker_messages_sent_total", nil, 4 * perSensor},     // to the app and to s0
		{"gannet_broker_sessions", []string{"state", "connected"}, 3}, // two sensors and the app
		{"gannet_broker_sessions", []string{"state", "offline"}, 1},
		{"gannet_mqtt_connections", nil, 1},
		{"gannet_mqtt_connects_total", nil, 1},
		{"gannet_mqttsn_limit_hits_total", []string{"limit", "max_message_size_received"}, 0},
		{"gannet_build_info", []string{"version", "test"}, 1},
	} {
		if got := value(t, fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v; want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// Every acknowledged QoS 1 publish waited for a commit: the histogram
	// counts the core's commits, and the store wrote them.
	h := fams["gannet_broker_store_commit_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != bs.Commits || bs.Commits < perSensor || h.GetSampleSum() != bs.CommitTime.Seconds() {
		t.Errorf("commit histogram count %d, sum %v; want the core's %d commits (at least %d), %v", h.GetSampleCount(), h.GetSampleSum(), bs.Commits, perSensor, bs.CommitTime.Seconds())
	}
	// The parser adds the +Inf bucket.
	if b := h.GetBucket(); len(b) != len(mqttcore.CommitBuckets())+1 || b[len(b)-1].GetCumulativeCount() != h.GetSampleCount() || b[len(b)-2].GetUpperBound() != 5 {
		t.Errorf("commit histogram buckets %v; want %d, cumulative, up to 5 s and +Inf", b, len(mqttcore.CommitBuckets())+1)
	}
	if got := value(t, fams, "gannet_store_commits_total"); got < float64(bs.Commits) {
		t.Errorf("gannet_store_commits_total = %v; want at least the core's %d commits", got, bs.Commits)
	}
	if got := value(t, fams, "gannet_store_used_bytes"); got <= 0 {
		t.Errorf("gannet_store_used_bytes = %v; want > 0", got)
	}
	if syncs, groups := value(t, fams, "gannet_store_log_syncs_total"), value(t, fams, "gannet_store_commit_groups_total"); syncs == 0 || groups == 0 || value(t, fams, "gannet_store_log_bytes_total") == 0 {
		t.Errorf("gannet_store_log_syncs_total %v, gannet_store_commit_groups_total %v, log bytes: want > 0 after durable publishes", syncs, groups)
	}
	// Received counts every datagram: 3 CONNECT, 3 REGISTER, 15 PUBLISH,
	// 1 DISCONNECT, the malformed one, and the keep-alive pings there were.
	if gs.Received < 3+3+3*perSensor+1+1 {
		t.Errorf("gateway Received = %d; want at least %d", gs.Received, 3+3+3*perSensor+2)
	}
	// Conventions: every family is gannet_, go_ or process_, has help, and
	// a counter ends in _total.
	for name, f := range fams {
		if !strings.HasPrefix(name, "gannet_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s: want a gannet_, go_ or process_ prefix", name)
		}
		if f.GetHelp() == "" {
			t.Errorf("metric %s has no help", name)
		}
		if f.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s does not end in _total", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
	// The sleeper wakes and takes its messages: its queue empties.
	if err := sensors[2].CheckMessages(ctx); err != nil {
		t.Fatal(err)
	}
	sntest.WaitFor(t, ctx, "the sleeper's queue drained", func() bool {
		s, _ := o.Broker.Session("s2")
		return s.Queued == 0 && s.Inflight == 0
	})
	fams = scrape(t, o.url)
	if got := value(t, fams, "gannet_broker_queue_fullest_ratio"); got != 0 {
		t.Errorf("gannet_broker_queue_fullest_ratio after the sleeper drained its queue = %v; want 0", got)
	}
	if got := value(t, fams, "gannet_mqttsn_messages_sent_total", "qos", "1"); got != 2*perSensor {
		t.Errorf("gannet_mqttsn_messages_sent_total{qos=1} after the sleeper woke = %v; want %d", got, 2*perSensor)
	}
}

func TestHealthAndReady(t *testing.T) {
	o := startOps(t, sntest.Options{})
	if code, body, _ := get(t, o.url+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q; want 200 ok", code, body)
	}
	if code, _, _ := get(t, o.url+"/readyz"); code != 200 {
		t.Errorf("GET /readyz = %d; want 200", code)
	}
	o.in.ready.Store(false)
	if code, _, _ := get(t, o.url+"/readyz"); code != 503 {
		t.Errorf("GET /readyz while not ready = %d; want 503", code)
	}
	// A gateway whose loops no longer answer is not healthy.
	o.Gateway.Close()
	if code, _, _ := get(t, o.url+"/healthz"); code != 503 {
		t.Errorf("GET /healthz with the gateway closed = %d; want 503", code)
	}
}

// TestMetricsV2 scrapes after an MQTT-SN 2.0 sensor connected and
// published: the 2.0 counters are exported, and its publish is counted
// with 1.2's by QoS. Transparent mode is off: no gannet_transparent_
// family.
func TestMetricsV2(t *testing.T) {
	o := startOps(t, sntest.Options{})
	ctx := sntest.Context(t)
	s := o.sensorWith(t, ctx, snclient.Options{ClientID: "v2", KeepAlive: time.Minute, Version: sn.Version20})
	if err := s.Publish(ctx, snclient.Named("m/v2"), sn.QoS1, false, []byte("x")); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, o.url)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gannet_mqttsn_v2_connects_total", nil, 1},
		{"gannet_mqttsn_v2_auth_refused_total", nil, 0},
		{"gannet_mqttsn_v2_protocol_errors_total", nil, 0},
		{"gannet_mqttsn_messages_received_total", []string{"qos", "1"}, 1},
		{"gannet_mqttsn_sensors", []string{"state", "active"}, 1},
	} {
		if got := value(t, fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v; want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if _, ok := fams["gannet_transparent_connections"]; ok {
		t.Error("gannet_transparent_connections exported with transparent mode off")
	}
}
