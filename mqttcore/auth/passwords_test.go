package auth_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

// cheapBcrypt returns a bcrypt hash at the minimum cost, to keep tests fast.
func cheapBcrypt(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// cheapArgon2id returns an argon2id PHC string with tiny parameters.
func cheapArgon2id(password string) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestPasswordsVerify(t *testing.T) {
	file := "# Gannet users\n\n" +
		"alice:" + cheapBcrypt(t, "wonderland") + "\n" +
		"  bob:" + cheapArgon2id("builder") + "  \r\n" +
		"   # indented comment\n"
	p, err := auth.ParsePasswords(strings.NewReader(file), "users.txt")
	if err != nil {
		t.Fatalf("ParsePasswords = %v", err)
	}
	if p.Len() != 2 {
		t.Errorf("Len() = %d; want 2", p.Len())
	}
	tests := []struct {
		user, password string
		want           bool
	}{
		{"alice", "wonderland", true},
		{"alice", "Wonderland", false},
		{"alice", "", false},
		{"bob", "builder", true},
		{"bob", "builder ", false},
		{"bob", "wonderland", false},
		{"carol", "wonderland", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := p.Verify(tt.user, []byte(tt.password)); got != tt.want {
			t.Errorf("Verify(%q, %q) = %v; want %v", tt.user, tt.password, got, tt.want)
		}
	}
}

func TestParsePasswordsRefuses(t *testing.T) {
	argon := cheapArgon2id("x")
	argonParts := strings.Split(argon, "$") // "", argon2id, v=19, params, salt, key
	withParams := func(params string) string {
		return "$argon2id$v=19$" + params + "$" + argonParts[4] + "$" + argonParts[5]
	}
	tests := []struct {
		name    string
		line    string
		wantErr error  // if set, errors.Is must hold
		want    string // a substring of the message
	}{
		{"plain-text password", "alice:hunter2", auth.ErrPlainPassword, "line 3"},
		{"empty password", "alice:", auth.ErrPlainPassword, "line 3"},
		{"mosquitto sha512", "alice:$6$c2FsdA==$aGFzaA==", auth.ErrPlainPassword, "line 3"},
		{"no colon", "alice", nil, "want username:hash"},
		{"empty username", ":" + argon, nil, "empty username"},
		{"malformed bcrypt", "alice:$2b$10$short", nil, "malformed bcrypt"},
		{"argon2i", "alice:$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", nil, "argon2id"},
		{"argon2id old version", "alice:" + strings.Replace(argon, "v=19", "v=16", 1), nil, "v=19"},
		{"argon2id memory too large", "alice:" + withParams("m=4194304,t=1,p=1"), nil, "out of range"},
		{"argon2id zero time", "alice:" + withParams("m=64,t=0,p=1"), nil, "out of range"},
		{"argon2id missing p", "alice:" + withParams("m=64,t=1"), nil, "want m, t and p"},
		{"argon2id unknown parameter", "alice:" + withParams("m=64,t=1,p=1,x=2"), nil, "unknown"},
		{"argon2id short salt", "alice:$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + argonParts[5], nil, "salt"},
		{"argon2id bad base64", "alice:$argon2id$v=19$m=64,t=1,p=1$" + argonParts[4] + "$!!!", nil, "hash"},
		{"duplicate user", "bob:" + argon, nil, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := "# users\nbob:" + argon + "\n" + tt.line + "\n"
			_, err := auth.ParsePasswords(strings.NewReader(file), "users.txt")
			if err == nil {
				t.Fatalf("ParsePasswords(%q) = nil error; want one", file)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("ParsePasswords error %v; want it to wrap %v", err, tt.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, "users.txt") || !strings.Contains(msg, "line 3") || !strings.Contains(msg, tt.want) {
				t.Errorf("ParsePasswords error %q; want it to name users.txt, line 3 and say %q", msg, tt.want)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("ParsePasswords error %q repeats the plain-text password", msg)
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	for _, alg := range []auth.Algorithm{auth.Argon2id, auth.Bcrypt} {
		t.Run(string(alg), func(t *testing.T) {
			h, err := auth.HashPassword([]byte("s3cret"), alg)
			if err != nil {
				t.Fatalf("HashPassword = %v", err)
			}
			if want := map[auth.Algorithm]string{auth.Argon2id: "$argon2id$v=19$m=19456,t=2,p=1$", auth.Bcrypt: "$2a$10$"}[alg]; !strings.HasPrefix(h, want) {
				t.Errorf("HashPassword(%s) = %q; want prefix %q", alg, h, want)
			}
			p, err := auth.ParsePasswords(strings.NewReader("u:"+h+"\n"), "generated")
			if err != nil {
				t.Fatalf("ParsePasswords(HashPassword(%s)) = %v", alg, err)
			}
			if !p.Verify("u", []byte("s3cret")) || p.Verify("u", []byte("s3cre")) {
				t.Errorf("Verify with a %s hash does not tell the right password from a wrong one", alg)
			}
			h2, _ := auth.HashPassword([]byte("s3cret"), alg)
			if h2 == h {
				t.Errorf("HashPassword(%s) twice gives %q both times; want a fresh salt", alg, h)
			}
		})
	}
	if _, err := auth.HashPassword([]byte("x"), "md5"); err == nil {
		t.Error("HashPassword(md5) = nil error; want one")
	}
	if _, err := auth.HashPassword(make([]byte, 73), auth.Bcrypt); err == nil {
		t.Error("HashPassword(73 bytes, bcrypt) = nil error; want one (bcrypt ignores bytes past 72)")
	}
}
