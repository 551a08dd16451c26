package sntest

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/gannet-mqtt/gannet/snclient"
)

// Message is an application message a Sensor received, its payload copied.
type Message struct {
	snclient.Message
}

// Sensor is an MQTT-SN client of the gateway (package snclient) whose
// received messages and lost connections arrive on channels.
type Sensor struct {
	*snclient.Client
	// Msgs receives every application message, in arrival order.
	Msgs chan Message
	// Lost receives the error of every connection the gateway ended.
	Lost chan error
	// Overflow counts messages dropped because Msgs was full; a test that
	// expects more than its capacity must read as it goes.
	Overflow atomic.Int64
	// LocalAddr is the sensor's "127.0.0.1:port".
	LocalAddr string
}

// SensorBuffer is the capacity of a Sensor's Msgs channel.
const SensorBuffer = 1024

// Sensor starts an MQTT-SN client of the gateway on a fresh UDP socket
// with opts (Handler and ConnectionLost are set by Sensor; a zero
// RetryInterval means snclient's default). It does not connect. The client
// is closed at cleanup.
func (e *Env) Sensor(t testing.TB, ctx context.Context, opts snclient.Options) *Sensor {
	t.Helper()
	return e.SensorAt(t, ctx, "127.0.0.1:0", opts)
}

// SensorAt is Sensor on a UDP socket bound to local ("127.0.0.1:port"), so
// that a test can play a sensor that restarts and speaks again from the
// address the gateway already knows.
func (e *Env) SensorAt(t testing.TB, ctx context.Context, local string, opts snclient.Options) *Sensor {
	t.Helper()
	s := &Sensor{Msgs: make(chan Message, SensorBuffer), Lost: make(chan error, 16)}
	opts.Handler = func(m snclient.Message) {
		m.Payload = append([]byte(nil), m.Payload...)
		select {
		case s.Msgs <- Message{m}:
		default:
			s.Overflow.Add(1)
		}
	}
	opts.ConnectionLost = func(err error) {
		select {
		case s.Lost <- err:
		default:
		}
	}
	la, err := net.ResolveUDPAddr("udp4", local)
	if err != nil {
		t.Fatalf("resolve %q: %v", local, err)
	}
	ga, err := net.ResolveUDPAddr("udp4", e.UDPAddr)
	if err != nil {
		t.Fatalf("resolve %q: %v", e.UDPAddr, err)
	}
	pc, err := net.ListenUDP("udp4", la)
	if err != nil {
		t.Fatalf("listen UDP on %s: %v", local, err)
	}
	c, err := snclient.New(pc, ga, opts)
	if err != nil {
		pc.Close()
		t.Fatalf("snclient.New(%s -> %s) = %v", local, e.UDPAddr, err)
	}
	s.Client, s.LocalAddr = c, pc.LocalAddr().String()
	t.Cleanup(func() { _ = c.Close() })
	return s
}

// Connected is Sensor followed by Connect; it fails the test if the
// gateway refuses.
func (e *Env) Connected(t testing.TB, ctx context.Context, opts snclient.Options) *Sensor {
	t.Helper()
	s := e.Sensor(t, ctx, opts)
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("sensor %q Connect = %v", s.ClientID(), err)
	}
	return s
}

// Next returns the sensor's next message, failing the test when ctx ends
// first.
func (s *Sensor) Next(t testing.TB, ctx context.Context) Message {
	t.Helper()
	select {
	case m := <-s.Msgs:
		return m
	case <-ctx.Done():
		t.Fatalf("sensor %q: waiting for a message: %v", s.ClientID(), ctx.Err())
		return Message{}
	}
}

// NoMessage fails the test if a message is waiting. Call it after a fence
// (a later message the sensor did receive) so that the absence means
// something.
func (s *Sensor) NoMessage(t testing.TB) {
	t.Helper()
	select {
	case m := <-s.Msgs:
		t.Fatalf("sensor %q: unexpected message %q %q", s.ClientID(), m.Topic, m.Payload)
	default:
	}
}
