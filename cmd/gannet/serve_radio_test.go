package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"golang.org/x/net/ipv4"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/radio"
	"github.com/gannet-mqtt/gannet/snclient"
)

func TestOpenLinksUDPAndDTLS(t *testing.T) {
	dir := t.TempDir()
	psk := filepath.Join(dir, "psk")
	if err := os.WriteFile(psk, []byte("sensor-1:00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	links, err := openLinks([]radio.ListenerConfig{
		{Network: "udp4", Address: "127.0.0.1:0"},
		{Network: "dtls", Address: "127.0.0.1:0", DTLS: radio.DTLSConfig{PSKFile: psk}},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()
	if _, ok := links[0].(*radio.UDPLink); !ok {
		t.Errorf("links[0] is %T; want *radio.UDPLink", links[0])
	}
	d, ok := links[1].(*radio.DTLSLink)
	if !ok {
		t.Fatalf("links[1] is %T; want *radio.DTLSLink", links[1])
	}
	if err := reloadLinks(links, log); err != nil || d.Stats().Reloads != 1 {
		t.Errorf("reloadLinks = %v, Reloads = %d; want nil, 1", err, d.Stats().Reloads)
	}
	os.WriteFile(psk, []byte("broken\n"), 0o600)
	if err := reloadLinks(links, log); err == nil || !strings.Contains(err.Error(), "psk") {
		t.Errorf("reloadLinks with a broken psk file = %v; want an error naming it", err)
	}
}

func TestOpenLinksClosesWhatItOpenedOnError(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := openLinks([]radio.ListenerConfig{
		{Network: "udp4", Address: "127.0.0.1:0"},
		{Network: "dtls", Address: "127.0.0.1:0", DTLS: radio.DTLSConfig{PSKFile: "/nonexistent/psk"}},
	}, log)
	if err == nil || !strings.Contains(err.Error(), "listen[1]") {
		t.Fatalf("openLinks = %v; want an error naming listen[1]", err)
	}
}

// TestConfigDTLSExampleLoads uncomments the DTLS example in the root
// config.toml and loads it, so the example cannot rot.
func TestConfigDTLSExampleLoads(t *testing.T) {
	cfg := loadRootExample(t, "DTLS")
	if len(cfg.Listen) != 2 || cfg.Listen[1].Network != "dtls" || cfg.Listen[1].DTLS.PSKFile == "" {
		t.Errorf("Listen = %+v; want the udp listener and a dtls one with a psk_file", cfg.Listen)
	}
}

// dtlsPacketConn lets snclient, which speaks over a net.PacketConn, run
// over a pion/dtls client session.
type dtlsPacketConn struct {
	*dtls.Conn
	gw net.Addr
}

func (c dtlsPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := c.Conn.Read(b)
	return n, c.gw, err
}

func (c dtlsPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) { return c.Conn.Write(b) }

// dialSensor completes a PSK handshake with a pion/dtls client and returns
// an MQTT-SN client over it.
func dialSensor(t *testing.T, ctx context.Context, gw net.Addr, identity, key, clientID string, h snclient.Handler) *snclient.Client {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := hex.DecodeString(key)
	dc, err := dtls.ClientWithOptions(pc, gw,
		dtls.WithPSK(func([]byte) ([]byte, error) { return k, nil }),
		dtls.WithPSKIdentityHint([]byte(identity)),
		dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_CCM_8),
		dtls.WithConnectionIDGenerator(dtls.OnlySendCIDGenerator()))
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.HandshakeContext(ctx); err != nil {
		t.Fatalf("dtls handshake as %s: %v", identity, err)
	}
	c, err := snclient.New(dtlsPacketConn{dc, gw}, gw, snclient.Options{
		ClientID: clientID, Handler: h, RetryInterval: time.Second, MaxRetries: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); pc.Close() })
	return c
}

