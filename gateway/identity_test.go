package gateway_test

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/memlink"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// idLink is a memlink link that authenticates its peers, as radio's DTLS
// link does: Identity returns the identity a test bound to an address.
type idLink struct {
	*memlink.Link
	ids map[netip.AddrPort]string
}

func (l *idLink) Identity(addr netip.AddrPort) (string, bool) {
	id, ok := l.ids[addr]
	return id, ok
}

func TestConnectIdentityBinding(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bound    *string // nil: the address has no authenticated peer
		clientID string
		want     sn.ReturnCode
	}{
		{"matching identity", ptr("sensor-1"), "sensor-1", sn.Accepted},
		{"other client id", ptr("sensor-1"), "sensor-2", sn.RejectedNotSupported},
		{"no identity on the session", ptr(""), "anything", sn.Accepted},
		{"no session behind the address", nil, "sensor-1", sn.RejectedNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				g, err := gateway.New(gateway.Config{Loops: 1}, b, gateway.Options{})
				if err != nil {
					t.Fatal(err)
				}
				n := memlink.New()
				inner, _ := n.Listen("10.0.0.1:8884")
				sensor, _ := n.Listen("10.0.0.2:5000")
				defer sensor.Close()
				link := &idLink{Link: inner, ids: map[netip.AddrPort]string{}}
				if tc.bound != nil {
					link.ids[sensor.AddrPort()] = *tc.bound
				}
				served := make(chan error, 1)
				go func() { served <- g.Serve(link) }()
				defer func() { g.Close(); <-served }()

				frame, _ := (&sn.Connect{CleanSession: true, Duration: 60, ClientID: []byte(tc.clientID)}).AppendBinary(nil)
				sensor.WriteToUDPAddrPort(frame, inner.AddrPort())
				sensor.SetReadDeadline(time.Now().Add(time.Minute))
				buf := make([]byte, 64)
				k, _, err := sensor.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("no answer to CONNECT: %v", err)
				}
				m, err := sn.Decode(buf[:k])
				ack, ok := m.(*sn.Connack)
				if err != nil || !ok || ack.ReturnCode != tc.want {
					t.Fatalf("answer %#v, %v; want CONNACK %v", m, err, tc.want)
				}
				refused := uint64(0)
				if tc.want != sn.Accepted {
					refused = 1
				}
				if st := g.Stats(); st.IdentityRefused != refused || st.Rejected != refused || st.Clients != int64(1-refused) {
					t.Errorf("IdentityRefused, Rejected, Clients = %d, %d, %d; want %d, %d, %d",
						st.IdentityRefused, st.Rejected, st.Clients, refused, refused, 1-refused)
				}
			})
		})
	}
}

func ptr(s string) *string { return &s }
