package gateway

import (
	"strconv"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// sysPrefix is where the gateway publishes its counters, beside the core's
// $SYS/broker/... topics, so that `mosquitto_sub -t '$SYS/#'` shows both.
const sysPrefix = "$SYS/broker/mqttsn/"

// sysLoop publishes the gateway's Stats under sysPrefix, retained, every
// broker sys_interval, until the gateway closes. It runs only when the
// broker's $SYS is on.
func (g *Gateway) sysLoop(interval time.Duration) {
	pub := g.broker.Inline("$SYS/mqttsn")
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, kv := range g.sysTopics() {
			// Only the retained limit can refuse these, and the core counts it.
			_ = pub.Publish(&mqttcore.Message{Topic: kv.topic, Payload: kv.value, Retain: true})
		}
		select {
		case <-t.C:
		case <-g.done:
			return
		}
	}
}

type sysTopic struct {
	topic string
	value []byte
}

// sysTopics returns the $SYS topics and their values now.
func (g *Gateway) sysTopics() []sysTopic {
	st := g.Stats()
	num := func(n uint64) []byte { return strconv.AppendUint(nil, n, 10) }
	out := []sysTopic{
		{sysPrefix + "clients/total", num(uint64(st.Clients))},
		{sysPrefix + "clients/asleep", num(uint64(st.Asleep))},
		{sysPrefix + "clients/unverified", num(uint64(st.Unverified))}, // probation.go
		{sysPrefix + "datagrams/received", num(st.Received)},
		{sysPrefix + "datagrams/sent", num(st.Sent)},
		{sysPrefix + "datagrams/malformed", num(st.Malformed)},
		{sysPrefix + "datagrams/unknown_client", num(st.UnknownClient)},
		{sysPrefix + "messages/unexpected", num(st.Unexpected)},
		{sysPrefix + "messages/invalid_topic_id", num(st.InvalidTopic)},
		{sysPrefix + "messages/rejected", num(st.Rejected)},
		{sysPrefix + "messages/not_authorized", num(st.Denied)},
		{sysPrefix + "messages/retransmitted", num(st.Retransmits)},
		{sysPrefix + "messages/qos_minus_1", num(st.QoSMinus1)},
		{sysPrefix + "clients/migrated", num(st.Migrated)},
		// MQTT-SN 2.0 (stats2.go).
		{sysPrefix + "v2/connects", num(st.V2.Connects)},
		{sysPrefix + "v2/auth_refused", num(st.V2.AuthRefused)},
		{sysPrefix + "v2/paho_deviations", num(st.V2.PahoDeviations)},
		{sysPrefix + "v2/protocol_errors", num(st.V2.ProtocolErrors)},
		{sysPrefix + "v2/unsupported", num(st.V2.Unsupported)},
		{sysPrefix + "v2/rebound", num(st.V2.Rebound)},
		{sysPrefix + "v2/wakeups", num(st.V2.Wakeups)},
		{sysPrefix + "v2/aliases_resumed", num(st.V2.AliasesResumed)},
	}
	// The gauges and counters /metrics exports too (cmd/gannet/metrics.go),
	// from the same Stats.
	out = append(out,
		sysTopic{sysPrefix + "clients/active", num(uint64(st.Active))},
		sysTopic{sysPrefix + "clients/awake", num(uint64(st.Awake))},
		sysTopic{sysPrefix + "clients/lost", num(st.Lost)},
		sysTopic{sysPrefix + "clients/forwarded", num(uint64(st.Forwarded))},
		sysTopic{sysPrefix + "forwarders", num(uint64(st.Forwarders))},
		sysTopic{sysPrefix + "registrations", num(uint64(st.Registrations))},
		sysTopic{sysPrefix + "messages/held_repeats", num(st.HeldRepeats)},
	)
	for i, q := range [...]string{"qos-1", "qos0", "qos1", "qos2"} {
		out = append(out, sysTopic{sysPrefix + "publish/received/" + q, num(st.PublishesIn[i])})
		if i > 0 {
			out = append(out, sysTopic{sysPrefix + "publish/sent/" + q, num(st.PublishesOut[i])})
		}
	}
	for l, n := range st.LimitHits {
		name := strings.ReplaceAll(strings.ReplaceAll(Limit(l).String(), " (", "/"), ")", "")
		out = append(out, sysTopic{sysPrefix + "limits/" + name, num(n)})
	}
	return out
}
