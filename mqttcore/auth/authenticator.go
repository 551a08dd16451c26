package auth

import (
	"errors"
	"fmt"
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

// Authenticator decides whether a client may connect, publish and
// subscribe. It is immutable and safe for concurrent use.
type Authenticator struct {
	passwords *Passwords // nil: no password file
	acl       *ACL       // nil: no ACL, allow everything
	anonymous bool
}

// New validates cfg and loads the files it names.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{anonymous: cfg.allowAnonymous()}
	if cfg.PasswordFile != "" {
		p, err := LoadPasswords(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		a.passwords = p
	}
	if cfg.ACLFile != "" {
		acl, err := LoadACL(cfg.ACLFile)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		a.acl = acl
	}
	return a, nil
}

// NewFrom builds an Authenticator from already parsed parts, for tests and
// for callers that load the files themselves. passwords and acl may be nil.
func NewFrom(passwords *Passwords, acl *ACL, allowAnonymous bool) *Authenticator {
	return &Authenticator{passwords: passwords, acl: acl, anonymous: allowAnonymous}
}

// Authenticate decides whether a client presenting username and password
// may connect. username "" means anonymous. With a password file, a
// username must be in it with a matching password (checked in constant
// time, see Passwords.Verify); without one, any username is accepted
// unverified.
func (a *Authenticator) Authenticate(username string, password []byte) error {
	if username == "" {
		if a.anonymous {
			return nil
		}
		return ErrAnonymousRefused
	}
	if a.passwords == nil {
		return nil
	}
	if !a.passwords.Verify(username, password) {
		return ErrBadCredentials
	}
	return nil
}

// CanPublish reports whether the client may publish to topic (see
// ACL.CanPublish); without an ACL, everything is allowed.
func (a *Authenticator) CanPublish(username, clientID, topic string) bool {
	return a.acl == nil || a.acl.CanPublish(username, clientID, topic)
}

// CanSubscribe reports whether the client may subscribe to filter (see
// ACL.CanSubscribe); without an ACL, everything is allowed.
func (a *Authenticator) CanSubscribe(username, clientID, filter string) bool {
	return a.acl == nil || a.acl.CanSubscribe(username, clientID, filter)
}
