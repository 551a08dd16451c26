package auth

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// Errors Authenticate returns. The listener maps them to CONNACK codes.
var (
	// ErrBadCredentials: unknown username or wrong password. MQTT 5 reason
	// code 0x86 (bad user name or password); MQTT 3.1.1 return code 0x04.
	ErrBadCredentials = errors.New("bad username or password")
	// ErrAnonymousRefused: the client sent no username and anonymous access
	// is refused. MQTT 5 reason code 0x87 (not authorized); MQTT 3.1.1
	// return code 0x05.
	ErrAnonymousRefused = errors.New("anonymous access refused")
)

// Authenticator decides whether a client may connect, publish, subscribe
// and receive. It implements mqttcore.Authorizer, so the one value set in
// mqttcore.Options.Authorizer and given to the MQTT listener decides for
// every client, MQTT and MQTT-SN alike. It is safe for concurrent use; its
// rules change only by Reload, which swaps them atomically.
type Authenticator struct {
	cfg       Config // the files Reload reads; zero for NewFrom
	fromFiles bool
	cur       atomic.Pointer[rules]
}

// rules is one immutable generation of an Authenticator's files.
type rules struct {
	passwords *Passwords // nil: no password file
	acl       *ACL       // nil: no ACL, allow everything
	anonymous bool
}

// New validates cfg and loads the files it names.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := load(cfg)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{cfg: cfg, fromFiles: true}
	a.cur.Store(r)
	return a, nil
}

// load reads cfg's files.
func load(cfg Config) (*rules, error) {
	r := &rules{anonymous: cfg.allowAnonymous()}
	if cfg.PasswordFile != "" {
		p, err := LoadPasswords(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		r.passwords = p
	}
	if cfg.ACLFile != "" {
		acl, err := LoadACL(cfg.ACLFile)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		r.acl = acl
	}
	return r, nil
}

// NewFrom builds an Authenticator from already parsed parts, for tests and
// for callers that load the files themselves. passwords and acl may be nil.
// Reload on it fails; Replace swaps its parts.
func NewFrom(passwords *Passwords, acl *ACL, allowAnonymous bool) *Authenticator {
	a := &Authenticator{}
	a.Replace(passwords, acl, allowAnonymous)
	return a
}

// Reload reads the password file and the ACL file again and, if both load,
// swaps them in atomically; on an error it keeps the current ones and
// returns the error (naming file and line). Connections already made stay;
// what they do from now on is decided by the new rules, including every
// message delivered on an existing subscription (mqttcore.ActionRead).
// SIGHUP handling calls it.
func (a *Authenticator) Reload() error {
	if !a.fromFiles {
		return errors.New("auth: reload: authenticator not built from files (NewFrom)")
	}
	r, err := load(a.cfg)
	if err != nil {
		return fmt.Errorf("auth: reload: %w", err)
	}
	a.cur.Store(r)
	return nil
}

// Replace swaps in already parsed parts atomically, as Reload does.
func (a *Authenticator) Replace(passwords *Passwords, acl *ACL, allowAnonymous bool) {
	a.cur.Store(&rules{passwords: passwords, acl: acl, anonymous: allowAnonymous})
}

// Authenticate decides whether a client presenting username and password
// may connect. username "" means anonymous. With a password file, a
// username must be in it with a matching password (checked in constant
// time, see Passwords.Verify); without one, any username is accepted
// unverified.
func (a *Authenticator) Authenticate(username string, password []byte) error {
	r := a.cur.Load()
	if username == "" {
		if r.anonymous {
			return nil
		}
		return ErrAnonymousRefused
	}
	if r.passwords == nil {
		return nil
	}
	if !r.passwords.Verify(username, password) {
		return ErrBadCredentials
	}
	return nil
}

// Allow implements mqttcore.Authorizer with the ACL (see ACL.Allow);
// without an ACL, everything is allowed. It does not allocate.
func (a *Authenticator) Allow(user, clientID string, action mqttcore.Action, topic string) bool {
	acl := a.cur.Load().acl
	return acl == nil || acl.Allow(user, clientID, action, topic)
}

// CanPublish reports whether the client may publish to topic (see
// ACL.CanPublish); without an ACL, everything is allowed.
func (a *Authenticator) CanPublish(username, clientID, topic string) bool {
	return a.Allow(username, clientID, mqttcore.ActionPublish, topic)
}

// CanSubscribe reports whether the client may subscribe to filter (see
// ACL.CanSubscribe); without an ACL, everything is allowed.
func (a *Authenticator) CanSubscribe(username, clientID, filter string) bool {
	return a.Allow(username, clientID, mqttcore.ActionSubscribe, filter)
}
