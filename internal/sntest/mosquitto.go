package sntest

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"

	"github.com/gannet-mqtt/gannet/internal/outside"
)

// MosquittoPub publishes one message with mosquitto_pub (Debian package
// mosquitto-clients) to the core's MQTT listener and waits for the program
// to exit; ctx bounds it (the process is killed when ctx ends).
func (e *Env) MosquittoPub(t testing.TB, ctx context.Context, topic string, qos int, retain bool, payload string) {
	t.Helper()
	bin := outside.Program(t, "mosquitto_pub", "mosquitto-clients")
	host, port, err := net.SplitHostPort(e.MQTTAddr)
	if err != nil {
		t.Fatalf("SplitHostPort(%q) = %v", e.MQTTAddr, err)
	}
	args := []string{"-h", host, "-p", port, "-V", "mqttv5", "-t", topic, "-q", strconv.Itoa(qos), "-m", payload}
	if retain {
		args = append(args, "-r")
	}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %q: %v\n%s", args, err, out)
	}
}

// MosquittoSub is a running mosquitto_sub (Debian package
// mosquitto-clients) subscribed through the core's MQTT listener.
type MosquittoSub struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// MosquittoSub starts mosquitto_sub with client id clientID on filter at
// qos, printing each message as "topic qos retain payload" and exiting
// after count messages. It returns once the core shows the subscription.
// The process is killed at cleanup or when ctx ends.
func (e *Env) MosquittoSub(t testing.TB, ctx context.Context, clientID, filter string, qos, count int) *MosquittoSub {
	t.Helper()
	bin := outside.Program(t, "mosquitto_sub", "mosquitto-clients")
	host, port, err := net.SplitHostPort(e.MQTTAddr)
	if err != nil {
		t.Fatalf("SplitHostPort(%q) = %v", e.MQTTAddr, err)
	}
	args := []string{"-h", host, "-p", port, "-V", "mqttv5", "-i", clientID, "-t", filter,
		"-q", strconv.Itoa(qos), "-C", strconv.Itoa(count), "-F", "%t %q %r %p"}
	s := &MosquittoSub{cmd: exec.CommandContext(ctx, bin, args...), out: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start mosquitto_sub: %v", err)
	}
	go func() { s.done <- s.cmd.Wait() }() // exits when the process does
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
	WaitFor(t, ctx, "mosquitto_sub "+clientID+" to subscribe", func() bool {
		info, ok := e.Broker.Session(clientID)
		return ok && info.Subscriptions == 1
	})
	return s
}

// Wait waits for mosquitto_sub to exit after its count messages and returns
// its output lines.
func (s *MosquittoSub) Wait(t testing.TB, ctx context.Context) []string {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("mosquitto_sub: %v\n%s", err, s.out.String())
		}
	case <-ctx.Done():
		t.Fatalf("waiting for mosquitto_sub: %v\noutput so far:\n%s", ctx.Err(), s.out.String())
	}
	return s.out.Lines()
}
