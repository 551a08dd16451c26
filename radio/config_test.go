package radio

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestListenerConfigValidate(t *testing.T) {
	on := true
	psk := DTLSConfig{PSKFile: "psk"}
	for _, tc := range []struct {
		name string
		cfg  ListenerConfig
		want string // substring of the error; "" means valid
	}{
		{"plain udp", ListenerConfig{Address: "127.0.0.1:1884"}, ""},
		{"udp6 with batch and buffers", ListenerConfig{Network: "udp6", Address: "[::]:1884", BatchSize: 64, ReadBuffer: 1 << 20, WriteBuffer: 1 << 20}, ""},
		{"port only", ListenerConfig{Network: "udp4", Address: ":1884"}, ""},
		{"dtls psk", ListenerConfig{Network: "dtls", Address: ":8884", DTLS: psk}, ""},
		{"dtls certs with ca", ListenerConfig{Network: "dtls", Address: ":8884", DTLS: DTLSConfig{CertFile: "c", KeyFile: "k", CAFile: "ca", ClientAuth: "request"}}, ""},
		{"dtls map", ListenerConfig{Network: "dtls", Address: ":8884", DTLS: DTLSConfig{PSKFile: "p", IdentityRule: "map", IdentityMap: map[string]string{"a": "b"}, ConnectionID: &on, HandshakeTimeout: time.Second}}, ""},
		{"multicast", ListenerConfig{Network: "multicast", Address: "239.255.0.186:1885", Multicast: MulticastOptions{Interface: "eth0", Radius: 2}}, ""},
		{"multicast on a unicast address", ListenerConfig{Network: "multicast", Address: "10.0.0.1:1885"}, "not a multicast address"},
		{"multicast options on udp", ListenerConfig{Address: ":1", Multicast: MulticastOptions{Radius: 2}}, "set network = \"multicast\""},
		{"multicast radius", ListenerConfig{Network: "multicast", Address: "239.255.0.186:1885", Multicast: MulticastOptions{Radius: 300}}, "radius"},
		{"unknown network", ListenerConfig{Network: "tcp", Address: ":1"}, "listen.network"},
		{"no address", ListenerConfig{}, "listen.address is required"},
		{"bad address", ListenerConfig{Address: "1884"}, "listen.address"},
		{"bad port", ListenerConfig{Address: ":99999"}, "port"},
		{"negative batch", ListenerConfig{Address: ":1", BatchSize: -1}, "batch_size"},
		{"huge batch", ListenerConfig{Address: ":1", BatchSize: MaxBatchSize + 1}, "batch_size"},
		{"tiny datagram", ListenerConfig{Address: ":1", MaxDatagram: 8}, "max_datagram"},
		{"negative read buffer", ListenerConfig{Address: ":1", ReadBuffer: -1}, "read_buffer"},
		{"negative write buffer", ListenerConfig{Address: ":1", WriteBuffer: -1}, "write_buffer"},
		{"dtls keys on udp", ListenerConfig{Address: ":1", DTLS: psk}, "set network = \"dtls\""},
		{"dtls without credentials", ListenerConfig{Network: "dtls", Address: ":1"}, "psk_file or cert_file"},
		{"cert without key", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{CertFile: "c"}}, "go together"},
		{"client auth without ca", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: "require"}}, "needs ca_file"},
		{"bad client auth", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: "maybe"}}, "client_auth"},
		{"ca without cert", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", CAFile: "ca"}}, "ca_file needs cert_file"},
		{"map without table", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", IdentityRule: "map"}}, "needs identity_map"},
		{"table without map", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", IdentityMap: map[string]string{"a": "b"}}}, "not \"map\""},
		{"empty map entry", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", IdentityRule: "map", IdentityMap: map[string]string{"a": ""}}}, "empty identity"},
		{"bad rule", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", IdentityRule: "prefix"}}, "identity_rule"},
		{"negative handshake timeout", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", HandshakeTimeout: -1}}, "handshake_timeout"},
		{"negative max handshakes", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", MaxHandshakes: -1}}, "max_handshakes"},
		{"negative idle", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", IdleTimeout: -1}}, "idle_timeout"},
		{"negative max sessions", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", MaxSessions: -1}}, "max_sessions"},
		{"negative handshake rate", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", HandshakeRate: -1}}, "handshake_rate"},
		{"negative read queue", ListenerConfig{Network: "dtls", Address: ":1", DTLS: DTLSConfig{PSKFile: "p", ReadQueue: -1}}, "read_queue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidConfig)):
				t.Fatalf("Validate() = %v; want an ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
}

func TestParsePSKs(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		ids            int
	}{
		{"comments and blanks", "# keys\n\nsensor-1:0011\n  sensor-2 : aabb \n", "", 2},
		{"no colon", "sensor-1\n", "f:1: want identity:hexkey", 0},
		{"empty identity", ":0011\n", "f:1: want identity:hexkey", 0},
		{"bad hex", "a:zz\n", "f:1: identity \"a\": key must be", 0},
		{"empty key", "a:\n", "key must be", 0},
		{"duplicate", "a:00\na:11\n", "f:2: identity \"a\" appears twice", 0},
		{"nothing", "# only a comment\n", "no identity", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePSKs("f", []byte(tc.in))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("parsePSKs(%q) = %v; want error containing %q", tc.in, err, tc.want)
				}
				return
			}
			if err != nil || len(got) != tc.ids {
				t.Fatalf("parsePSKs(%q) = %v, %v; want %d identities", tc.in, got, err, tc.ids)
			}
		})
	}
}
