package listener_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// readUntilClosed reads from nc until the server closes it, failing the
// test if that takes longer than limit. A reset counts as closed: the
// server closing with our bytes unread resets the connection.
func readUntilClosed(t *testing.T, nc net.Conn, limit time.Duration) []byte {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(limit))
	got, err := io.ReadAll(nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("server did not close the connection within %v: %v (read %x)", limit, err, got)
	}
	return got
}

func TestMaxConnections(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{MaxConnections: 2}, mqttcore.Config{})
	a := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "a", CleanStart: true})
	mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "b", CleanStart: true})

	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write(connect5)
	if got := readUntilClosed(t, nc, 5*time.Second); len(got) != 0 {
		t.Errorf("third connection got %x; want to be closed without a word", got)
	}
	if got := ts.srv.Stats().RefusedMaxConnections; got != 1 {
		t.Errorf("RefusedMaxConnections = %d; want 1", got)
	}
	// A freed slot can be used again.
	if err := a.Disconnect(&paho.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "a's connection to be released", func() bool { return ts.srv.Stats().ConnectionsCurrent == 1 })
	c := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "c", CleanStart: true})
	c.subscribe(t, ctx, 0, 0, "x")
}

func TestConnectTimeout(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{ConnectTimeout: 100 * time.Millisecond}, mqttcore.Config{})
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write(connect5[:5]) // a CONNECT that never completes
	if got := readUntilClosed(t, nc, 5*time.Second); len(got) != 0 {
		t.Errorf("silent client got %x; want to be closed without a word", got)
	}
	if got := ts.srv.Stats().ConnectTimeouts; got != 1 {
		t.Errorf("ConnectTimeouts = %d; want 1", got)
	}
}

// TestKeepAliveTimeout: a client silent for 1.5 times its keep alive is
// disconnected (MQTT 5: DISCONNECT 0x8D) and its will is published.
func TestKeepAliveTimeout(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	watcher := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "watcher", CleanStart: true})
	watcher.subscribe(t, ctx, 0, 0, "wills/#")

	// MQTT 5 CONNECT: keep alive 1 s, will "wills/quiet" = "timeout".
	connect := []byte{0x10, 37, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x06, 0, 1, 0, 0, 5, 'q', 'u', 'i', 'e', 't',
		0, 0, 11, 'w', 'i', 'l', 'l', 's', '/', 'q', 'u', 'i', 'e', 't', 0, 7, 't', 'i', 'm', 'e', 'o', 'u', 't'}
	connect[1] = byte(len(connect) - 2)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(connect); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := readUntilClosed(t, nc, 10*time.Second)
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("closed after %v; keep alive 1 s allows 1.5 s", waited)
	}
	pks, err := splitPackets(got)
	if err != nil || len(pks) != 2 || pks[0].typ != 2 || pks[1].typ != 14 {
		t.Fatalf("server sent %v (%v); want CONNACK then DISCONNECT", pks, err)
	}
	if code, _ := reasonOf(pks[1]); code != 0x8D {
		t.Errorf("DISCONNECT reason 0x%02x; want 0x8D keep alive timeout", code)
	}
	watcher.expectMsg(t, ctx, "wills/quiet", "timeout", 0)
	if got := ts.srv.Stats().KeepAliveTimeouts; got != 1 {
		t.Errorf("KeepAliveTimeouts = %d; want 1", got)
	}
}
