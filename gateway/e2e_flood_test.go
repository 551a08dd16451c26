package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// floodSocket opens a UDP socket on the loopback address ip (any of
// 127.0.0.0/8 works on Linux, so each socket is a distinct source address
// for the gateway's per-source state) connected to the gateway.
func floodSocket(t *testing.T, e *sntest.Env, ip netip.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)),
		net.UDPAddrFromAddrPort(netip.MustParseAddrPort(e.UDPAddr)))
	if err != nil {
		t.Fatalf("dial %s from %v: %v", e.UDPAddr, ip, err)
	}
	return c
}

// TestE2EMaxClientsExactAcrossLoops: many CONNECTs at once, spread over four
// loops, never get more than max_clients places, not even one more.
func TestE2EMaxClientsExactAcrossLoops(t *testing.T) {
	t.Parallel()
	const loops, maxClients, senders = 4, 64, 256
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{Loops: loops, MaxClients: maxClients}})
	var (
		wg                          sync.WaitGroup
		start                       = make(chan struct{})
		accepted, congested, silent atomic.Int64
	)
	for i := range senders {
		c := floodSocket(t, e, netip.AddrFrom4([4]byte{127, 5, byte(i >> 8), byte(i + 1)}))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			b, _ := (&sn.Connect{CleanSession: true, Duration: 60, ClientID: []byte(c.LocalAddr().String())}).AppendBinary(nil)
			<-start
			if _, err := c.Write(b); err != nil {
				t.Errorf("send CONNECT: %v", err)
				return
			}
			dl, _ := ctx.Deadline()
			_ = c.SetReadDeadline(dl)
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err != nil {
				silent.Add(1)
				return
			}
			m, err := sn.Decode(buf[:n])
			ack, ok := m.(*sn.Connack)
			switch {
			case err != nil || !ok:
				t.Errorf("answer to CONNECT = %v, %v; want CONNACK", m, err)
			case ack.ReturnCode == sn.Accepted:
				accepted.Add(1)
			case ack.ReturnCode == sn.RejectedCongestion:
				congested.Add(1)
			default:
				t.Errorf("CONNACK %v; want accepted or congestion", ack.ReturnCode)
			}
		}()
	}
	close(start)
	wg.Wait()
	st := e.Gateway.Stats()
	if accepted.Load() != maxClients || st.Clients != maxClients {
		t.Errorf("accepted %d, gateway Clients %d; want exactly max_clients = %d", accepted.Load(), st.Clients, maxClients)
	}
	if got := congested.Load() + silent.Load(); got != senders-maxClients || silent.Load() != 0 {
		t.Errorf("%d refused, %d unanswered; want %d refused", congested.Load(), silent.Load(), senders-maxClients)
	}
	if st.LimitHits[gateway.LimitClients] != uint64(congested.Load()) {
		t.Errorf("LimitHits[max_clients] = %d; want %d", st.LimitHits[gateway.LimitClients], congested.Load())
	}
}