// TestMQTTSNOverDTLS runs real MQTT-SN traffic from pion/dtls clients
// through the DTLS link, the gateway and the broker core: connect,
// subscribe, publish at QoS 1 and receive; a client id other than the PSK
// identity is refused.
func TestMQTTSNOverDTLS(t *testing.T) {
	const key1, key2 = "00112233445566778899aabbccddeeff", "ffeeddccbbaa99887766554433221100"
	psk := filepath.Join(t.TempDir(), "psk")
	os.WriteFile(psk, []byte("sensor-1:"+key1+"\nsensor-2:"+key2+"\n"), 0o600)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	gw, err := gateway.New(gateway.Config{Loops: 1}, broker, gateway.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	links, err := openLinks([]radio.ListenerConfig{{Network: "dtls", Address: "127.0.0.1:0", DTLS: radio.DTLSConfig{PSKFile: psk,
		HandshakeTimeout: 3 * time.Second}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(links[0]) }()
	defer func() {
		gw.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := links[0].LocalAddr()

	got := make(chan snclient.Message, 4)
	c := dialSensor(t, ctx, addr, "sensor-1", key1, "sensor-1", func(m snclient.Message) { got <- m })
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("CONNECT over DTLS: %v", err)
	}
	if _, err := c.Subscribe(ctx, snclient.Named("greenhouse/+/temp"), 1); err != nil {
		t.Fatalf("SUBSCRIBE over DTLS: %v", err)
	}
	if err := c.Publish(ctx, snclient.Named("greenhouse/7/temp"), 1, false, []byte("21.5")); err != nil {
		t.Fatalf("PUBLISH QoS 1 over DTLS: %v", err)
	}
	select {
	case m := <-got:
		if m.Topic != "greenhouse/7/temp" || string(m.Payload) != "21.5" || m.QoS != 1 {
			t.Errorf("received %+v; want greenhouse/7/temp 21.5 at QoS 1", m)
		}
	case <-ctx.Done():
		t.Fatal("the published message never came back through the subscription")
	}

	// sensor-2's session may not connect as sensor-1.
	bad := dialSensor(t, ctx, addr, "sensor-2", key2, "sensor-1", nil)
	if err := bad.Connect(ctx); err == nil {
		t.Fatal("CONNECT with a client id other than the PSK identity was accepted")
	}
	if st := gw.Stats(); st.IdentityRefused != 1 {
		t.Errorf("IdentityRefused = %d; want 1", st.IdentityRefused)
	}

	// A handshake with the wrong key fails (the gateway counts it when its
	// handshake_timeout, 3 s here, ends it), and /metrics says so beside
	// the two that succeeded and the traffic above.
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	wrong, _ := hex.DecodeString(key2)
	dc, err := dtls.ClientWithOptions(pc, addr,
		dtls.WithPSK(func([]byte) ([]byte, error) { return wrong, nil }),
		dtls.WithPSKIdentityHint([]byte("sensor-1")),
		dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_CCM_8))
	if err != nil {
		t.Fatal(err)
	}
	hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
	if err := dc.HandshakeContext(hctx); err == nil {
		t.Error("a DTLS handshake with the wrong key succeeded")
	}
	hcancel()
	dl := links[0].(*radio.DTLSLink)
	sntest.WaitFor(t, ctx, "the failed handshake counted", func() bool { return dl.Stats().HandshakeFailures >= 1 })
	in := &instance{version: "test", started: time.Now(), log: log, broker: broker, gw: gw, links: links}
	srv := httptest.NewServer(in.handler())
	defer srv.Close()
	fams := scrape(t, srv.URL)
	ls := dl.Stats()
	lAddr := addr.String()
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gannet_dtls_handshakes_total", []string{"listener", lAddr}, 2},
		{"gannet_dtls_handshake_failures_total", []string{"listener", lAddr}, float64(ls.HandshakeFailures)},
		{"gannet_dtls_sessions", []string{"listener", lAddr}, float64(ls.Sessions)},
		{"gannet_radio_datagrams_received_total", []string{"listener", lAddr, "network", "dtls"}, float64(ls.Received)},
		{"gannet_mqttsn_refused_total", []string{"cause", "identity"}, 1},
		{"gannet_mqttsn_messages_received_total", []string{"qos", "1"}, 1},
		{"gannet_mqttsn_messages_sent_total", []string{"qos", "1"}, 1},
		{"gannet_mqttsn_sensors", []string{"state", "active"}, 1},
	} {
		if got := value(t, fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v; want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if ls.HandshakeFailures < 1 || ls.Received == 0 {
		t.Errorf("DTLS link stats %+v; want a failed handshake and datagrams received", ls)
	}
}

// natProxy relays UDP between one client and a server through an
// outbound socket that Rebind replaces, as a carrier NAT does while a
// sensor sleeps.
type natProxy struct {
	t      *testing.T
	front  *net.UDPConn
	server *net.UDPAddr
	mu     sync.Mutex
	back   *net.UDPConn
	client net.Addr
	wg     sync.WaitGroup
}

func newNATProxy(t *testing.T, server net.Addr) *natProxy {
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &natProxy{t: t, front: front, server: server.(*net.UDPAddr)}
	p.Rebind()
	p.wg.Add(1)
	go func() { // exits when front closes in Cleanup
		defer p.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := front.ReadFrom(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.client = from
			back := p.back
			p.mu.Unlock()
			back.WriteTo(buf[:n], p.server)
		}
	}()
	t.Cleanup(func() {
		front.Close()
		p.mu.Lock()
		p.back.Close()
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Rebind moves the proxy's server-facing side to a new socket (a new
// source port); the old one is closed.
func (p *natProxy) Rebind() {
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	old := p.back
	p.back = back
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	p.wg.Add(1)
	go func() { // exits when back is closed by the next Rebind or Cleanup
		defer p.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, _, err := back.ReadFrom(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			client := p.client
			p.mu.Unlock()
			p.front.WriteTo(buf[:n], client)
		}
	}()
}

// TestMQTTSNOverDTLSSurvivesAddressChange: a DTLS sensor's source address
// changes mid-session (its NAT rebinds); with Connection IDs its DTLS
// session, and so its MQTT-SN session, continue without a new handshake or
// CONNECT.
func TestMQTTSNOverDTLSSurvivesAddressChange(t *testing.T) {
	const key = "00112233445566778899aabbccddeeff"
	psk := filepath.Join(t.TempDir(), "psk")
	os.WriteFile(psk, []byte("sensor-9:"+key+"\n"), 0o600)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	gw, err := gateway.New(gateway.Config{Loops: 1}, broker, gateway.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	links, err := openLinks([]radio.ListenerConfig{{Network: "dtls", Address: "127.0.0.1:0", DTLS: radio.DTLSConfig{PSKFile: psk}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	dl := links[0].(*radio.DTLSLink)
	served := make(chan error, 1)
	go func() { served <- gw.Serve(dl) }()
	defer func() { gw.Close(); <-served }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	proxy := newNATProxy(t, dl.LocalAddr())
	got := make(chan snclient.Message, 8)
	c := dialSensor(t, ctx, proxy.front.LocalAddr(), "sensor-9", key, "sensor-9", func(m snclient.Message) { got <- m })
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, snclient.Named("site/9/#"), 1); err != nil {
		t.Fatal(err)
	}
	roundTrip := func(payload string) {
		t.Helper()
		if err := c.Publish(ctx, snclient.Named("site/9/temp"), 1, false, []byte(payload)); err != nil {
			t.Fatalf("PUBLISH %s: %v", payload, err)
		}
		select {
		case m := <-got:
			if string(m.Payload) != payload {
				t.Fatalf("received %q; want %q", m.Payload, payload)
			}
		case <-ctx.Done():
			t.Fatalf("%s never came back", payload)
		}
	}
	roundTrip("before")
	proxy.Rebind()
	roundTrip("after")
	st := dl.Stats()
	if st.Handshakes != 1 || st.Sessions != 1 {
		t.Errorf("DTLS Handshakes, Sessions = %d, %d; want 1, 1 (the session moved, no new one)", st.Handshakes, st.Sessions)
	}
	if gs := gw.Stats(); gs.Clients != 1 || gs.UnknownClient != 0 {
		t.Errorf("gateway Clients, UnknownClient = %d, %d; want 1, 0 (the MQTT-SN session continued)", gs.Clients, gs.UnknownClient)
	}
	if c.State() != snclient.StateActive {
		t.Errorf("client state %v; want active", c.State())
	}
}

// TestSearchGatewayOverMulticast: the gateway serves a multicast listener
// on lo; a sensor's SEARCHGW to the group is answered with GWINFO. Skips
// where lo cannot carry multicast.
func TestSearchGatewayOverMulticast(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	group := fmt.Sprintf("239.255.0.186:%d", probe.LocalAddr().(*net.UDPAddr).Port)
	probe.Close()
	links, err := openLinks([]radio.ListenerConfig{{Network: "multicast", Address: group, Multicast: radio.MulticastOptions{Interface: "lo", Loopback: true}}}, log)
	if err != nil {
		t.Skipf("cannot join %s on lo here (%v); `ip link set lo multicast on` enables this test", group, err)
	}
	broker, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	gw, err := gateway.New(gateway.Config{Loops: 1, GatewayID: 42}, broker, gateway.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(links[0]) }()
	defer func() { gw.Close(); <-served }()

	// The sensor sends from an ordinary socket through lo.
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no lo interface: %v", err)
	}
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p4 := ipv4.NewPacketConn(pc)
	if err := p4.SetMulticastInterface(lo); err != nil {
		t.Skipf("cannot send multicast on lo here: %v", err)
	}
	p4.SetMulticastLoopback(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := snclient.SearchGateway(ctx, pc, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(group)), 1, 500*time.Millisecond)
	if err != nil {
		if ctx.Err() != nil {
			t.Skipf("no GWINFO within 5 s: multicast on lo does not deliver here; `ip link set lo multicast on` enables this test")
		}
		t.Fatalf("SearchGateway: %v", err)
	}
	if info.ID != 42 {
		t.Errorf("GWINFO from gateway %d; want 42", info.ID)
	}
}

// TestReloadRereadsDTLS: a reload rereads the PSK file of every DTLS
// link, and an identity added to the file can handshake afterwards.
func TestReloadRereadsDTLS(t *testing.T) {
	const key = "00112233445566778899aabbccddeeff"
	dir := t.TempDir()
	psk := filepath.Join(dir, "psk")
	os.WriteFile(psk, []byte("sensor-1:"+key+"\n"), 0o600)
	conf := filepath.Join(dir, "gannet.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("[[listen]]\nnetwork = \"dtls\"\naddress = \"127.0.0.1:0\"\n[listen.dtls]\npsk_file = %q\n[mqtt]\ndisabled = true\n", psk)), 0o600)
	cfg, err := loadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	links, err := openLinks(cfg.Listen, log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()
	_, level := cfg.Log.loggerVar(io.Discard)
	authn, err := auth.New(cfg.MQTT.Auth)
	if err != nil {
		t.Fatal(err)
	}
	lc := &liveConfig{path: conf, cfg: cfg, level: level, log: log, links: links, authn: authn, limiters: &limiters{}}
	dl := links[0].(*radio.DTLSLink)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	os.WriteFile(psk, []byte("sensor-1:"+key+"\nsensor-2:"+key+"\n"), 0o600)
	if rep := lc.reload(); rep.Error != "" || len(rep.NotApplied) != 0 {
		t.Fatalf("reload = %+v; want applied, nothing refused", rep)
	}
	if st := dl.Stats(); st.Reloads != 1 {
		t.Errorf("Reloads = %d; want 1", st.Reloads)
	}
	// dialSensor fails the test unless the handshake succeeds: sensor-2
	// exists only in the reloaded file.
	dialSensor(t, ctx, dl.LocalAddr(), "sensor-2", key, "sensor-2", nil)
}
