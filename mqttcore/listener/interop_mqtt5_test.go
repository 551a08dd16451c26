package listener_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	paholog "github.com/eclipse/paho.golang/paho/log"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
	"github.com/gannet-mqtt/gannet/mqttcore/listener/internal/framing"
)

// Interop tests of the MQTT 5 features of issue 18 with paho.golang
// clients, and where paho cannot show the wire (it keeps one subscription
// identifier of several), with the raw packets it read.

// tapConn copies everything its reader reads to a pipe, where a framing
// Reader decodes the packets the client received.
type tapConn struct {
	net.Conn
	pw *io.PipeWriter
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		_, _ = c.pw.Write(p[:n])
	}
	return n, err
}

// tapPaho dials addr and returns the connection for paho and a channel of
// the PUBLISH packets the server sent on it, decoded from the raw bytes.
func tapPaho(t *testing.T, ctx context.Context, addr string) (net.Conn, <-chan packets.Packet) {
	t.Helper()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	pr, pw := io.Pipe()
	pubs := make(chan packets.Packet, 64)
	done := make(chan struct{})
	go func() { // exits when the pipe is closed at cleanup
		defer close(done)
		r, _ := framing.NewReader(pr, framing.Limits{})
		version := byte(0)
		for {
			// The server's packets: read CONNACK as version 5 directly.
			if version == 0 {
				version = 5
			}
			pk, err := r.ReadPacket(version)
			if err != nil {
				_, _ = io.Copy(io.Discard, pr)
				return
			}
			if pk.FixedHeader.Type == packets.Publish {
				pubs <- pk
			}
		}
	}()
	t.Cleanup(func() {
		_ = nc.Close()
		_ = pw.Close()
		<-done
	})
	return &tapConn{Conn: nc, pw: pw}, pubs
}

// TestPahoSubscriptionIdentifiers: two overlapping subscriptions with
// identifiers; a message matching both arrives once carrying both
// identifiers, a message matching one carries that one.
func TestPahoSubscriptionIdentifiers(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	conn, raw := tapPaho(t, ctx, ts.addr)
	c, ca, err := connectPaho(t, ctx, conn, &paho.Connect{ClientID: "subids", CleanStart: true})
	if err != nil {
		t.Fatalf("Connect = %+v, %v", ca, err)
	}
	for i, f := range []string{"ids/+", "ids/#"} {
		id := i + 1
		sa, err := c.Subscribe(ctx, &paho.Subscribe{
			Properties:    &paho.SubscribeProperties{SubscriptionIdentifier: &id},
			Subscriptions: []paho.SubscribeOptions{{Topic: f, QoS: 1}},
		})
		if err != nil || len(sa.Reasons) != 1 || sa.Reasons[0] != 1 {
			t.Fatalf("Subscribe(%q, id %d) = %+v, %v; want granted QoS 1", f, id, sa, err)
		}
	}
	pub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	pub.publish(t, ctx, "ids/both", "1", 1, false)
	pub.publish(t, ctx, "ids/deep/one", "2", 1, false)

	want := []struct {
		topic string
		ids   []int
	}{{"ids/both", []int{1, 2}}, {"ids/deep/one", []int{2}}}
	for _, w := range want {
		m := c.recv(t, ctx)
		if m.Topic != w.topic || m.Properties.SubscriptionIdentifier == nil || !slices.Contains(w.ids, *m.Properties.SubscriptionIdentifier) {
			t.Errorf("paho received %q with subscription identifier %v; want %q with one of %v", m.Topic, m.Properties.SubscriptionIdentifier, w.topic, w.ids)
		}
		select {
		case pk := <-raw:
			got := slices.Clone(pk.Properties.SubscriptionIdentifier)
			slices.Sort(got)
			if pk.TopicName != w.topic || !slices.Equal(got, w.ids) {
				t.Errorf("on the wire: PUBLISH %q with identifiers %v; want %q with %v", pk.TopicName, got, w.topic, w.ids)
			}
		case <-ctx.Done():
			t.Fatalf("no PUBLISH on the wire: %v", ctx.Err())
		}
	}
	c.quiet(t, ctx)
}

