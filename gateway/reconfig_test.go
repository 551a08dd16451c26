package gateway_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestSetConfigLimits changes limits under a connected sensor: each change
// is enforced from the next datagram on, and the sensor keeps its session
// throughout (its registered topic id keeps working, it is never asked to
// CONNECT again).
func TestSetConfigLimits(t *testing.T) {
	run(t, gateway.Config{MaxMessageSize: 100}, func(t *testing.T, h *harness) {
		app := h.app("t/#")
		s := h.sensor("10.0.0.2:5000")
		s.connect("sensor-1", false, 600)
		id := s.register("t/a", 1)
		pub := func(msgID uint16, size int) *sn.Publish {
			return &sn.Publish{QoS: 1, MsgID: msgID, TopicIDType: sn.TopicIDNormal, TopicID: id, Data: bytes.Repeat([]byte("x"), size)}
		}
		accepted := func(msgID uint16, size int) {
			t.Helper()
			s.send(pub(msgID, size))
			s.expect(&sn.Puback{TopicID: id, MsgID: msgID, ReturnCode: sn.Accepted})
			app.expect("t/a", string(bytes.Repeat([]byte("x"), size)))
		}
		dropped := func(msgID uint16, size int) {
			t.Helper()
			before := h.g.Stats().LimitHits[gateway.LimitMessageSizeIn]
			s.send(pub(msgID, size))
			s.expectNone(time.Second)
			app.expectNone()
			if got := h.g.Stats().LimitHits[gateway.LimitMessageSizeIn]; got != before+1 {
				t.Errorf("LimitHits[max_message_size (received)] = %d; want %d", got, before+1)
			}
		}
		dropped(2, 200)
		accepted(3, 50)

		// Raised: the receive buffers, sized for 100 octets, must grow.
		cfg := h.g.Config()
		cfg.MaxMessageSize = 1500
		if kept, err := h.g.SetConfig(cfg); err != nil || len(kept) != 0 {
			t.Fatalf("SetConfig(max_message_size 1500) = %v, %v; want nothing kept, nil", kept, err)
		}
		// The read in progress when the limit was raised has a buffer of
		// the old size: one small datagram first.
		s.send(&sn.PingReq{})
		s.expect(&sn.PingResp{})
		accepted(4, 200)
		accepted(5, 1000)

		// Lowered, with a shorter client id limit.
		cfg.MaxMessageSize, cfg.MaxClientIDLen = 100, 8
		if kept, err := h.g.SetConfig(cfg); err != nil || len(kept) != 0 {
			t.Fatalf("SetConfig(max_message_size 100, max_client_id_len 8) = %v, %v; want nothing kept, nil", kept, err)
		}
		dropped(6, 200)
		accepted(7, 50)
		s.send(&sn.PingReq{})
		s.expect(&sn.PingResp{})
		other := h.sensor("10.0.0.3:5000")
		other.send(&sn.Connect{CleanSession: true, Duration: 60, ClientID: []byte("sensor-10")})
		other.expect(&sn.Connack{ReturnCode: sn.RejectedNotSupported})
		if got := h.g.Stats().Rejected; got == 0 {
			t.Errorf("Stats().Rejected = 0 after a CONNECT over max_client_id_len")
		}
		// The first sensor was never dropped: its topic id still works and
		// the gateway still counts it.
		accepted(8, 10)
		if got := h.g.Stats().Clients; got != 1 {
			t.Errorf("Stats().Clients = %d; want 1 (the sensor that was there all along)", got)
		}
	})
}

