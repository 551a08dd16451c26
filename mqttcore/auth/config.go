package auth

import (
	"errors"
	"fmt"
)

// Anonymous access policies for Config.Anonymous.
const (
	// AnonymousDefault ("") allows anonymous clients when there is no
	// password file and refuses them when there is one.
	AnonymousDefault = ""
	// AnonymousAllow allows clients that send no username.
	AnonymousAllow = "allow"
	// AnonymousDeny refuses clients that send no username.
	AnonymousDeny = "deny"
)

// Config configures authentication and authorisation for the MQTT
// listener. The zero value means: no password file, anonymous clients
// allowed, no ACL (every client may publish and subscribe to everything).
// The listener binds to localhost by default, which is what makes that
// default safe.
type Config struct {
	// PasswordFile is the path of the password file (see ParsePasswords).
	// Empty means none: a username is then taken as given, unverified, so
	// user sections of the ACL protect nothing without a password file.
	PasswordFile string `toml:"password_file"`
	// Anonymous is the policy for clients that send no username (or an
	// empty one): AnonymousDefault, AnonymousAllow or AnonymousDeny.
	Anonymous string `toml:"anonymous"`
	// ACLFile is the path of the topic ACL file (see ParseACL). Empty means
	// no ACL: everything is allowed. With an ACL, whatever it does not
	// allow is denied.
	ACLFile string `toml:"acl_file"`
}

// Validate reports an error for a bad value; it never adjusts one.
func (c Config) Validate() error {
	switch c.Anonymous {
	case AnonymousDefault, AnonymousAllow:
	case AnonymousDeny:
		if c.PasswordFile == "" {
			return errors.New("auth config: anonymous = \"deny\" without a password_file would refuse every client")
		}
	default:
		return fmt.Errorf("auth config: anonymous = %q: want %q or %q", c.Anonymous, AnonymousAllow, AnonymousDeny)
	}
	return nil
}

// allowAnonymous returns the effective anonymous policy.
func (c Config) allowAnonymous() bool {
	switch c.Anonymous {
	case AnonymousAllow:
		return true
	case AnonymousDeny:
		return false
	default:
		return c.PasswordFile == ""
	}
}
