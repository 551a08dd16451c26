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
// (AUTH 0x19) as the same user. The checks run off the event loops (below).

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

// The password check (PBKDF2, bcrypt or argon2id: milliseconds to tens of
// milliseconds of CPU) never runs on an event loop, where it would hold up
// every sensor of the loop: a CONNECT or AUTH with authentication becomes
// an authJob for the gateway's auth workers (one per loop), through a queue
// of max_pending_auth; the verdict is posted back to the loop, which goes
// on with the CONNECT (authChecked). Until then nothing changes for the
// sender: a connected client stays connected, a new one has no state (its
// other packets get DISCONNECT 0xF4). A full queue refuses the CONNECT
// with 0x89 "server busy", counted (LimitPendingAuth).

// authJob is one password check, from a loop to a worker and back.
type authJob struct {
	l      *loop
	key    clientKey
	node   []byte // owned; nil for a direct sender
	packet []byte // the CONNECT, encoded (owned); nil for a re-authentication
	method []byte // owned
	data   []byte // owned
	// For a re-authentication (AUTH 0x19): the client and its AUTH.
	clientID string
	packetID uint16
	// paho: the CONNECT came in Eclipse Paho's 0xFD forwarder envelope.
	paho bool
	// The worker's verdict.
	user string
	rc   sn.ReasonCode
}

// authWorker checks passwords until the gateway closes.
func (g *Gateway) authWorker() {
	for {
		select {
		case j := <-g.authq:
			j.user, j.rc = g.authenticate(j.method, j.data)
			j.l.post(coreEvent{auth: j})
		case <-g.done:
			return
		}
	}
}

// queueAuth hands j to a worker; false when max_pending_auth checks wait
// already (counted and logged; the caller refuses).
func (l *loop) queueAuth(j *authJob) bool {
	select {
	case l.g.authq <- j:
		return true
	default:
		l.g.stats.rejected.Add(1)
		l.g.limitHit(LimitPendingAuth, j.clientID, j.key.addr, nil)
		return false
	}
}

// ownedNode copies a node id, keeping nil (direct) apart from empty.
func ownedNode(node []byte) []byte {
	if node == nil {
		return nil
	}
	return append([]byte{}, node...)
}

// connectAuthV2 queues the password check of CONNECT m from key (and
// node); the CONNECT goes on in authChecked.
func (l *loop) connectAuthV2(key clientKey, node []byte, m *sn.ConnectV2) {
	raw, err := m.AppendBinary(nil)
	if err != nil {
		l.g.stats.malformed.Add(1) // it decoded, so it encodes: not reached
		return
	}
	j := &authJob{l: l, key: key, node: ownedNode(node), packet: raw,
		method: clone(m.AuthMethod), data: clone(m.AuthData), clientID: string(m.ClientID), paho: node != nil && l.pahoReply}
	if !l.queueAuth(j) {
		l.tx2.connack = sn.ConnackV2{PacketID: m.PacketID, ReasonCode: sn.ServerBusy}
		l.sendToNodeV2(key, node, node != nil && l.pahoReply, &l.tx2.connack)
	}
}

// authChecked goes on with the CONNECT or AUTH of j, now that its password
// was checked.
func (l *loop) authChecked(j *authJob) {
	l.pahoReply = j.paho // answers go in the form the CONNECT came in
	defer func() { l.pahoReply = false }()
	c := l.lookup(j.key, j.node)
	if j.packet == nil {
		l.reauthChecked(c, j)
		return
	}
	m, err := sn.DecodeV2(j.packet)
	cm, ok := m.(*sn.ConnectV2)
	if err != nil || !ok {
		return // encoded by connectAuthV2 from a decoded CONNECT: not reached
	}
	if j.rc != sn.Success {
		l.g.stats.authRefused.Add(1)
		l.g.stats.rejected.Add(1)
		l.g.log.Debug("CONNECT authentication refused", "remote", j.key.addr, "client_id", j.clientID, "reason", j.rc)
		l.tx2.connack = sn.ConnackV2{PacketID: cm.PacketID, ReasonCode: j.rc}
		l.sendToNodeV2(j.key, j.node, j.paho, &l.tx2.connack)
		return // a client at key keeps its connection (mqttsn-2.md G2-9)
	}
	if c != nil && !c.isV2 {
		c.lose("CONNECT in MQTT-SN 2.0") // switchVersion
		c = nil
	}
	if c == nil {
		l.startV2(j.key, j.node, cm, j.user)
		return
	}
	c.connectChecked(cm, j.user)
	c.checkState()
}

// onAuth handles AUTH from a connected client: re-authentication (0x19)
// as the same user is answered AUTH 0x00 once its password is checked
// (reauthChecked); anything else ends the virtual connection (an AUTH
// Gannet never asked for: 0x82; no place in the check queue: 0x89).
func (c *client) onAuth(m *sn.Auth) {
	if m.ReasonCode != sn.ReAuthenticate || c.conn == nil {
		c.protocolError(sn.ProtocolError, "unexpected AUTH")
		return
	}
	j := &authJob{l: c.l, key: c.key, node: c.ownNodeID(), method: clone(m.Method), data: clone(m.Data),
		clientID: c.id, packetID: m.PacketID}
	if !c.l.queueAuth(j) {
		c.protocolError(sn.ServerBusy, "re-authentication queue full")
	}
}

// reauthChecked answers a re-authentication of c, whose password was
// checked: AUTH 0x00 as the same user, else the connection ends (0x86, or
// 0x87 for another user: the core connection's ACL user cannot change).
func (l *loop) reauthChecked(c *client, j *authJob) {
	if c == nil || !c.isV2 || c.id != j.clientID || c.conn == nil {
		return // gone or replaced meanwhile
	}
	rc := j.rc
	if rc == sn.Success && j.user != c.v2.user() {
		rc = sn.NotAuthorized
	}
	if rc != sn.Success {
		c.l.g.stats.authRefused.Add(1)
		c.protocolError(rc, "re-authentication refused")
		return
	}
	c.l.tx2.auth = sn.Auth{PacketID: j.packetID, ReasonCode: sn.Success, Method: j.method}
	c.sendV2(&c.l.tx2.auth)
}