// TestSetConfigKeepsStartOnlyKeys checks that keys fixed at start keep
// their running values and are named, and that a refused config changes
// nothing.
func TestSetConfigKeepsStartOnlyKeys(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		before := h.g.Config()
		kept, err := h.g.SetConfig(gateway.Config{Loops: 7, LoopQueue: 10, MaxPendingAuth: 3, RetryInterval: time.Minute,
			QoSMinus1: gateway.QoSMinus1Config{ClientID: "other"},
			Advertise: gateway.AdvertiseConfig{Interval: time.Hour, Address: "10.0.0.255:1885"}})
		if err != nil {
			t.Fatalf("SetConfig = %v", err)
		}
		want := []string{"loops", "loop_queue", "max_pending_auth", "qos_minus_one.client_id", "advertise.interval", "advertise.address"}
		if !slices.Equal(kept, want) {
			t.Errorf("SetConfig kept %v; want %v", kept, want)
		}
		got := h.g.Config()
		if got.Loops != before.Loops || got.LoopQueue != before.LoopQueue || got.QoSMinus1.ClientID != before.QoSMinus1.ClientID ||
			got.Advertise != before.Advertise || got.RetryInterval != time.Minute {
			t.Errorf("Config() = %+v; want the start-only keys as before (%+v) and retry_interval 1m", got, before)
		}

		before = h.g.Config()
		for _, bad := range []gateway.Config{{MaxMessageSize: 3}, {MaxClients: 2_000_000}} {
			if _, err := h.g.SetConfig(bad); !errors.Is(err, gateway.ErrInvalidConfig) {
				t.Errorf("SetConfig(%+v) = %v; want ErrInvalidConfig", bad, err)
			}
		}
		if after := h.g.Config(); !reflect.DeepEqual(after, before) {
			t.Errorf("Config() after refused SetConfigs = %+v; want %+v", after, before)
		}
	})
}

// TestConfigChanges checks that every key of Config is compared.
func TestConfigChanges(t *testing.T) {
	changed := []gateway.Config{
		{GatewayID: 9}, {Loops: 9}, {MaxClients: 9}, {MaxUnverified: 9}, {LoopQueue: 9}, {MaxPendingAuth: 9},
		{MaxMessageSize: 99}, {MaxClientIDLen: 9}, {MaxTopicsPerClient: 9}, {RetryInterval: time.Hour}, {MaxRetries: 9},
		{SessionExpiry: time.Hour}, {AddressMigration: []string{"a"}}, {PahoForwarders: []string{"10.0.0.0/8"}},
		{Predefined: []gateway.PredefinedTopic{{ID: 1, Topic: "a"}}},
		{QoSMinus1: gateway.QoSMinus1Config{Enabled: true}}, {QoSMinus1: gateway.QoSMinus1Config{AllowFrom: []string{"10.0.0.0/8"}}},
		{QoSMinus1: gateway.QoSMinus1Config{ClientID: "x"}},
		{Advertise: gateway.AdvertiseConfig{Interval: time.Hour}}, {Advertise: gateway.AdvertiseConfig{Address: "10.0.0.1:1"}},
	}
	seen := map[string]bool{}
	for _, c := range changed {
		got := gateway.ConfigChanges(gateway.Config{}, c)
		if len(got) != 1 || seen[got[0]] {
			t.Errorf("ConfigChanges(zero, %+v) = %v; want one key not seen before", c, got)
			continue
		}
		seen[got[0]] = true
	}
	// Every toml key of Config (and of its tables) must have been named.
	var keys func(reflect.Type, string) []string
	keys = func(typ reflect.Type, prefix string) []string {
		var out []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := prefix + f.Tag.Get("toml")
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				out = append(out, keys(f.Type, name+".")...)
				continue
			}
			out = append(out, name)
		}
		return out
	}
	for _, k := range keys(reflect.TypeOf(gateway.Config{}), "") {
		if !seen[k] {
			t.Errorf("ConfigChanges never names %q", k)
		}
	}
	if got := gateway.ConfigChanges(gateway.Config{}, gateway.Config{MaxClients: gateway.DefaultMaxClients}); len(got) != 0 {
		t.Errorf("ConfigChanges(zero, the default spelled out) = %v; want none", got)
	}
}