// silentPinger is a paho Pinger that never pings, so the connection has
// no traffic; it records the keep alive paho would have used.
type silentPinger struct {
	keepAlive chan uint16
}

func (p *silentPinger) Run(ctx context.Context, _ net.Conn, keepAlive uint16) error {
	p.keepAlive <- keepAlive
	<-ctx.Done()
	return nil
}
func (p *silentPinger) PacketSent()             {}
func (p *silentPinger) PacketReceived()         {}
func (p *silentPinger) PingResp()               {}
func (p *silentPinger) SetDebug(paholog.Logger) {}

// TestPahoServerKeepAlive: a client asking for 600 s gets the configured
// 60 s in CONNACK, a client asking for less keeps its own (no Server Keep
// Alive), and a client held to 1 s that sends nothing is dropped with
// DISCONNECT 0x8D no earlier than 1.5 s.
func TestPahoServerKeepAlive(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{ServerKeepAlive: 60 * time.Second}, mqttcore.Config{})
	_, ca, err := dialPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "long", CleanStart: true, KeepAlive: 600})
	if err != nil {
		t.Fatalf("Connect = %v", err)
	}
	if ca.Properties.ServerKeepAlive == nil || *ca.Properties.ServerKeepAlive != 60 {
		t.Errorf("CONNACK Server Keep Alive for a 600 s client = %v; want 60", ca.Properties.ServerKeepAlive)
	}
	_, ca, err = dialPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "short", CleanStart: true, KeepAlive: 30})
	if err != nil {
		t.Fatalf("Connect = %v", err)
	}
	if ca.Properties.ServerKeepAlive != nil {
		t.Errorf("CONNACK Server Keep Alive for a 30 s client = %d; want none", *ca.Properties.ServerKeepAlive)
	}

	fast := startServer(t, listener.Config{ServerKeepAlive: time.Second}, mqttcore.Config{})
	pinger := &silentPinger{keepAlive: make(chan uint16, 1)}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", fast.addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, ca, err := connectPaho(t, ctx, conn, &paho.Connect{ClientID: "silent", CleanStart: true, KeepAlive: 600},
		func(cfg *paho.ClientConfig) { cfg.PingHandler = pinger })
	if err != nil {
		t.Fatalf("Connect = %+v, %v", ca, err)
	}
	if ka := <-pinger.keepAlive; ka != 1 {
		t.Errorf("paho's keep alive after CONNACK = %d; want the server's 1", ka)
	}
	select {
	case dis := <-c.disconnects:
		if dis.ReasonCode != 0x8D {
			t.Errorf("DISCONNECT reason 0x%02x; want 0x8D (keep alive timeout)", dis.ReasonCode)
		}
		if el := time.Since(start); el < 1500*time.Millisecond {
			t.Errorf("dropped after %v; want no earlier than 1.5 times the 1 s keep alive", el)
		}
	case <-ctx.Done():
		t.Fatalf("silent client not dropped: %v", ctx.Err())
	}
	if got := fast.srv.Stats().KeepAliveTimeouts; got != 1 {
		t.Errorf("Stats().KeepAliveTimeouts = %d; want 1", got)
	}
}

// TestServerKeepAliveRefuses311: an MQTT 3.1.1 client asking for more than
// server_keep_alive cannot be told, so it is refused with 0x02.
func TestServerKeepAliveRefuses311(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{ServerKeepAlive: 60 * time.Second}, mqttcore.Config{})
	connect := []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0x02, 0x58, 0, 3, 'r', 'a', 'w'} // keep alive 600
	got := exchange(t, ctx, ts.addr, nil, connect, false)
	if !bytes.Equal(got, []byte{0x20, 2, 0, 2}) {
		t.Errorf("server answered a 600 s 3.1.1 keep alive with %x; want CONNACK 0x02 (20020002)", got)
	}
	if n := ts.srv.Stats().RefusedKeepAlive; n != 1 {
		t.Errorf("Stats().RefusedKeepAlive = %d; want 1", n)
	}
}

