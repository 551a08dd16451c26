// Package auth decides who may connect to Gannet's MQTT TCP listener and
// what each client may publish and subscribe to.
//
// It owns three things:
//
//   - Passwords: a password file of "username:hash" lines in Mosquitto's
//     format, holding $7$ (PBKDF2-SHA512, what mosquitto_passwd and gannet
//     passwd write), $6$, bcrypt or argon2id (PHC string) hashes. Anything
//     else, plain text included, is refused when the file is loaded. Verification runs in constant time and an unknown
//     user costs as much as a known one. HashPassword makes hashes for the
//     file.
//   - ACL: a topic access list in a Mosquitto-like file format (see ParseACL)
//     with rules per user, per client identifier and patterns with %u and %c
//     substitution; denies whatever no rule allows.
//   - Authenticator: the two together with the anonymous-access policy, as
//     configured by Config.
//
// The file formats and the rule that decides whether a subscription's topic
// filter is allowed are documented on ParsePasswords and ParseACL and in
// docs/mqtt-listener.md.
//
// The package imports only the standard library and golang.org/x/crypto; it
// never imports the listener, the core or anything MQTT-SN, never logs and
// starts no goroutines. Passwords, ACL and Authenticator are immutable after
// they are built and safe for concurrent use; to reload a file, build a new
// value and swap it in. The permission checks (CanPublish, CanSubscribe) do
// not allocate.
package auth