// TestSetConfigLoweredSizeAbandonsInFlight: a PUBLISH in flight to a
// sensor when a reload lowers max_message_size below its size is
// abandoned at its next retry (as one too large is before its first send),
// and the sensor gets the next message: it is not retried until it is
// given up as lost.
func TestSetConfigLoweredSizeAbandonsInFlight(t *testing.T) {
	cfg := gateway.Config{MaxMessageSize: 1000, RetryInterval: 5 * time.Second, MaxRetries: 2}
	run(t, cfg, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s := h.sensor("10.0.0.2:5000")
		s.connectWithWill("dev1", false, 600)
		ack := s.subscribe("cmd/dev1", sn.QoS1, 1)
		big := string(bytes.Repeat([]byte("x"), 500))
		h.publish("cmd/dev1", big, mqttcore.AtLeastOnce, false)
		h.publish("cmd/dev1", "small", mqttcore.AtLeastOnce, false)
		if p := s.recv().(*sn.Publish); string(p.Data) != big {
			t.Fatalf("first PUBLISH carries %d octets; want the 500 of the big one", len(p.Data))
		}
		next := h.g.Config()
		next.MaxMessageSize = 100
		if _, err := h.g.SetConfig(next); err != nil {
			t.Fatalf("SetConfig(max_message_size 100) = %v", err)
		}
		before := h.g.Stats().LimitHits[gateway.LimitMessageSizeOut]
		// No PUBACK: at the retry the big one is abandoned, the small one sent.
		p := s.recv().(*sn.Publish)
		if string(p.Data) != "small" || p.TopicID != ack.TopicID {
			t.Fatalf("after the retry interval: PUBLISH %+v; want the small message", p)
		}
		s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: sn.Accepted})
		if got := h.g.Stats().LimitHits[gateway.LimitMessageSizeOut]; got != before+1 {
			t.Errorf("LimitHits[max_message_size (sent)] = %d; want %d", got, before+1)
		}
		time.Sleep(time.Minute) // fake time: well past max_retries x retry_interval
		will.expectNone()
	})
}

// The same for a 2.0 client: its PUBLISH in flight, too large after the
// reload, is abandoned at its retry and the next one sent; the client is
// not given up as lost.
func TestSetConfigLoweredSizeAbandonsInFlightV2(t *testing.T) {
	cfg := gateway.Config{MaxMessageSize: 1000, RetryInterval: 5 * time.Second, MaxRetries: 2}
	run(t, cfg, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect2(&sn.ConnectV2{ClientID: []byte("dev1"), KeepAlive: 600})
		s.subscribe2(&sn.SubscribeV2{QoS: sn.QoS1, TopicType: sn.TopicTypeName, PacketID: 2, TopicFilter: []byte("cmd/dev1")})
		big := string(bytes.Repeat([]byte("x"), 500))
		h.publish("cmd/dev1", big, mqttcore.AtLeastOnce, false)
		h.publish("cmd/dev1", "small", mqttcore.AtLeastOnce, false)
		if p := s.recv2().(*sn.PublishV2); string(p.Data) != big {
			t.Fatalf("first PUBLISH carries %d octets; want the 500 of the big one", len(p.Data))
		}
		next := h.g.Config()
		next.MaxMessageSize = 100
		if _, err := h.g.SetConfig(next); err != nil {
			t.Fatalf("SetConfig(max_message_size 100) = %v", err)
		}
		before := h.g.Stats().LimitHits[gateway.LimitMessageSizeOut]
		p, ok := s.recv2().(*sn.PublishV2)
		if !ok || string(p.Data) != "small" {
			t.Fatalf("after the retry interval: %#v; want the small message", p)
		}
		s.send2(&sn.PubackV2{PacketID: p.PacketID})
		if got := h.g.Stats().LimitHits[gateway.LimitMessageSizeOut]; got != before+1 {
			t.Errorf("LimitHits[max_message_size (sent)] = %d; want %d", got, before+1)
		}
		time.Sleep(time.Minute) // fake time: well past max_retries x retry_interval
		if m, err := s.tryRecv2(0); err == nil {
			t.Fatalf("after the PUBACK: %#v; want nothing (the big one is not resent)", m)
		}
		if got := h.g.Stats().Lost; got != 0 {
			t.Errorf("Stats().Lost = %d; want 0 (the client stays)", got)
		}
	})
}
