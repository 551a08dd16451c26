package radio

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// MulticastConfig configures a discovery link: the group sensors send
// SEARCHGW to and the gateway sends ADVERTISE and GWINFO to.
type MulticastConfig struct {
	// Group is "group:port", e.g. "224.0.1.186:1883" or "[ff02::1:186]:1883".
	// It must be a multicast address.
	Group string `toml:"group"`
	// Interface names the interface to join on and send from ("": the
	// system's choice). IPv6 link-local groups need one.
	Interface string `toml:"interface"`
	// Radius is the IPv4 TTL or IPv6 hop limit of sent datagrams, MQTT-SN's
	// broadcast radius (0: 1, the local link only; at most 255).
	Radius int `toml:"radius"`
	// Loopback delivers the link's own datagrams to listeners on this host
	// (default off; tests turn it on).
	Loopback bool `toml:"loopback"`
	// BatchSize, MaxDatagram and ReadBuffer are as in ListenerConfig.
	BatchSize   int `toml:"batch_size"`
	MaxDatagram int `toml:"max_datagram"`
	ReadBuffer  int `toml:"read_buffer"`
}

// Validate reports the first bad value in c.
func (c *MulticastConfig) Validate() error {
	g, err := netip.ParseAddrPort(c.Group)
	if err != nil {
		return invalid("multicast.group = %q: want group:port: %v", c.Group, err)
	}
	if !g.Addr().IsMulticast() {
		return invalid("multicast.group = %q: %v is not a multicast address", c.Group, g.Addr())
	}
	if g.Port() == 0 {
		return invalid("multicast.group = %q: a port is required", c.Group)
	}
	if c.Radius < 0 || c.Radius > 255 {
		return invalid("multicast.radius = %d: must be 0 (default 1) to 255", c.Radius)
	}
	if c.BatchSize < 0 || c.BatchSize > MaxBatchSize {
		return invalid("multicast batch_size = %d: must be 0 (default) to %d", c.BatchSize, MaxBatchSize)
	}
	if c.MaxDatagram != 0 && (c.MaxDatagram < 16 || c.MaxDatagram > 65535) {
		return invalid("multicast max_datagram = %d: must be 0 (default) or 16..65535", c.MaxDatagram)
	}
	if c.ReadBuffer < 0 {
		return invalid("multicast read_buffer = %d: must not be negative", c.ReadBuffer)
	}
	return nil
}

// MulticastLink is a UDP link bound to a multicast group's port that has
// joined the group. Writes to Group() reach every member within Radius;
// writes to a unicast address (a GWINFO answer) go to that address alone.
type MulticastLink struct {
	*UDPLink
	group netip.AddrPort
}

// ListenMulticastListener opens the multicast link of a [[listen]] entry
// with network = "multicast".
func ListenMulticastListener(cfg ListenerConfig) (*MulticastLink, error) {
	if cfg.network() != "multicast" {
		return nil, fmt.Errorf("radio: listen %s: ListenMulticastListener needs network = \"multicast\", not %q", cfg.Address, cfg.network())
	}
	return ListenMulticast(cfg.multicastConfig())
}

// ListenMulticast joins cfg.Group on cfg.Interface.
func ListenMulticast(cfg MulticastConfig) (*MulticastLink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	group := netip.MustParseAddrPort(cfg.Group)
	var ifi *net.Interface
	if cfg.Interface != "" {
		var err error
		if ifi, err = net.InterfaceByName(cfg.Interface); err != nil {
			return nil, fmt.Errorf("radio: multicast %s: interface %q: %w", cfg.Group, cfg.Interface, err)
		}
	}
	network := "udp4"
	if group.Addr().Is6() {
		network = "udp6"
	}
	conn, err := net.ListenMulticastUDP(network, ifi, net.UDPAddrFromAddrPort(group))
	if err != nil {
		return nil, fmt.Errorf("radio: join multicast %s on %q: %w", cfg.Group, cfg.Interface, err)
	}
	radius := cfg.Radius
	if radius == 0 {
		radius = 1
	}
	fail := func(op string, err error) (*MulticastLink, error) {
		conn.Close()
		return nil, fmt.Errorf("radio: multicast %s: %s: %w", cfg.Group, op, err)
	}
	if network == "udp4" {
		p := ipv4.NewPacketConn(conn)
		if err := p.SetMulticastTTL(radius); err != nil {
			return fail("set TTL", err)
		}
		if err := p.SetMulticastLoopback(cfg.Loopback); err != nil {
			return fail("set loopback", err)
		}
		if ifi != nil {
			if err := p.SetMulticastInterface(ifi); err != nil {
				return fail("set interface", err)
			}
		}
	} else {
		p := ipv6.NewPacketConn(conn)
		if err := p.SetMulticastHopLimit(radius); err != nil {
			return fail("set hop limit", err)
		}
		if err := p.SetMulticastLoopback(cfg.Loopback); err != nil {
			return fail("set loopback", err)
		}
		if ifi != nil {
			if err := p.SetMulticastInterface(ifi); err != nil {
				return fail("set interface", err)
			}
		}
	}
	u, err := newUDPLink(conn, ListenerConfig{
		Network: network, Address: cfg.Group, BatchSize: cfg.BatchSize,
		MaxDatagram: cfg.MaxDatagram, ReadBuffer: cfg.ReadBuffer,
	})
	if err != nil {
		return nil, err
	}
	return &MulticastLink{UDPLink: u, group: group}, nil
}

// Group returns the group address, the destination for ADVERTISE and
// multicast GWINFO.
func (m *MulticastLink) Group() netip.AddrPort { return m.group }
