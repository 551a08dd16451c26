package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Algorithm names a password hashing algorithm HashPassword can use.
type Algorithm string

// Supported algorithms.
const (
	// Argon2id is argon2id (RFC 9106) in the PHC string format
	// "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>" with
	// unpadded standard base64. HashPassword uses m=19456 (19 MiB), t=2,
	// p=1, a 16-byte salt and a 32-byte hash, the OWASP recommendation, so
	// that a small edge box can check a password without a large memory
	// burst.
	Argon2id Algorithm = "argon2id"
	// Bcrypt is bcrypt ("$2a$", "$2b$" or "$2y$") at cost 10. bcrypt reads
	// at most 72 bytes of a password; HashPassword refuses longer ones.
	Bcrypt Algorithm = "bcrypt"
)

// argon2id parameters HashPassword uses, and the bounds a loaded hash must
// respect (so that a password file cannot make one check use gigabytes).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32

	argonMaxMemory  = 1 << 20 // KiB: 1 GiB
	argonMaxTime    = 64
	argonMinSaltLen = 8
	argonMinKeyLen  = 16
	argonMaxKeyLen  = 128

	bcryptCost = 10
)

// ErrPlainPassword is wrapped by the error ParsePasswords returns for a line
// whose password field is not a recognised hash.
var ErrPlainPassword = errors.New("not a bcrypt or argon2id hash; plain-text passwords are refused")

// Passwords is a loaded password file. It is immutable and safe for
// concurrent use.
type Passwords struct {
	hashes map[string]hash
	dummy  hash
}

// hash is one parsed password hash.
type hash struct {
	bcrypt []byte // the whole bcrypt hash, or nil
	// argon2id parameters, salt and key.
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// LoadPasswords reads and parses the password file at path.
func LoadPasswords(path string) (*Passwords, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load password file: %w", err)
	}
	defer f.Close()
	return ParsePasswords(f, path)
}

// ParsePasswords parses a password file; name is used in error messages.
//
// The format: one "username:hash" per line. The username is everything
// before the first colon and may not be empty; the hash is a bcrypt hash
// ("$2a$", "$2b$", "$2y$") or an argon2id hash in PHC string format
// ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"). Blank lines and lines
// whose first non-blank character is '#' are ignored; surrounding
// whitespace is trimmed. A line whose password field is anything else, in
// particular a plain-text password, is refused with an error naming the
// file and line (and not the field's content); so are a duplicate username,
// a line without a colon and argon2id parameters out of range (m up to
// 1 GiB, t from 1 to 64, p at least 1, salt at least 8 bytes, hash 16 to
// 128 bytes).
func ParsePasswords(r io.Reader, name string) (*Passwords, error) {
	p := &Passwords{hashes: make(map[string]hash)}
	var first *hash
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		user, field, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("password file %s line %d: want username:hash", name, line)
		}
		if user == "" {
			return nil, fmt.Errorf("password file %s line %d: empty username", name, line)
		}
		if _, dup := p.hashes[user]; dup {
			return nil, fmt.Errorf("password file %s line %d: user %q listed twice", name, line, user)
		}
		h, err := parseHash(field)
		if err != nil {
			return nil, fmt.Errorf("password file %s line %d: user %q: %w", name, line, user, err)
		}
		p.hashes[user] = h
		if first == nil {
			first = &h
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("password file %s: %w", name, err)
	}
	dummy, err := dummyLike(first)
	if err != nil {
		return nil, fmt.Errorf("password file %s: %w", name, err)
	}
	p.dummy = dummy
	return p, nil
}

// Len returns the number of users in the file.
func (p *Passwords) Len() int { return len(p.hashes) }

// Verify reports whether password is username's password. It takes the same
// time whether or not the user exists: an unknown user is checked against a
// dummy hash with the parameters of the file's first entry.
func (p *Passwords) Verify(username string, password []byte) bool {
	h, known := p.hashes[username]
	if !known {
		h = p.dummy
	}
	ok := h.verify(password)
	return ok && known
}

// verify checks password against h in constant time.
func (h *hash) verify(password []byte) bool {
	if h.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(h.bcrypt, password) == nil
	}
	got := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// parseHash parses a bcrypt or argon2id hash.