// TestE2EConnectFlood is issue 15's flood: 20,000 CONNECTs with random
// client ids (half with CleanSession=0, half through forwarder envelopes,
// so that few sockets make many clients), from 250 source addresses. During
// it the gateway's clients and the core's sessions stay bounded by
// max_unverified; an established sensor keeps working; right after it a new
// sensor and mosquitto_sub connect within a second each; once the flood's
// one-second keep-alives lapse, the core's session count is back where it
// was plus the new sensor.
func TestE2EConnectFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood: skipped with -short")
	}
	const (
		maxUnverified = 4000
		sockets       = 250
		perSocket     = 80 // 20,000 CONNECTs
	)
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{MaxUnverified: maxUnverified}})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "flood/#")
	est := e.Connected(t, ctx, snclient.Options{ClientID: "est", PersistentSession: true, KeepAlive: time.Minute})
	if err := est.Publish(ctx, snclient.Named("flood/est"), sn.QoS1, false, []byte("before")); err != nil {
		t.Fatalf("established sensor's publish = %v", err)
	}
	app.Expect(t, ctx, "flood/est", "before", 1, false)
	pre := e.Broker.Stats().Sessions // app and est

	// Watch the gateway and the core while the flood runs.
	var maxClients, maxUnver, maxSessions int64
	stopWatch, watched := make(chan struct{}), make(chan struct{})
	go func() { // exits when stopWatch closes
		defer close(watched)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			st, bs := e.Gateway.Stats(), e.Broker.Stats()
			maxClients, maxUnver, maxSessions = max(maxClients, st.Clients), max(maxUnver, st.Unverified), max(maxSessions, bs.Sessions)
			select {
			case <-stopWatch:
				return
			case <-tick.C:
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range sockets {
		c := floodSocket(t, e, netip.AddrFrom4([4]byte{127, 6, byte(i >> 8), byte(i + 1)}))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close() // promptly: the ports are shared with other tests
			var id [8]byte
			var b []byte
			ack := make([]byte, 64)
			for j := range perSocket {
				_, _ = rand.Read(id[:])
				var m sn.Message = &sn.Connect{CleanSession: j%4 < 2, Duration: 1, ClientID: []byte(hex.EncodeToString(id[:]))}
				if j%2 == 1 {
					m = &sn.Encapsulated{NodeID: []byte{byte(i), byte(j)}, Inner: m}
				}
				b, _ = m.AppendBinary(b[:0])
				if _, err := c.Write(b); err != nil {
					continue // a full buffer: a flood does not care
				}
				// Wait a little for the CONNACK, so the flood runs at the
				// rate the gateway takes it in rather than overflowing the
				// socket's receive buffer, where it would never be seen.
				_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = c.Read(ack)
			}
		}()
	}
	wg.Wait()

	// The newcomers, each within a second.
	t0 := time.Now()
	msub := e.MosquittoSub(t, ctx, "msub", "legit/x", 1, 1) // returns once subscribed
	subTook := time.Since(t0)
	t0 = time.Now()
	connCtx, cancel := context.WithTimeout(ctx, time.Second)
	legit := e.Connected(t, connCtx, snclient.Options{ClientID: "legit", KeepAlive: time.Minute})
	cancel()
	connTook := time.Since(t0)
	t.Logf("after the flood: mosquitto_sub subscribed in %v, a new sensor connected in %v", subTook, connTook)
	if subTook > time.Second {
		t.Errorf("mosquitto_sub took %v to connect and subscribe after the flood; want under a second", subTook)
	}
	if err := legit.Publish(ctx, snclient.Named("legit/x"), sn.QoS1, false, []byte("hello")); err != nil {
		t.Fatalf("new sensor's publish = %v", err)
	}
	if lines := msub.Wait(t, ctx); len(lines) != 1 || lines[0] != "legit/x 1 0 hello" {
		t.Errorf("mosquitto_sub got %q; want the new sensor's message", lines)
	}
	if err := est.Publish(ctx, snclient.Named("flood/est"), sn.QoS1, false, []byte("after")); err != nil {
		t.Fatalf("established sensor's publish after the flood = %v", err)
	}
	app.Expect(t, ctx, "flood/est", "after", 1, false)

	// The flood's sessions leave the core with its lapsed keep-alives: what
	// is left is app, est and the new sensor (mosquitto_sub left after its
	// message, and its clean session with it).
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for e.Broker.Stats().Sessions != pre+1 || e.Gateway.Stats().Clients != 2 {
		select {
		case <-waitCtx.Done():
			t.Fatalf("core sessions %d, gateway clients %d (%d unverified) 10 s after the flood; want %d and 2",
				e.Broker.Stats().Sessions, e.Gateway.Stats().Clients, e.Gateway.Stats().Unverified, pre+1)
		case <-time.After(5 * time.Millisecond): // polling a counter, not synchronising
		}
	}
	close(stopWatch)
	<-watched
	st := e.Gateway.Stats()
	t.Logf("flood: %d datagrams received, %d dropped at full loop queues, %d unverified evicted, %d refused; peak %d clients (%d unverified), %d core sessions",
		st.Received, st.LimitHits[gateway.LimitLoopQueue], st.LimitHits[gateway.LimitUnverified], st.Rejected, maxClients, maxUnver, maxSessions)
	if maxUnver > maxUnverified || maxClients > maxUnverified+3 || maxSessions > pre+maxUnverified+2 {
		t.Errorf("peak clients %d (%d unverified), core sessions %d; want at most %d, %d and %d",
			maxClients, maxUnver, maxSessions, maxUnverified+3, maxUnverified, pre+maxUnverified+2)
	}
	if st.Unverified != 0 {
		t.Errorf("Unverified = %d at the end; want 0 (the newcomer published)", st.Unverified)
	}
	if _, ok := e.Broker.Session("est"); !ok {
		t.Errorf("the established sensor's session is gone")
	}
}

// TestE2EMQTTKeepsRoom: sensors' sessions, also offline ones the gateway no
// longer has a client for, count against max_clients in the core; when
// they have used it up a new sensor is refused, and an MQTT client still
// gets a session.
func TestE2EMQTTKeepsRoom(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{
		Gateway: gateway.Config{MaxClients: 3},
		Core:    mqttcore.Config{MaxSessions: 5},
	})
	for _, id := range []string{"p1", "p2", "p3"} {
		s := e.Connected(t, ctx, snclient.Options{ClientID: id, PersistentSession: true})
		if err := s.Publish(ctx, snclient.Named("room/"+id), sn.QoS1, false, []byte("x")); err != nil {
			t.Fatalf("%s publish = %v", id, err)
		}
		if err := s.Disconnect(ctx); err != nil {
			t.Fatalf("%s disconnect = %v", id, err)
		}
		e.WaitSession(t, ctx, id, mqttcore.StateDisconnected)
	}
	if st := e.Gateway.Stats(); st.Clients != 0 {
		t.Fatalf("gateway Clients = %d after every sensor left; want 0", st.Clients)
	}
	late := e.Sensor(t, ctx, snclient.Options{ClientID: "late"})
	if err := late.Connect(ctx); !errors.Is(err, snclient.ErrCongestion) {
		t.Errorf("a fourth sensor's Connect = %v; want ErrCongestion (the sensors' share is used up)", err)
	}
	e.MQTT(t, ctx, "app1") // fails the test if refused
	e.MQTT(t, ctx, "app2")
	if n := e.Broker.Stats().Sessions; n != 5 {
		t.Errorf("core sessions = %d; want 5 (three sensors, two MQTT clients)", n)
	}
}
