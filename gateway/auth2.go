package gateway

import (
	"bytes"
	"encoding/binary"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// Authentication of 2.0 clients (CSD01 4.11, digest C.5 AUTH). A 2.0
// CONNECT may carry an authentication method and its data; Gannet accepts
// two single-step methods, both a user name and a password checked against
// the same password file as the MQTT listener's ([mqtt.auth], through
// Options.Authenticator):
//
//   - "PLAIN": SASL PLAIN (RFC 4616), authzid NUL authcid NUL password; an
//     authorization identity other than the user itself is refused.
//   - "MQTT-BASIC": CSD01's mapping of MQTT's user name and password, each
//     with a two-octet length.
//
// The authenticated user name is the client's ACL user (authorize.go);
// without authentication the ACL user is found as for 1.2 (the DTLS
// identity, else the client id). Refusals are CONNACK reason codes: 0x8C
// for an unknown method (or when the gateway has no password file to check
// against: it never accepts credentials it cannot verify), 0x86 for a
// wrong user name or password or malformed method data. Multi-step methods
// (AUTH 0x18) are not offered; a client may re-authenticate after CONNACK
// (AUTH 0x19) as the same user.

// Authenticator checks a user name and password. mqttcore/auth's
// Authenticator (the [mqtt.auth] password file) implements it; its
// Authenticate must be safe for concurrent use.
type Authenticator interface {
	Authenticate(username string, password []byte) error
}

// The authentication methods a 2.0 CONNECT may name.
const (
	authPlain = "PLAIN"
	authBasic = "MQTT-BASIC"
)

// authenticate checks a CONNECT's or AUTH's method and data, returning the
// authenticated user name, or the reason code that refuses it.
func (g *Gateway) authenticate(method, data []byte) (user string, rc sn.ReasonCode) {
	var u, p []byte
	var ok bool
	switch string(method) {
	case authPlain:
		u, p, ok = saslPlain(data)
	case authBasic:
		u, p, ok = mqttBasic(data)
	default:
		return "", sn.BadAuthenticationMethod
	}
	a := g.opts.Authenticator
	if a == nil {
		return "", sn.BadAuthenticationMethod // nothing to check the password against
	}
	if !ok || len(u) == 0 {
		return "", sn.BadUserNameOrPassword
	}
	if err := a.Authenticate(string(u), p); err != nil {
		return "", sn.BadUserNameOrPassword
	}
	return string(u), sn.Success
}

// saslPlain splits SASL PLAIN data: [authzid] NUL authcid NUL passwd.
func saslPlain(b []byte) (user, password []byte, ok bool) {
	authz, rest, ok := bytes.Cut(b, []byte{0})
	if !ok {
		return nil, nil, false
	}
	user, password, ok = bytes.Cut(rest, []byte{0})
	if !ok || len(authz) > 0 && !bytes.Equal(authz, user) {
		return nil, nil, false
	}
	return user, password, true
}

// mqttBasic splits MQTT-BASIC data: two-octet length and user name,
// two-octet length and password, nothing after.
func mqttBasic(b []byte) (user, password []byte, ok bool) {
	field := func() ([]byte, bool) {
		if len(b) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, false
		}
		f := b[2 : 2+n]
		b = b[2+n:]
		return f, true
	}
	user, ok1 := field()
	password, ok2 := field()
	return user, password, ok1 && ok2 && len(b) == 0
}

// onAuth handles AUTH from a connected client: re-authentication (0x19)
// as the same user is answered AUTH 0x00; anything else ends the virtual
// connection (a failed re-authentication with 0x86, an AUTH Gannet never
// asked for with 0x82).
func (c *client) onAuth(m *sn.Auth) {
	if m.ReasonCode != sn.ReAuthenticate || c.conn == nil {
		c.protocolError(sn.ProtocolError, "unexpected AUTH")
		return
	}
	user, rc := c.l.g.authenticate(m.Method, m.Data)
	if rc == sn.Success && user != c.v2().user {
		rc = sn.NotAuthorized // the core connection's ACL user cannot change
	}
	if rc != sn.Success {
		c.l.g.stats.authRefused.Add(1)
		c.protocolError(rc, "re-authentication refused")
		return
	}
	c.l.tx2.auth = sn.Auth{PacketID: m.PacketID, ReasonCode: sn.Success, Method: m.Method}
	c.sendV2(&c.l.tx2.auth)
}
