package mqttcore

import "strconv"

// sysOrigin is the Origin of $SYS messages.
const sysOrigin = "$SYS"

// publishSys publishes the $SYS/broker/... topics, retained, like
// Mosquitto's. It runs on the timer goroutine with no lock held.
func (b *Broker) publishSys() {
	st := b.Stats()
	num := func(n int64) []byte { return strconv.AppendInt(nil, n, 10) }
	topics := [...]struct {
		topic string
		value []byte
	}{
		{"$SYS/broker/version", []byte(b.version)},
		{"$SYS/broker/uptime", append(num(int64(st.Uptime.Seconds())), " seconds"...)},
		{"$SYS/broker/clients/connected", num(st.Connected)},
		{"$SYS/broker/clients/disconnected", num(st.Sessions - st.Connected)},
		{"$SYS/broker/clients/total", num(st.Sessions)},
		{"$SYS/broker/messages/received", num(int64(st.MessagesReceived))},
		{"$SYS/broker/messages/sent", num(int64(st.MessagesSent))},
		{"$SYS/broker/publish/messages/dropped", num(int64(st.Dropped))},
		{"$SYS/broker/retained messages/count", num(st.Retained)},
		{"$SYS/broker/store/messages/count", num(st.Queued)},
	}
	for _, t := range topics {
		m := &Message{Topic: t.topic, Payload: t.value, Retain: true, Origin: sysOrigin}
		// Only the retained limit can refuse these; it is counted.
		_, _ = b.retainAndRoute(m, nil, false)
	}
}
