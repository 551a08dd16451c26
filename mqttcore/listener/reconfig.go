package listener

import "fmt"

// Changing the limits of a running server (a configuration reload).
//
// The server reads its Config through one atomic pointer (Server.cfg);
// each connection takes one snapshot of it when it is accepted, so what
// its CONNACK announces (Maximum Packet Size, Topic Alias Maximum, Server
// Keep Alive) is what it is held to for its life. SetConfig swaps the
// pointer:
//
//   - max_packet_size, connect_timeout, topic_alias_maximum,
//     outbound_topic_alias_maximum, server_keep_alive: connections
//     accepted from then on; established ones keep what they were told.
//   - max_connections: the next accept; no connection is closed.
//   - write_timeout, close_drain_timeout: the next write, the next close.
//
// The listeners' addresses, [mqtt.tls], [mqtt.websocket] and [mqtt.auth]
// are bound or built at Start: SetConfig keeps their running values and
// names them. The WebSocket listener's HTTP handshake keeps the
// connect_timeout it was started with.

// conf returns the configuration in force: one atomic load.
func (s *Server) conf() *Config { return s.cfg.Load() }

// Config returns the configuration in force, defaults filled in.
func (s *Server) Config() Config { return *s.conf() }

// SetConfig applies cfg's limits to the running server (see above). An
// invalid cfg is refused whole. The keys it cannot change keep their
// running values and are returned by their config.toml names (relative to
// [mqtt]). Not safe for concurrent use with itself.
func (s *Server) SetConfig(cfg Config) (kept []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt listener: set config: %w", err)
	}
	next := cfg.withDefaults()
	old := s.conf()
	keep := func(name string, differ bool) {
		if differ {
			kept = append(kept, name)
		}
	}
	keep("address", next.Address != old.Address)
	keep("tls", next.TLS != old.TLS)
	keep("websocket", !sameWebSocket(next.WebSocket, old.WebSocket))
	keep("auth", next.Auth != old.Auth)
	next.Address, next.TLS, next.WebSocket, next.Auth = old.Address, old.TLS, old.WebSocket, old.Auth
	s.cfg.Store(&next)
	return kept, nil
}

func sameWebSocket(a, b WebSocketConfig) bool {
	if a.Address != b.Address || a.Path != b.Path || a.TLS != b.TLS || len(a.OriginPatterns) != len(b.OriginPatterns) {
		return false
	}
	for i := range a.OriginPatterns {
		if a.OriginPatterns[i] != b.OriginPatterns[i] {
			return false
		}
	}
	return true
}
