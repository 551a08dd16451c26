// Package mqttsub is a net.Conn for the paho MQTT clients that measure
// benchmarks: `gannet bench`'s fleet and the bridge's drain benchmark. It
// buffers reads and, for a subscriber, takes its QoS 1 PUBLISHes out of the
// stream and coalesces their PUBACKs, so that the client measuring a broker
// costs a fraction of the CPU paho alone would take on the same machine.
//
// It is a measuring instrument, not a client library: it knows MQTT 5's
// PUBLISH and PUBACK, nothing of MQTT-SN, and it is not used by `gannet
// serve`.
package mqttsub
