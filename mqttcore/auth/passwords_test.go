package auth_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/gannet-mqtt/gannet/internal/outside"
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
		{"plain-text password", "alice:hunter2", auth.ErrUnknownHash, "$7$ (PBKDF2-SHA512"},
		{"empty password", "alice:", auth.ErrUnknownHash, "argon2id"},
		{"unknown scheme", "alice:$5$c2FsdHNhbHQ=$aGFzaA==", auth.ErrUnknownHash, "$6$ (salted SHA-512"},
		{"$6$ short hash", "alice:$6$c2FsdHNhbHQ=$aGFzaA==", nil, "want base64 of 64 bytes"},
		{"$6$ short salt", "alice:$6$c2FsdA==$" + strings.Repeat("A", 86) + "==", nil, "salt"},
		{"$6$ extra field", "alice:$6$c2FsdHNhbHQ=$x$y", nil, "malformed $6$"},
		{"$7$ zero iterations", "alice:$7$0$c2FsdHNhbHQ=$" + strings.Repeat("A", 86) + "==", nil, "iterations"},
		{"$7$ too many iterations", "alice:$7$1000001$c2FsdHNhbHQ=$" + strings.Repeat("A", 86) + "==", nil, "iterations"},
		{"$7$ not a number", "alice:$7$ten$c2FsdHNhbHQ=$" + strings.Repeat("A", 86) + "==", nil, "iterations"},
		{"$7$ short hash", "alice:$7$101$c2FsdHNhbHQ=$aGFzaA==", nil, "want base64 of 64 bytes"},
		{"$7$ bad base64 salt", "alice:$7$101$!!!$" + strings.Repeat("A", 86) + "==", nil, "salt"},
		{"$7$ missing field", "alice:$7$101$c2FsdHNhbHQ=", nil, "malformed $7$"},
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

// TestMosquittoFormats checks $7$ and $6$ lines against hashes computed
// here from their definitions (mosquitto's src/password_mosq.c):
// $7$ is PBKDF2-HMAC-SHA512 over the decoded salt with the line's
// iteration count, $6$ is SHA-512 of the password followed by the salt.
// TestMosquittoPasswdFile checks lines the real mosquitto_passwd wrote.
func TestMosquittoFormats(t *testing.T) {
	salt := []byte("0123456789ab")
	b64 := base64.StdEncoding.EncodeToString
	pb, err := pbkdf2.Key(sha512.New, "wonderland", salt, 101, 64)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(append([]byte("builder"), salt...))
	file := "alice:$7$101$" + b64(salt) + "$" + b64(pb) + "\n" +
		"bob:$6$" + b64(salt) + "$" + b64(sum[:]) + "\n"
	p, err := auth.ParsePasswords(strings.NewReader(file), "mosquitto.pw")
	if err != nil {
		t.Fatalf("ParsePasswords = %v", err)
	}
	for _, tt := range []struct {
		user, password string
		want           bool
	}{
		{"alice", "wonderland", true},
		{"alice", "wonderland!", false},
		{"alice", "builder", false},
		{"bob", "builder", true},
		{"bob", "Builder", false},
		{"bob", "", false},
		{"carol", "builder", false},
	} {
		if got := p.Verify(tt.user, []byte(tt.password)); got != tt.want {
			t.Errorf("Verify(%q, %q) = %v; want %v", tt.user, tt.password, got, tt.want)
		}
	}
}

// TestMosquittoPasswdFile runs the real mosquitto_passwd, in both its
// formats, and checks that the file it writes is accepted and verifies the
// passwords it was given and no others; and that a file written with
// HashPassword(PBKDF2SHA512) is one mosquitto_passwd accepts (it updates an
// entry in it and keeps ours).
func TestMosquittoPasswdFile(t *testing.T) {
	mp := outside.Program(t, "mosquitto_passwd", "mosquitto")
	dir := t.TempDir()
	path := filepath.Join(dir, "pw")
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, mp, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %q: %v\n%s", args, err, out)
		}
	}
	run("-c", "-b", path, "alice", "wonderland")
	run("-b", path, "bob", "builder")
	run("-H", "sha512", "-b", path, "carol", "c:ar ol")
	p, err := auth.LoadPasswords(path)
	if err != nil {
		data, _ := os.ReadFile(path)
		t.Fatalf("LoadPasswords(mosquitto_passwd's file) = %v\n%s", err, data)
	}
	if p.Len() != 3 {
		t.Errorf("Len() = %d; want 3", p.Len())
	}
	for _, tt := range []struct {
		user, password string
		want           bool
	}{
		{"alice", "wonderland", true},
		{"alice", "builder", false},
		{"bob", "builder", true},
		{"bob", "builder ", false},
		{"carol", "c:ar ol", true},
		{"carol", "c:ar", false},
		{"dave", "wonderland", false},
	} {
		if got := p.Verify(tt.user, []byte(tt.password)); got != tt.want {
			t.Errorf("Verify(%q, %q) = %v; want %v", tt.user, tt.password, got, tt.want)
		}
	}

	// Ours in mosquitto's hands: mosquitto_passwd parses every line when it
	// updates a file and refuses one it cannot read.
	h, err := auth.HashPassword([]byte("gannet"), auth.PBKDF2SHA512)
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours")
	if err := os.WriteFile(ours, []byte("erin:"+h+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run("-b", ours, "frank", "mosquitto")
	p, err = auth.LoadPasswords(ours)
	if err != nil {
		t.Fatalf("LoadPasswords(our file after mosquitto_passwd) = %v", err)
	}
	if !p.Verify("erin", []byte("gannet")) || !p.Verify("frank", []byte("mosquitto")) || p.Verify("erin", []byte("mosquitto")) {
		t.Error("after mosquitto_passwd added frank to our file, erin's or frank's password does not verify as it should")
	}
}

func TestHashPassword(t *testing.T) {
	for _, alg := range []auth.Algorithm{auth.PBKDF2SHA512, auth.Argon2id, auth.Bcrypt} {
		t.Run(string(alg), func(t *testing.T) {
			h, err := auth.HashPassword([]byte("s3cret"), alg)
			if err != nil {
				t.Fatalf("HashPassword = %v", err)
			}
			if want := map[auth.Algorithm]string{auth.Argon2id: "$argon2id$v=19$m=19456,t=2,p=1$", auth.Bcrypt: "$2a$10$", auth.PBKDF2SHA512: "$7$20000$"}[alg]; !strings.HasPrefix(h, want) {
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
