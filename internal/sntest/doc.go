// Package sntest runs Gannet end to end for tests: a broker core
// (mqttcore) with its MQTT TCP listener, and an MQTT-SN gateway serving a
// real UDP socket on 127.0.0.1, together with the clients that talk to them:
// MQTT-SN sensors (snclient), MQTT 5 clients (paho.golang) and the
// mosquitto_pub/mosquitto_sub programs.
//
// Only _test.go files import it. Everything it starts is stopped at the
// test's cleanup (or earlier by [Env.Close]); every wait it offers is
// bounded by a context, never by a fixed sleep.
//
// # Goroutines
//
// The gateway's Serve runs on a goroutine started by [Start]; it exits when
// [Env.Close] closes the gateway. Each [Sensor] has the snclient reader
// goroutine, each [MQTT] client the paho goroutines; both end when the
// client is closed at cleanup. Outside programs are started with
// exec.CommandContext and killed at cleanup.
//
// # Imports
//
// gateway, mqttcore, mqttcore/listener, snclient, snpacket and paho. No
// production package may import sntest.
package sntest
