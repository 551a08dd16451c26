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
//     configured by Config. It implements mqttcore.Authorizer, so the core
//     applies the ACL to every client (MQTT listener and MQTT-SN gateway
//     alike), and Reload re-reads both files and swaps them in atomically.
//
// The file formats and the rule that decides whether a subscription's topic
// filter is allowed are documented on ParsePasswords and ParseACL and in
// docs/mqtt-listener.md.
//
// The package imports the standard library, golang.org/x/crypto and
// mqttcore (for the Authorizer's Action type); it never imports the
// listener or anything MQTT-SN, never logs and starts no goroutines.
// Passwords and ACL are immutable after they are built and safe for
// concurrent use; an Authenticator holds one generation of them behind an
// atomic pointer, swapped by Reload. The permission checks (Allow,
// CanPublish, CanRead, CanSubscribe) do not allocate.
package auth
