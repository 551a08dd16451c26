package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/radio"
)

// reloader is a link whose credentials can be reread (radio.DTLSLink).
type reloader interface {
	Reload() error
}

// openLinks opens one radio link per [[listen]] entry: plain UDP with
// batched reads, DTLS, or a multicast discovery link. On error it closes
// what it opened.
func openLinks(cfgs []radio.ListenerConfig, log *slog.Logger) ([]gateway.Link, error) {
	links := make([]gateway.Link, 0, len(cfgs))
	fail := func(err error) ([]gateway.Link, error) {
		for _, l := range links {
			l.Close()
		}
		return nil, err
	}
	for i, c := range cfgs {
		var (
			link gateway.Link
			err  error
		)
		switch c.Network {
		case "dtls":
			link, err = radio.ListenDTLS(c, log.With("listener", c.Address))
		case "multicast":
			link, err = radio.ListenMulticastListener(c)
		default:
			var u *radio.UDPLink
			u, err = radio.ListenUDP(c)
			if err == nil {
				st := u.Stats()
				rb, wb := c.Buffers()
				if st.ReadBuffer < rb {
					log.Warn("the kernel gave a smaller receive buffer than read_buffer asks (raise net.core.rmem_max)",
						"address", c.Address, "read_buffer", rb, "effective", st.ReadBuffer)
				}
				if st.WriteBuffer < wb {
					log.Warn("the kernel gave a smaller send buffer than write_buffer asks (raise net.core.wmem_max)",
						"address", c.Address, "write_buffer", wb, "effective", st.WriteBuffer)
				}
				link = u
			}
		}
		if err != nil {
			return fail(fmt.Errorf("listen[%d] %s: %w", i, c.Address, err))
		}
		network := c.Network
		if network == "" {
			network = "udp"
		}
		log.Info("serving MQTT-SN", "network", network, "address", link.LocalAddr().String())
		links = append(links, link)
	}
	return links, nil
}

// reloadLinks rereads the credentials of every link that has them. A
// failed reload keeps the link's previous credentials.
func reloadLinks(links []gateway.Link, log *slog.Logger) error {
	var errs []error
	for _, l := range links {
		if r, ok := l.(reloader); ok {
			if err := r.Reload(); err != nil {
				log.Error("reload failed; previous credentials stay in force", "address", l.LocalAddr().String(), "err", err)
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