// TestPahoOutboundTopicAliases: towards a client with Topic Alias Maximum
// 2, the first delivery on a topic carries the topic and an alias, the
// second the alias and an empty topic, which the client resolves; a third
// topic reuses the oldest alias with its topic.
func TestPahoOutboundTopicAliases(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	maxAlias := uint16(2)
	c := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "aliased", CleanStart: true,
		Properties: &paho.ConnectProperties{TopicAliasMaximum: &maxAlias}})
	c.subscribe(t, ctx, 1, 1, "al/#")
	pub := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "pub", CleanStart: true})

	aliases := map[uint16]string{} // the client's side of the table
	steps := []struct {
		topic     string
		wireTopic string // what the PUBLISH carries
		alias     uint16
	}{
		{"al/one", "al/one", 1}, {"al/one", "", 1}, {"al/two", "al/two", 2},
		{"al/two", "", 2}, {"al/one", "", 1},
		{"al/three", "al/three", 1}, // table full: the oldest alias is reassigned
		{"al/three", "", 1}, {"al/two", "", 2},
	}
	for i, s := range steps {
		payload := fmt.Sprint(i)
		pub.publish(t, ctx, s.topic, payload, 1, false)
		m := c.recv(t, ctx)
		if m.Properties.TopicAlias == nil {
			t.Fatalf("step %d: PUBLISH %q without a topic alias; want alias %d", i, m.Topic, s.alias)
		}
		a := *m.Properties.TopicAlias
		if m.Topic != s.wireTopic || a != s.alias {
			t.Errorf("step %d: PUBLISH topic %q alias %d; want topic %q alias %d", i, m.Topic, a, s.wireTopic, s.alias)
		}
		if m.Topic != "" {
			aliases[a] = m.Topic
		}
		if got := aliases[a]; got != s.topic || string(m.Payload) != payload {
			t.Errorf("step %d: resolved (%q, %q); want (%q, %q)", i, got, m.Payload, s.topic, payload)
		}
	}
	// A client that allows no aliases never gets one.
	plain := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "plain", CleanStart: true})
	plain.subscribe(t, ctx, 1, 1, "al/#")
	for range 2 {
		pub.publish(t, ctx, "al/one", "x", 1, false)
		if m := plain.recv(t, ctx); m.Topic != "al/one" || m.Properties.TopicAlias != nil {
			t.Errorf("client without Topic Alias Maximum got topic %q alias %v; want the topic and no alias", m.Topic, m.Properties.TopicAlias)
		}
		c.recv(t, ctx)
	}
}

// wsClientConn is the client side of MQTT over WebSocket as a byte
// stream: binary messages in, one binary message per Write.
type wsClientConn struct {
	ws *websocket.Conn
	r  io.Reader
}

func (c *wsClientConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			_, r, err := c.ws.NextReader()
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				return 0, io.EOF
			}
			if err != nil {
				return 0, err
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsClientConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// transports are the listener's three: plain TCP, TLS and WebSocket.
var transports = []string{"tcp", "tls", "websocket"}

// allTransports is a listener config with every transport, on free ports.
func allTransports(pki *testPKI) listener.Config {
	return listener.Config{
		TLS:       listener.TLSConfig{Address: "127.0.0.1:0", CertFile: pki.certFile, KeyFile: pki.keyFile},
		WebSocket: listener.WebSocketConfig{Address: "127.0.0.1:0"},
	}
}

// dialTransport connects a raw byte stream to ts over the named transport,
// with ctx's deadline on reads and writes; it is closed at cleanup.
func dialTransport(t *testing.T, ctx context.Context, ts *testServer, pki *testPKI, name string) io.ReadWriter {
	t.Helper()
	dl, _ := ctx.Deadline()
	switch name {
	case "tcp":
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		_ = nc.SetDeadline(dl)
		return nc
	case "tls":
		d := tls.Dialer{Config: &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"}}
		nc, err := d.DialContext(ctx, "tcp", ts.srv.Addr("tls").String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		_ = nc.SetDeadline(dl)
		return nc
	case "websocket":
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}}
		ws, _, err := d.DialContext(ctx, "ws://"+ts.srv.Addr("websocket").String()+listener.DefaultWebSocketPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.Close() })
		_ = ws.SetReadDeadline(dl)
		_ = ws.SetWriteDeadline(dl)
		return &wsClientConn{ws: ws}
	}
	t.Fatalf("unknown transport %q", name)
	return nil
}

