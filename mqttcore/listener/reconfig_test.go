package listener_test

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// TestSetConfig lowers max_connections and topic_alias_maximum under two
// connected clients: both stay, the next connection is refused, and a new
// connection is told the new Topic Alias Maximum while the old one keeps
// working with what it was told. The address is kept and named.
func TestSetConfig(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{MaxConnections: 3, TopicAliasMaximum: 16}, mqttcore.Config{})
	a := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "a", CleanStart: true})
	b := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "b", CleanStart: true})

	cfg := ts.srv.Config()
	cfg.MaxConnections, cfg.TopicAliasMaximum, cfg.Address = 2, 4, "127.0.0.1:1"
	kept, err := ts.srv.SetConfig(cfg)
	if err != nil {
		t.Fatalf("SetConfig = %v", err)
	}
	if want := []string{"address"}; !slices.Equal(kept, want) {
		t.Errorf("SetConfig kept %v; want %v", kept, want)
	}
	if got := ts.srv.Config(); got.MaxConnections != 2 || got.Address == "127.0.0.1:1" {
		t.Errorf("Config() = %+v; want max_connections 2 and the running address", got)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write(connect5)
	if got := readUntilClosed(t, nc, 5*time.Second); len(got) != 0 {
		t.Errorf("third connection after lowering max_connections to 2 got %x; want to be closed without a word", got)
	}
	// Both clients are still there.
	a.subscribe(t, ctx, 0, 0, "x")
	b.publish(t, ctx, "x", "hi", 0, false)
	a.expectMsg(t, ctx, "x", "hi", 0)

	if err := b.Disconnect(&paho.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "b's connection to be released", func() bool { return ts.srv.Stats().ConnectionsCurrent == 1 })
	_, ca, err := dialPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "c", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	if ca.Properties == nil || ca.Properties.TopicAliasMaximum == nil || *ca.Properties.TopicAliasMaximum != 4 {
		t.Errorf("CONNACK after topic_alias_maximum 4: %+v; want Topic Alias Maximum 4", ca.Properties)
	}

	bad := cfg
	bad.MaxPacketSize = 3
	if _, err := ts.srv.SetConfig(bad); err == nil {
		t.Error("SetConfig(max_packet_size 3) = nil; want an error")
	}
	if got := ts.srv.Config().MaxPacketSize; got == 3 {
		t.Error("a refused SetConfig changed max_packet_size")
	}
}
