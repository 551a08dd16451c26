package snclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// GatewayInfo describes a gateway found by SearchGateway.
type GatewayInfo struct {
	// ID is the gateway id from GWINFO or ADVERTISE.
	ID uint8
	// Addr is the GwAdd field of a GWINFO sent by another client on the
	// gateway's behalf (opaque, network-specific); nil when the gateway
	// answered itself.
	Addr []byte
	// From is the address the answer came from.
	From net.Addr
}

// SearchGateway sends SEARCHGW with the given broadcast radius to addr (a
// broadcast, multicast or unicast address) over pc and waits for a GWINFO
// (or an ADVERTISE) from any sender. Unanswered, it repeats SEARCHGW after
// interval, then after twice that, and so on (MQTT-SN 1.2 §6.1); ctx bounds
// the search. Zero interval means DefaultRetryInterval. SearchGateway runs
// on the caller's goroutine, uses pc's read deadline while it runs, and does
// not close pc.
func SearchGateway(ctx context.Context, pc net.PacketConn, addr net.Addr, radius uint8, interval time.Duration) (GatewayInfo, error) {
	const op = "snclient: search gateway"
	if interval <= 0 {
		interval = DefaultRetryInterval
	}
	req, err := (&snpacket.SearchGW{Radius: radius}).AppendBinary(nil)
	if err != nil {
		return GatewayInfo{}, fmt.Errorf("%s: %w", op, err)
	}
	// Cancellation interrupts the blocking read through the deadline.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		pc.SetReadDeadline(time.Unix(1, 0))
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
		pc.SetReadDeadline(time.Time{})
	}()

	buf := make([]byte, DefaultMaxMessageSize)
	var dec snpacket.Decoder
	for {
		if _, err := pc.WriteTo(req, addr); err != nil {
			return GatewayInfo{}, fmt.Errorf("%s: send SEARCHGW to %v: %w", op, addr, err)
		}
		if err := pc.SetReadDeadline(time.Now().Add(interval)); err != nil {
			return GatewayInfo{}, fmt.Errorf("%s: set read deadline: %w", op, err)
		}
		for {
			if err := ctx.Err(); err != nil {
				return GatewayInfo{}, fmt.Errorf("%s: %w", op, err)
			}
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break // repeat SEARCHGW
			}
			if err != nil {
				return GatewayInfo{}, fmt.Errorf("%s: read: %w", op, err)
			}
			m, err := dec.Decode(buf[:n])
			if err != nil {
				continue
			}
			switch m := m.(type) {
			case *snpacket.GWInfo:
				return GatewayInfo{ID: m.GatewayID, Addr: append([]byte(nil), m.GatewayAddr...), From: from}, nil
			case *snpacket.Advertise:
				return GatewayInfo{ID: m.GatewayID, From: from}, nil
			}
		}
		interval *= 2
	}
}