func parseHash(s string) (hash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil || len(s) != 60 {
			return hash{}, errors.New("malformed bcrypt hash")
		}
		return hash{bcrypt: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return hash{}, errors.New("argon2i and argon2d hashes are not supported; use argon2id")
	default:
		return hash{}, ErrPlainPassword
	}
}

// parseArgon2id parses "$argon2id$v=19$m=M,t=T,p=P$salt$key".
func parseArgon2id(s string) (hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return hash{}, errors.New("malformed argon2id hash: want $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	if parts[2] != "v=19" {
		return hash{}, fmt.Errorf("argon2id version %q: want v=19", parts[2])
	}
	var h hash
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return hash{}, fmt.Errorf("argon2id parameter %q: %w", kv, err)
		}
		switch k {
		case "m":
			h.memory, seen[0] = uint32(n), true
		case "t":
			h.time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return hash{}, fmt.Errorf("argon2id parallelism %d above 255", n)
			}
			h.threads, seen[2] = uint8(n), true
		default:
			return hash{}, fmt.Errorf("argon2id parameter %q unknown", k)
		}
	}
	if seen != [3]bool{true, true, true} {
		return hash{}, errors.New("argon2id parameters: want m, t and p")
	}
	if h.threads < 1 || h.time < 1 || h.time > argonMaxTime || h.memory < 8*uint32(h.threads) || h.memory > argonMaxMemory {
		return hash{}, fmt.Errorf("argon2id parameters m=%d,t=%d,p=%d out of range (m from 8p to %d KiB, t from 1 to %d, p at least 1)",
			h.memory, h.time, h.threads, argonMaxMemory, argonMaxTime)
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) < argonMinSaltLen {
		return hash{}, fmt.Errorf("argon2id salt: want unpadded base64 of at least %d bytes", argonMinSaltLen)
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) < argonMinKeyLen || len(h.key) > argonMaxKeyLen {
		return hash{}, fmt.Errorf("argon2id hash: want unpadded base64 of %d to %d bytes", argonMinKeyLen, argonMaxKeyLen)
	}
	return h, nil
}

// dummyLike returns a hash of a random password with the same algorithm
// and cost as like (or HashPassword's argon2id defaults if like is nil).
func dummyLike(like *hash) (hash, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return hash{}, fmt.Errorf("dummy hash: %w", err)
	}
	if like != nil && like.bcrypt != nil {
		cost, _ := bcrypt.Cost(like.bcrypt)
		b, err := bcrypt.GenerateFromPassword(secret, cost)
		if err != nil {
			return hash{}, fmt.Errorf("dummy hash: %w", err)
		}
		return hash{bcrypt: b}, nil
	}
	h := hash{memory: argonMemory, time: argonTime, threads: argonThreads, salt: make([]byte, argonSaltLen), key: make([]byte, argonKeyLen)}
	if like != nil {
		h.memory, h.time, h.threads = like.memory, like.time, like.threads
		h.salt, h.key = make([]byte, len(like.salt)), make([]byte, len(like.key))
	}
	if _, err := rand.Read(h.salt); err != nil {
		return hash{}, fmt.Errorf("dummy hash: %w", err)
	}
	copy(h.key, argon2.IDKey(secret, h.salt, h.time, h.memory, h.threads, uint32(len(h.key))))
	return h, nil
}

// HashPassword returns a hash of password for a password file line, with a
// fresh random salt. alg is Argon2id (recommended) or Bcrypt.
func HashPassword(password []byte, alg Algorithm) (string, error) {
	switch alg {
	case Bcrypt:
		b, err := bcrypt.GenerateFromPassword(password, bcryptCost)
		if err != nil {
			return "", fmt.Errorf("hash password: %w", err)
		}
		return string(b), nil
	case Argon2id:
		salt := make([]byte, argonSaltLen)
		if _, err := rand.Read(salt); err != nil {
			return "", fmt.Errorf("hash password: %w", err)
		}
		key := argon2.IDKey(password, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
		var b bytes.Buffer
		fmt.Fprintf(&b, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
			base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
		return b.String(), nil
	default:
		return "", fmt.Errorf("hash password: unknown algorithm %q (want %q or %q)", alg, Argon2id, Bcrypt)
	}
}
