// Package benchfleet is the engine of `gannet bench`: a simulated fleet of
// MQTT-SN sensors (package snclient, one UDP socket and one client id per
// sensor) driven against any MQTT-SN gateway, with its own MQTT client
// (github.com/eclipse/paho.golang) on a broker address so that what it
// measures is end to end: sensor -> gateway -> broker -> subscriber (or the
// reverse for fanout and sleepers).
//
// # Pieces
//
//   - payload.go: the 24-octet stamp every benchmark payload starts with
//     (source index, sequence number, send time), so the receiving side
//     computes latency, loss and duplicates without any shared state.
//   - histogram.go: a lock-free log-linear latency histogram (at most 6.25 %
//     relative error) with percentiles.
//   - tracker.go: delivery bookkeeping: one bitmap of seen sequence numbers
//     per source, for duplicates and losses.
//   - timeline.go: sent and delivered counts per time slot, for the
//     throughput plot.
//   - report.go and svg.go: the final report as text, JSON and an SVG plot.
//   - scenario_*.go: publish, fanout, connect-storm, sleepers and idle;
//     mqtt-publish, the ceiling of publish: paho.golang clients publishing
//     straight to the broker, no gateway.
//   - echo.go: the raw UDP echo client and the trivial echo server that give
//     the datagram rate the machine can carry (the physical limit).
//   - mqtt.go and mqttconn.go: the paho.golang client on the broker side.
//     Its connection buffers reads; a subscriber's QoS 1 PUBLISHes are
//     taken from the stream before paho (payload to the tracker straight
//     from the read buffer) and their PUBACKs coalesced into as few writes
//     as a flusher goroutine can manage, so that the subscriber costs the
//     bench, and the broker, little per message.
//   - proc.go and rlimit.go: the gateway's RSS and CPU time from /proc, and
//     raising RLIMIT_NOFILE for large fleets.
//
// # Goroutines
//
// Run starts, per scenario, one goroutine per simulated sensor that sends
// (publish) or connects (bounded by Config.Concurrency), plus the reader
// goroutine each snclient.Client owns, plus the paho client's goroutines
// and, for a subscriber, its connection's flusher goroutine (mqttconn.go).
// All of them have ended when Run returns: sensors are closed, the MQTT
// client is disconnected and every worker is waited for.
//
// # Hot paths
//
// Stamping a payload, recording a latency and marking a sequence number seen
// allocate nothing (a bitmap grows only every 64 messages of a source);
// publishing at QoS 0 and -1 through snclient allocates nothing either.
//
// # Imports
//
// snclient, snpacket, paho.golang and the standard library. It must not
// import gateway or mqttcore: it measures any gateway over the network, and
// the in-process end-to-end test lives in cmd/gannet.
package benchfleet
