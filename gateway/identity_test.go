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
				synctest.Wait() // the loop finishes with the CONNECT after answering it
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

// TestMigrationIdentityBinding: with address_migration on, a sleeping
// sensor may wake from a new address with PINGREQ + client id, but on an
// authenticating link only a session bound to that client id may do so.
func TestMigrationIdentityBinding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		g, err := gateway.New(gateway.Config{Loops: 1, AddressMigration: []string{"*"}}, b, gateway.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n := memlink.New()
		inner, _ := n.Listen("10.0.0.1:8884")
		first, _ := n.Listen("10.0.0.2:5000")
		thief, _ := n.Listen("10.0.0.3:5000")
		owner, _ := n.Listen("10.0.0.4:5000")
		link := &idLink{Link: inner, ids: map[netip.AddrPort]string{
			first.AddrPort(): "sensor-1", thief.AddrPort(): "sensor-2", owner.AddrPort(): "sensor-1",
		}}
		served := make(chan error, 1)
		go func() { served <- g.Serve(link) }()
		defer func() { g.Close(); <-served }()

		exchange := func(from *memlink.Link, m sn.Message) sn.Message {
			t.Helper()
			frame, _ := m.AppendBinary(nil)
			from.WriteToUDPAddrPort(frame, inner.AddrPort())
			from.SetReadDeadline(time.Now().Add(time.Minute))
			buf := make([]byte, 64)
			k, _, err := from.ReadFromUDPAddrPort(buf)
			if err != nil {
				return nil
			}
			r, _ := sn.Decode(buf[:k])
			return r
		}
		if r, ok := exchange(first, &sn.Connect{Duration: 60, ClientID: []byte("sensor-1")}).(*sn.Connack); !ok || r.ReturnCode != sn.Accepted {
			t.Fatalf("CONNECT: %#v", r)
		}
		if _, ok := exchange(first, &sn.Disconnect{HasDuration: true, Duration: 600}).(*sn.Disconnect); !ok {
			t.Fatal("no DISCONNECT answering the sleep request")
		}
		r := exchange(thief, &sn.PingReq{ClientID: []byte("sensor-1")})
		if _, ok := r.(*sn.PingResp); ok {
			t.Fatal("a session bound to sensor-2 woke sensor-1 from its address")
		}
		synctest.Wait()
		if st := g.Stats(); st.Migrated != 0 || st.IdentityRefused != 1 {
			t.Errorf("after the thief: Migrated, IdentityRefused = %d, %d; want 0, 1", st.Migrated, st.IdentityRefused)
		}
		if _, ok := exchange(owner, &sn.PingReq{ClientID: []byte("sensor-1")}).(*sn.PingResp); !ok {
			t.Fatal("sensor-1's own new session could not wake it")
		}
		synctest.Wait()
		if st := g.Stats(); st.Migrated != 1 {
			t.Errorf("Migrated = %d; want 1", st.Migrated)
		}
	})
}
