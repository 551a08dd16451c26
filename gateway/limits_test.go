package gateway_test

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// lockedBuffer collects log output from the gateway's loops.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMaxClients(t *testing.T) {
	var logs lockedBuffer
	opts := gateway.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	runWith(t, gateway.Config{MaxClients: 1}, opts, func(t *testing.T, h *harness) {
		a := h.sensor("10.0.0.2:5000")
		a.connect("dev1", true, 60)
		b := h.sensor("10.0.0.3:5000")
		b.send(&sn.Connect{CleanSession: true, Duration: 60, ClientID: []byte("dev2")})
		b.expect(&sn.Connack{ReturnCode: sn.RejectedCongestion})
		b.send(&sn.Connect{CleanSession: true, Duration: 60, ClientID: []byte("dev2")})
		b.expect(&sn.Connack{ReturnCode: sn.RejectedCongestion})
		st := h.g.Stats()
		if st.LimitHits[gateway.LimitClients] != 2 || st.Clients != 1 || st.Rejected != 2 {
			t.Errorf("LimitHits[max_clients], Clients, Rejected = %d, %d, %d; want 2, 1, 2",
				st.LimitHits[gateway.LimitClients], st.Clients, st.Rejected)
		}
		// One Warn line for the two hits within a second.
		if n := strings.Count(logs.String(), "limit=max_clients"); n != 1 {
			t.Errorf("%d log lines about max_clients; want 1:\n%s", n, logs.String())
		}
		// The room a client frees is there for the next one.
		a.send(&sn.Disconnect{})
		a.expect(&sn.Disconnect{})
		synctest.Wait() // the loop forgets dev1 after sending its DISCONNECT
		b.connect("dev2", true, 60)
	})
}

func TestMaxTopicsPerClient(t *testing.T) {
	run(t, gateway.Config{MaxTopicsPerClient: 1}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 60)
		s.register("a", 1)
		s.send(&sn.Register{MsgID: 2, TopicName: []byte("b")})
		s.expect(&sn.Regack{MsgID: 2, ReturnCode: sn.RejectedCongestion})
		s.send(&sn.Subscribe{MsgID: 3, TopicName: []byte("c")})
		s.expect(&sn.Suback{MsgID: 3, ReturnCode: sn.RejectedCongestion})
		if st := h.g.Stats(); st.LimitHits[gateway.LimitTopicsPerClient] != 2 {
			t.Errorf("LimitHits[max_topics_per_client] = %d; want 2", st.LimitHits[gateway.LimitTopicsPerClient])
		}
		// The registered name keeps working; a wildcard needs no id until a
		// message arrives.
		s.register("a", 4)
		s.subscribe("d/+", sn.QoS0, 5)
	})
}

func TestLimitString(t *testing.T) {
	for l, want := range map[gateway.Limit]string{
		gateway.LimitClients: "max_clients", gateway.LimitLoopQueue: "loop_queue", gateway.LimitBroker: "broker", 200: "unknown",
	} {
		if got := l.String(); got != want {
			t.Errorf("Limit(%d).String() = %q; want %q", l, got, want)
		}
	}
}

func TestSysTopics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttcore.New(mqttcore.Config{SysInterval: time.Second}, mqttcore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		g, err := gateway.New(gateway.Config{Loops: 1}, b, gateway.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		got := map[string]string{}
		var mu sync.Mutex
		if _, err := b.Inline("watch").Subscribe("$SYS/broker/mqttsn/#", mqttcore.SubOptions{}, func(m *mqttcore.Message) {
			mu.Lock()
			got[m.Topic] = string(m.Payload)
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // fake time: one publication after subscribing
		mu.Lock()
		defer mu.Unlock()
		for topic, want := range map[string]string{
			"$SYS/broker/mqttsn/clients/total":                    "0",
			"$SYS/broker/mqttsn/clients/unverified":               "0",
			"$SYS/broker/mqttsn/limits/max_unverified":            "0",
			"$SYS/broker/mqttsn/datagrams/malformed":              "0",
			"$SYS/broker/mqttsn/limits/max_clients":               "0",
			"$SYS/broker/mqttsn/limits/max_message_size/received": "0",
			"$SYS/broker/mqttsn/limits/max_pending_auth":          "0",
			"$SYS/broker/mqttsn/v2/connects":                      "0",
		} {
			if got[topic] != want {
				t.Errorf("%s = %q; want %q (got %d topics)", topic, got[topic], want, len(got))
			}
		}
	})
}

// budgetLimiter allows each source a fixed number of events.
type budgetLimiter struct {
	mu   sync.Mutex
	left map[netip.Addr]int
	each int
}

func (b *budgetLimiter) Allow(src netip.Addr, _ time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left == nil {
		b.left = map[netip.Addr]int{}
	}
	n, ok := b.left[src]
	if !ok {
		n = b.each
	}
	if n == 0 {
		return false
	}
	b.left[src] = n - 1
	return true
}

func TestSourceLimiters(t *testing.T) {
	opts := gateway.Options{
		UnknownSourceLimiter: &budgetLimiter{each: 2},
		QoSMinus1Limiter:     &budgetLimiter{each: 1},
	}
	cfg := gateway.Config{QoSMinus1: gateway.QoSMinus1Config{Enabled: true}}
	runWith(t, cfg, opts, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.send(&sn.SearchGW{})
		s.expect(&sn.GWInfo{})
		s.send(&sn.PingReq{}) // refused with DISCONNECT: work for an unknown source
		s.expect(&sn.Disconnect{})
		s.send(&sn.SearchGW{}) // over budget: dropped unanswered
		s.send(&sn.Connect{CleanSession: true, Duration: 60, ClientID: []byte("dev1")})
		s.expectNone(time.Minute)
		// Another source has its own budget.
		other := h.sensor("10.0.0.3:5000")
		other.connect("dev2", true, 60)

		a := h.app("#")
		for range 3 {
			s.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDShort, TopicID: 0x6162, Data: []byte("x")})
		}
		a.expect("ab", "x")
		a.expectNone()
		st := h.g.Stats()
		if st.LimitHits[gateway.LimitUnknownSourceRate] != 2 || st.LimitHits[gateway.LimitQoSMinus1Rate] != 2 {
			t.Errorf("LimitHits unknown_sources, qos_minus_one = %d, %d; want 2, 2",
				st.LimitHits[gateway.LimitUnknownSourceRate], st.LimitHits[gateway.LimitQoSMinus1Rate])
		}
	})
}
