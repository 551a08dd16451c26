package radio

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMulticastOnLoopback joins a group on "lo" with loopback on and checks
// that a datagram sent to the group by one member is read by another. Many
// systems (containers included) leave "lo" without the MULTICAST flag; then
// the join or the delivery fails and the test skips saying so.
func TestMulticastOnLoopback(t *testing.T) {
	port := freeUDPPort(t)
	for _, addr := range []string{"239.255.0.186", "ff12::186"} {
		group := net.JoinHostPort(addr, strconv.Itoa(port))
		t.Run(group, func(t *testing.T) {
			cfg := MulticastConfig{Group: group, Interface: "lo", Loopback: true}
			a, err := ListenMulticast(cfg)
			if err != nil {
				t.Skipf("cannot join %s on lo here (%v); `ip link set lo multicast on` enables this test", group, err)
			}
			defer a.Close()
			b, err := ListenMulticast(cfg)
			if err != nil {
				t.Skipf("cannot join %s on lo a second time (%v)", group, err)
			}
			defer b.Close()
			if _, err := a.WriteToUDPAddrPort([]byte("ADVERTISE"), a.Group()); err != nil {
				t.Skipf("cannot send to %s on lo here (%v); `ip link set lo multicast on` enables this test", group, err)
			}
			b.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 64)
			n, _, err := b.ReadFromUDPAddrPort(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Skipf("multicast to %s is not delivered on lo here; `ip link set lo multicast on` enables this test", group)
			}
			if err != nil || string(buf[:n]) != "ADVERTISE" {
				t.Fatalf("member read %q, %v; want ADVERTISE", buf[:n], err)
			}
		})
	}
}

// freeUDPPort returns a UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func TestMulticastConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  MulticastConfig
		want string
	}{
		{MulticastConfig{Group: "224.0.1.186:1883"}, ""},
		{MulticastConfig{Group: "[ff02::1:186]:1883", Radius: 255}, ""},
		{MulticastConfig{Group: "10.0.0.1:1883"}, "not a multicast address"},
		{MulticastConfig{Group: "224.0.1.186"}, "want group:port"},
		{MulticastConfig{Group: "224.0.1.186:0"}, "port is required"},
		{MulticastConfig{Group: "224.0.1.186:1883", Radius: 256}, "radius"},
		{MulticastConfig{Group: "224.0.1.186:1883", BatchSize: -1}, "batch_size"},
	} {
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v; want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestMulticastUnknownInterface(t *testing.T) {
	_, err := ListenMulticast(MulticastConfig{Group: "239.255.0.186:41884", Interface: "no-such-if0"})
	var nerr *net.OpError
	if err == nil || !strings.Contains(err.Error(), "no-such-if0") && !errors.As(err, &nerr) {
		t.Fatalf("ListenMulticast on a missing interface = %v; want an error naming it", err)
	}
}