// TestReceiveMaximumViolationDisconnect: a client that exceeds the server's
// Receive Maximum with QoS 2 PUBLISHes, and keeps sending, reads
// DISCONNECT 0x93 and then the end of the stream, never a reset, over TCP,
// TLS and WebSocket.
func TestReceiveMaximumViolationDisconnect(t *testing.T) {
	const window = 2
	pki := newTestPKI(t)
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			ts := startServer(t, allTransports(pki), mqttcore.Config{MaxInflight: window})
			nc := dialTransport(t, ctx, ts, pki, name)
			var out bytes.Buffer
			write := func(pk packets.Packet) {
				pk.ProtocolVersion = 5
				if err := framing.Encode(&out, &pk); err != nil {
					t.Fatal(err)
				}
			}
			write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
				Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "greedy", Clean: true}})
			if _, err := nc.Write(out.Bytes()); err != nil {
				t.Fatal(err)
			}
			r, _ := framing.NewReader(nc, framing.Limits{})
			ca, err := r.ReadPacket(5)
			if err != nil || ca.FixedHeader.Type != packets.Connack || ca.ReasonCode != 0 || ca.Properties.ReceiveMaximum != window {
				t.Fatalf("CONNACK = %+v, %v; want success with Receive Maximum %d", ca, err, window)
			}
			// window+1 QoS 2 PUBLISHes never released, then plenty more
			// that the server will not read before it closes.
			out.Reset()
			payload := bytes.Repeat([]byte("x"), 1024)
			for i := range window + 1 + 256 {
				write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2},
					TopicName: "greedy/t", PacketID: uint16(i + 1), Payload: payload})
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // exits when the write completes or fails (the server closed)
				defer wg.Done()
				_, _ = nc.Write(out.Bytes())
			}()
			defer wg.Wait()
			var got []string
			for {
				pk, err := r.ReadPacket(5)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if errors.Is(err, syscall.ECONNRESET) {
						t.Fatalf("connection reset after %v; want DISCONNECT 0x93 and then EOF", got)
					}
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, fmt.Sprintf("%s 0x%02x", framing.TypeName(pk.FixedHeader.Type), pk.ReasonCode))
			}
			want := []string{"PUBREC 0x00", "PUBREC 0x00", "DISCONNECT 0x93"}
			if !slices.Equal(got, want) {
				t.Errorf("server sent %v; want %v", got, want)
			}
		})
	}
}

