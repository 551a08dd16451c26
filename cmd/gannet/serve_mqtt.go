package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// mqttConfig is the [mqtt] section: the MQTT 3.1.1/5.0 listener through
// which local applications reach the broker core. Its keys are those of
// listener.Config (address, max_packet_size, timeouts, [mqtt.tls],
// [mqtt.websocket], [mqtt.auth]; see docs/configuration.md) plus
// disabled. The zero value is a plain TCP listener on 127.0.0.1:1883 with
// anonymous access and no ACL; a zero max_packet_size means the [broker]
// one.
type mqttConfig struct {
	// Disabled turns the MQTT listener off; the broker core still serves
	// the gateway and the bridges.
	Disabled bool `toml:"disabled"`
	listener.Config
}

// startMQTT opens the MQTT listeners cfg names in front of broker and
// serves them until stop is called. stop closes the listeners and every
// client connection (their sessions are detached as lost, so wills are
// published) and waits for the server's goroutines; call it before the
// broker closes. With cfg.Disabled nothing is opened and stop does
// nothing and srv is nil.
func startMQTT(ctx context.Context, cfg mqttConfig, broker *mqttcore.Broker, log *slog.Logger) (srv *listener.Server, stop func() error, err error) {
	if cfg.Disabled {
		log.Info("mqtt listener disabled")
		return nil, func() error { return nil }, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("mqtt listener: %w", err)
	}
	sc := cfg.Config
	if sc.MaxPacketSize == 0 {
		// Unset in [mqtt]: the broker's limit ([broker] max_packet_size).
		sc.MaxPacketSize = broker.Config().MaxPacketSize
	}
	// serve made the [mqtt.auth] Authenticator the broker's Authorizer:
	// the listener checks passwords with that same one (nil: its own).
	authn, _ := broker.Authorizer().(*auth.Authenticator)
	srv, err = listener.NewServer(broker, sc, authn, log)
	if err != nil {
		return nil, nil, err
	}
	if err := srv.Listen(); err != nil {
		_ = srv.Close()
		return nil, nil, err
	}
	return srv, srv.Close, nil
}
