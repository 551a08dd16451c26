package bridge_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// mqttProxy forwards MQTT connections from a local port to a broker,
// packet by packet, so a test can see what passes and cut a connection at
// a chosen packet.
type mqttProxy struct {
	t        testing.TB
	l        net.Listener
	upstream string

	cutAtUnsub atomic.Bool   // drop the connection, unforwarded, at the next UNSUBSCRIBE
	cut        chan struct{} // gets one value per connection cut so
	unsuback   chan struct{} // gets one value per UNSUBACK passed to the client

	mu        sync.Mutex
	delivered []string       // topics of the PUBLISHes passed to the client
	gateOn    *chan struct{} // new connections wait until it is closed, when set
	wg        sync.WaitGroup
	conns     map[net.Conn]bool
}

func newMQTTProxy(t testing.TB, upstream string) *mqttProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &mqttProxy{t: t, l: l, upstream: upstream, cut: make(chan struct{}, 10), unsuback: make(chan struct{}, 10), conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept() // exits when the listener is closed (cleanup)
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		if p.gateOn != nil {
			close(*p.gateOn)
			p.gateOn = nil
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *mqttProxy) url() string { return "mqtt://" + p.l.Addr().String() }

// hold makes new connections wait until the returned func is called.
func (p *mqttProxy) hold() (release func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	p.gateOn = &ch
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.gateOn == &ch {
			close(ch)
			p.gateOn = nil
		}
	}
}

func (p *mqttProxy) deliveredTopics() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.delivered)
}

func (p *mqttProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = true
}

func (p *mqttProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.wg.Add(1)
		go p.serve(c) // exits when either side closes
	}
}

func (p *mqttProxy) serve(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	p.mu.Lock()
	gate := p.gateOn
	p.mu.Unlock()
	if gate != nil {
		<-*gate // closed by release or cleanup
	}
	u, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	p.track(u)
	defer u.Close()
	done := make(chan struct{})
	go func() { // exits when the broker side closes
		defer close(done)
		p.copyPackets(u, c, false)
		c.Close()
	}()
	p.copyPackets(c, u, true)
	u.Close()
	<-done
}

// copyPackets forwards whole MQTT packets from src to dst; fromClient
// tells the direction.
func (p *mqttProxy) copyPackets(src, dst net.Conn, fromClient bool) {
	r := bufio.NewReader(src)
	for {
		h, err := r.ReadByte()
		if err != nil {
			return
		}
		var rl, shift int
		hdr := []byte{h}
		for {
			d, err := r.ReadByte()
			if err != nil {
				return
			}
			hdr = append(hdr, d)
			rl |= int(d&0x7F) << shift
			shift += 7
			if d&0x80 == 0 {
				break
			}
		}
		body := make([]byte, rl)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		switch typ := h >> 4; {
		case fromClient && typ == 10 && p.cutAtUnsub.CompareAndSwap(true, false):
			src.Close()
			dst.Close()
			select {
			case p.cut <- struct{}{}:
			default:
			}
			return
		case !fromClient && typ == 3 && len(body) >= 2:
			n := int(body[0])<<8 | int(body[1])
			if 2+n <= len(body) {
				p.mu.Lock()
				p.delivered = append(p.delivered, string(body[2:2+n]))
				p.mu.Unlock()
			}
		}
		if _, err := dst.Write(append(hdr, body...)); err != nil {
			return
		}
		if !fromClient && h>>4 == 11 { // once it is forwarded
			select {
			case p.unsuback <- struct{}{}:
			default:
			}
		}
	}
}

// TestReconfigureUnsubscribeSurvivesLostConnection: the filter of an in
// rule a Reconfigure removed is unsubscribed on the remote even when the
// connection fails before the UNSUBACK: with a persistent session the
// remote would otherwise keep sending its messages for ever. A message
// that still arrives for the removed rule meanwhile is not published into
// the core.
func TestReconfigureUnsubscribeSurvivesLostConnection(t *testing.T) {
	m := newMosquitto(t, "")
	m.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proxy := newMQTTProxy(t, fmt.Sprintf("127.0.0.1:%d", m.port))
	core := newCore(t)
	cfg := testConfig(t, "central", proxy.url(),
		bridge.Rule{Pattern: "up/#", Direction: bridge.Out, QoS: 1},
		bridge.Rule{Pattern: "a/#", Direction: bridge.In, QoS: 1},
		bridge.Rule{Pattern: "m/#", Direction: bridge.In, QoS: 1},
	)
	cfg.SessionExpiry = time.Hour // the remote keeps the session, and its subscriptions, across connections
	log, _ := testLogger(t)
	b := newBridge(t, cfg, core, log)
	local := make(chan *mqttcore.Message, 100)
	if _, err := core.Inline("app").SubscribeChan("#", mqttcore.SubOptions{QoS: 1}, local); err != nil {
		t.Fatal(err)
	}
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "publisher")
	// Both in rules work (retried until the subscription made after the
	// connection is in place).
	for _, topic := range []string{"a/1", "m/1"} {
		for got := false; !got; {
			remote.publish(t, ctx, topic, 1, "x")
			select {
			case lm := <-local:
				got = lm.Topic == topic
			case <-time.After(100 * time.Millisecond): // the subscription is not there yet
			case <-ctx.Done():
				t.Fatalf("%s never arrived in the core", topic)
			}
		}
	}
	for len(local) > 0 { // duplicates of the retries
		<-local
	}

	// Remove the in rule a/#; the new connection is cut at its
	// UNSUBSCRIBE, and held back until a message for a/# is queued in the
	// remote session.
	proxy.cutAtUnsub.Store(true)
	next := cfg
	next.Rules = []bridge.Rule{cfg.Rules[0], cfg.Rules[2]}
	if _, err := b.Reconfigure(next); err != nil {
		t.Fatalf("Reconfigure = %v", err)
	}
	select {
	case <-proxy.cut:
	case <-ctx.Done():
		t.Fatal("the new connection sent no UNSUBSCRIBE")
	}
	release := proxy.hold()
	remote.publish(t, ctx, "a/queued", 1, "x") // PUBACKed: in the bridge's session at the remote
	release()

	wait, waitCancel := context.WithTimeout(ctx, 10*time.Second)
	defer waitCancel()
	select {
	case <-proxy.unsuback:
	case <-wait.Done():
		t.Fatal("the removed in rule's filter was never unsubscribed after the connection was lost before its UNSUBACK")
	}
	remote.publish(t, ctx, "a/after", 1, "x") // unsubscribed: the remote does not send it
	remote.publish(t, ctx, "m/marker", 1, "x")
	for {
		lm := nextLocal(t, ctx, local)
		if strings.HasPrefix(lm.Topic, "a/") {
			t.Fatalf("the core got %s, for the removed in rule a/#", lm.Topic)
		}
		if lm.Topic == "m/marker" {
			break
		}
	}
	got := proxy.deliveredTopics()
	if !slices.Contains(got, "a/queued") {
		t.Errorf("the remote sent %q; want a/queued among them (sent while the filter was still subscribed)", got)
	}
	if slices.Contains(got, "a/after") {
		t.Errorf("the remote sent %q; want no a/after (sent after the UNSUBACK)", got)
	}
}