// TestPahoNoLocalRequestResponse is the request/response case of issue 18,
// 100 times in a row with fresh clients: A and B subscribe to one request
// topic with No Local; A publishes a request with Response Topic and
// Correlation Data; B (and not A) receives it with both properties and
// answers on the response topic, where A receives the answer. Each
// client's SUBSCRIBE is acknowledged before A publishes: the observer is
// in place before the producer starts.
func TestPahoNoLocalRequestResponse(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{}, mqttcore.Config{})
	noLocal := func(c *pahoClient, filter string) {
		t.Helper()
		sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1, NoLocal: true}}})
		if err != nil || len(sa.Reasons) != 1 || sa.Reasons[0] != 1 {
			t.Fatalf("Subscribe(%q, no local) = %+v, %v", filter, sa, err)
		}
	}
	for i := range 100 {
		a := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: fmt.Sprintf("req-a-%d", i), CleanStart: true})
		b := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: fmt.Sprintf("req-b-%d", i), CleanStart: true})
		reqTopic, respTopic := fmt.Sprintf("svc/%d/req", i), fmt.Sprintf("svc/%d/resp/a", i)
		noLocal(a, reqTopic)
		noLocal(b, reqTopic)
		noLocal(a, respTopic)
		corr := []byte(fmt.Sprintf("corr-%d", i))
		if _, err := a.Publish(ctx, &paho.Publish{Topic: reqTopic, QoS: 1, Payload: []byte("ping"),
			Properties: &paho.PublishProperties{ResponseTopic: respTopic, CorrelationData: corr}}); err != nil {
			t.Fatalf("run %d: request: %v", i, err)
		}
		req := b.recv(t, ctx)
		if req.Topic != reqTopic || req.Properties == nil || req.Properties.ResponseTopic != respTopic || !bytes.Equal(req.Properties.CorrelationData, corr) {
			t.Fatalf("run %d: B received %q with %+v; want %q with response topic %q and correlation data %q", i, req.Topic, req.Properties, reqTopic, respTopic, corr)
		}
		if _, err := b.Publish(ctx, &paho.Publish{Topic: req.Properties.ResponseTopic, QoS: 1, Payload: []byte("pong"),
			Properties: &paho.PublishProperties{CorrelationData: req.Properties.CorrelationData}}); err != nil {
			t.Fatalf("run %d: response: %v", i, err)
		}
		resp := a.recv(t, ctx)
		if resp.Topic != respTopic || string(resp.Payload) != "pong" || resp.Properties == nil || !bytes.Equal(resp.Properties.CorrelationData, corr) {
			t.Fatalf("run %d: A received %q %q with %+v; want the response", i, resp.Topic, resp.Payload, resp.Properties)
		}
		a.quiet(t, ctx) // A never got its own request back (No Local)
		b.quiet(t, ctx)
		for _, c := range []*pahoClient{a, b} {
			if err := c.Disconnect(&paho.Disconnect{}); err != nil {
				t.Fatalf("run %d: Disconnect: %v", i, err)
			}
		}
	}
}

// TestKeepAliveDisconnectTransports: a silent MQTT 5 client gets
// DISCONNECT 0x8D when its keep alive runs out, and then the end of the
// stream, over TCP, TLS and WebSocket. Over WebSocket the read deadline that
// fires must leave the connection writable (the reason gorilla/websocket
// replaced coder/websocket, whose net.Conn closes on a deadline) and must
// be recognised as a timeout (gorilla hides the network's error).
func TestKeepAliveDisconnectTransports(t *testing.T) {
	pki := newTestPKI(t)
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each waits 1.5 s on its own server
			ctx := testCtx(t)
			ts := startServer(t, allTransports(pki), mqttcore.Config{})
			nc := dialTransport(t, ctx, ts, pki, name)
			var out bytes.Buffer
			connect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
				Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "silent", Clean: true, Keepalive: 1}}
			if err := framing.Encode(&out, &connect); err != nil {
				t.Fatal(err)
			}
			if _, err := nc.Write(out.Bytes()); err != nil {
				t.Fatal(err)
			}
			r, _ := framing.NewReader(nc, framing.Limits{})
			var got []string
			for {
				pk, err := r.ReadPacket(5)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, fmt.Sprintf("%s 0x%02x", framing.TypeName(pk.FixedHeader.Type), pk.ReasonCode))
			}
			if want := []string{"CONNACK 0x00", "DISCONNECT 0x8d"}; !slices.Equal(got, want) {
				t.Errorf("server sent %v; want %v", got, want)
			}
			if n := ts.srv.Stats().KeepAliveTimeouts; n != 1 {
				t.Errorf("Stats().KeepAliveTimeouts = %d; want 1", n)
			}
		})
	}
}
