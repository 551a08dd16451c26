// Package listener is Gannet's MQTT listener: it accepts MQTT 3.1, 3.1.1
// and 5.0 clients over TCP, TLS and WebSocket and attaches each to its
// session in the broker core (package mqttcore), so local applications on
// the edge box publish and subscribe next to the MQTT-SN sensors. Server is the whole
// API; Config is the [mqtt] table of config.toml.
//
// # What it owns and what it imports
//
// The package owns the network side of a client: accepting, the CONNECT
// dialogue (authentication, client identifiers, CONNACK), keep alive,
// inbound and outbound topic aliases, mapping packets to mqttcore.Conn
// calls and core errors to reason codes, writing deliveries, and closing
// gracefully. Sessions, queues, QoS
// state, retained messages and wills belong to the core. Framing (reading
// and writing packets, the size limit, stateless checks, the reason code a
// framing error earns) is the internal package
// mqttcore/listener/internal/framing.
//
// It imports the standard library, mqttcore, mqttcore/auth (passwords, and
// the ACL it hands the broker as its Authorizer), its internal framing
// package, mochi-mqtt's packets codec and gorilla/websocket (the bridge's
// and autopaho's WebSocket library). It never imports the gateway,
// snpacket or anything MQTT-SN. It logs through the *slog.Logger given to NewServer (connection
// events at Debug, misbehaving clients at Warn, rate-limited, its own faults
// at Error) and counts every refusal in Stats.
//
// # Goroutines
//
// Every goroutine is started through Server.goTracked, and Close waits for
// all of them:
//
//   - one accept loop per served listener (Serve for TCP and TLS; for
//     WebSocket, net/http's Serve with its own per-request goroutines, each
//     counted by handleWebSocket);
//   - per connection, a reader (serveConn; for WebSocket, the net/http
//     handler goroutine) that owns the connection's protocol state and makes
//     every mqttcore.Conn call except Next and the acknowledgement of an
//     oversized delivery; it exits when the connection ends;
//   - per connection, a writer (writeLoop) that owns the network writes
//     after CONNACK: control packets queued by the reader, then deliveries
//     pulled from the core with Conn.Next when the core calls Notify. It
//     exits when the reader stops it, when the core detaches the
//     connection, or on a write error.
//
// A connection thus costs two goroutines while it is open; a disconnected
// session costs none (it lives in the core). After a closing DISCONNECT or
// refusing CONNACK the reader stays up to close_drain_timeout longer,
// reading and discarding the client's input (graceful.go), so the client
// reads the reason before the connection closes.
//
// # Locks
//
// Server.mu guards the sets of listeners, HTTP servers and connections and
// the closed flag; client.kickMu guards the reason the core gave when it
// closed a connection; client.deferred.mu guards the acknowledgements the
// core completed for the writer to send (server_acks.go); rateLimiter.mu
// guards the Warn budget. Each is a leaf: none is held while another is
// taken, while writing to the network or while calling into the core. The
// core calls client.Notify, client.Close and client.Acked (the
// mqttcore.FrontEnd methods) possibly under its own locks; they only take
// kickMu or deferred.mu or send on a buffered channel, and never block or
// call back into the core.
package listener
