package auth

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
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
	// PBKDF2SHA512 is Mosquitto's "$7$" format, PBKDF2 with HMAC-SHA512:
	// "$7$<iterations>$<salt>$<hash>" with padded standard base64, as
	// written by mosquitto_passwd (its default, -H sha512-pbkdf2) and by
	// gannet passwd. HashPassword uses PBKDF2Iterations iterations, a
	// 12-byte salt and a 64-byte hash; Mosquitto reads the iteration count
	// from the line, so such entries work in Mosquitto too.
	PBKDF2SHA512 Algorithm = "sha512-pbkdf2"
)

// PBKDF2Iterations is the iteration count HashPassword uses for
// PBKDF2SHA512. mosquitto_passwd writes 101, which costs an attacker with a
// stolen file little; 20,000 costs about 10 ms per check on a Raspberry
// Pi class CPU (and a few ms here), cheap enough for connection storms and
// 200 times dearer to brute-force than Mosquitto's default.
const PBKDF2Iterations = 20_000

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

	pbkdf2SaltLen       = 12 // mosquitto_passwd's
	pbkdf2KeyLen        = 64 // SHA-512's size, mosquitto_passwd's
	pbkdf2MaxIterations = 1_000_000
	mosqMinSaltLen      = 8
	sha512KeyLen        = sha512.Size
)

// AcceptedFormats names the password hash formats ParsePasswords accepts,
// for error messages and documentation.
const AcceptedFormats = "$7$ (PBKDF2-SHA512, mosquitto_passwd's default and gannet passwd), " +
	"$6$ (salted SHA-512, mosquitto_passwd -H sha512), bcrypt ($2a$, $2b$, $2y$) and argon2id ($argon2id$)"

// ErrUnknownHash is wrapped by the error ParsePasswords returns for a line
// whose password field is not in one of the AcceptedFormats, such as a
// plain-text password.
var ErrUnknownHash = errors.New("unknown password hash format: want " + AcceptedFormats + "; plain-text passwords are refused")

// Passwords is a loaded password file. It is immutable and safe for
// concurrent use.
type Passwords struct {
	hashes map[string]hash
	dummy  hash
}

// hashKind is a hash's algorithm.
type hashKind uint8

// Hash kinds.
const (
	kindArgon2id hashKind = iota
	kindBcrypt
	kindPBKDF2 // Mosquitto $7$
	kindSHA512 // Mosquitto $6$
)

// hash is one parsed password hash.
type hash struct {
	kind   hashKind
	bcrypt []byte // the whole bcrypt hash (kindBcrypt)
	// argon2id parameters; iterations is PBKDF2's count.
	memory, time uint32
	threads      uint8
	iterations   int
	salt, key    []byte // argon2id, PBKDF2 and SHA-512
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
// The format: one "username:hash" per line, the format of Mosquitto's
// password_file. The username is everything before the first colon and may
// not be empty; the hash is one of:
//
//   - "$7$<iterations>$<salt>$<hash>": PBKDF2-HMAC-SHA512, salt and hash in
//     padded standard base64 (mosquitto_passwd's default; gannet passwd);
//     1 to 1,000,000 iterations, a salt of at least 8 bytes, a 64-byte hash;
//   - "$6$<salt>$<hash>": SHA-512 of password then salt (mosquitto_passwd
//     -H sha512, Mosquitto 1.6 and earlier; fast to brute-force, accepted
//     for migration only);
//   - a bcrypt hash ("$2a$", "$2b$", "$2y$");
//   - an argon2id hash in PHC string format
//     ("$argon2id$v=19$m=...,t=...,p=...$salt$hash").
//
// Blank lines and lines
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
	switch h.kind {
	case kindBcrypt:
		return bcrypt.CompareHashAndPassword(h.bcrypt, password) == nil
	case kindPBKDF2, kindSHA512:
		got, err := h.derive(password, len(h.key))
		return err == nil && subtle.ConstantTimeCompare(got, h.key) == 1
	}
	got := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// parseHash parses a hash in one of the AcceptedFormats.
func parseHash(s string) (hash, error) {
	switch {
	case strings.HasPrefix(s, "$7$"):
		return parsePBKDF2(s)
	case strings.HasPrefix(s, "$6$"):
		return parseSHA512(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil || len(s) != 60 {
			return hash{}, errors.New("malformed bcrypt hash")
		}
		return hash{kind: kindBcrypt, bcrypt: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return hash{}, errors.New("argon2i and argon2d hashes are not supported; use argon2id")
	default:
		return hash{}, ErrUnknownHash
	}
}

// parsePBKDF2 parses Mosquitto's "$7$<iterations>$<salt>$<hash>".
func parsePBKDF2(s string) (hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 5 {
		return hash{}, errors.New("malformed $7$ (PBKDF2-SHA512) hash: want $7$<iterations>$<salt>$<hash>")
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < 1 || n > pbkdf2MaxIterations {
		return hash{}, fmt.Errorf("$7$ (PBKDF2-SHA512) iterations %q: want 1 to %d", parts[2], pbkdf2MaxIterations)
	}
	h := hash{kind: kindPBKDF2, iterations: n}
	if h.salt, err = base64.StdEncoding.DecodeString(parts[3]); err != nil || len(h.salt) < mosqMinSaltLen {
		return hash{}, fmt.Errorf("$7$ (PBKDF2-SHA512) salt: want base64 of at least %d bytes", mosqMinSaltLen)
	}
	if h.key, err = base64.StdEncoding.DecodeString(parts[4]); err != nil || len(h.key) != pbkdf2KeyLen {
		return hash{}, fmt.Errorf("$7$ (PBKDF2-SHA512) hash: want base64 of %d bytes", pbkdf2KeyLen)
	}
	return h, nil
}

// parseSHA512 parses Mosquitto's "$6$<salt>$<hash>".
func parseSHA512(s string) (hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 4 {
		return hash{}, errors.New("malformed $6$ (salted SHA-512) hash: want $6$<salt>$<hash>")
	}
	h := hash{kind: kindSHA512}
	var err error
	if h.salt, err = base64.StdEncoding.DecodeString(parts[2]); err != nil || len(h.salt) < mosqMinSaltLen {
		return hash{}, fmt.Errorf("$6$ (salted SHA-512) salt: want base64 of at least %d bytes", mosqMinSaltLen)
	}
	if h.key, err = base64.StdEncoding.DecodeString(parts[3]); err != nil || len(h.key) != sha512KeyLen {
		return hash{}, fmt.Errorf("$6$ (salted SHA-512) hash: want base64 of %d bytes", sha512KeyLen)
	}
	return h, nil
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
	h := hash{kind: kindArgon2id}
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
	if like != nil {
		switch like.kind {
		case kindBcrypt:
			cost, _ := bcrypt.Cost(like.bcrypt)
			b, err := bcrypt.GenerateFromPassword(secret, cost)
			if err != nil {
				return hash{}, fmt.Errorf("dummy hash: %w", err)
			}
			return hash{kind: kindBcrypt, bcrypt: b}, nil
		case kindPBKDF2, kindSHA512:
			h := hash{kind: like.kind, iterations: like.iterations, salt: make([]byte, len(like.salt))}
			if _, err := rand.Read(h.salt); err != nil {
				return hash{}, fmt.Errorf("dummy hash: %w", err)
			}
			var err error
			if h.key, err = h.derive(secret, len(like.key)); err != nil {
				return hash{}, fmt.Errorf("dummy hash: %w", err)
			}
			return h, nil
		}
	}
	h := hash{kind: kindArgon2id, memory: argonMemory, time: argonTime, threads: argonThreads, salt: make([]byte, argonSaltLen), key: make([]byte, argonKeyLen)}
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

// derive computes a PBKDF2 or SHA-512 hash's key for password.
func (h *hash) derive(password []byte, keyLen int) ([]byte, error) {
	if h.kind == kindSHA512 {
		d := sha512.New()
		d.Write(password)
		d.Write(h.salt)
		return d.Sum(nil), nil
	}
	return pbkdf2.Key(sha512.New, string(password), h.salt, h.iterations, keyLen)
}

// HashPassword returns a hash of password for a password file line, with a
// fresh random salt. alg is PBKDF2SHA512 (Mosquitto's format, what gannet
// passwd writes), Argon2id or Bcrypt.
func HashPassword(password []byte, alg Algorithm) (string, error) {
	switch alg {
	case PBKDF2SHA512:
		h := hash{kind: kindPBKDF2, iterations: PBKDF2Iterations, salt: make([]byte, pbkdf2SaltLen)}
		if _, err := rand.Read(h.salt); err != nil {
			return "", fmt.Errorf("hash password: %w", err)
		}
		key, err := h.derive(password, pbkdf2KeyLen)
		if err != nil {
			return "", fmt.Errorf("hash password: %w", err)
		}
		return fmt.Sprintf("$7$%d$%s$%s", h.iterations, base64.StdEncoding.EncodeToString(h.salt), base64.StdEncoding.EncodeToString(key)), nil
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
		return "", fmt.Errorf("hash password: unknown algorithm %q (want %q, %q or %q)", alg, PBKDF2SHA512, Argon2id, Bcrypt)
	}
}
