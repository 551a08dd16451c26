package auth

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestDummyHashMatchesFile checks that an unknown user is verified against
// a hash as costly as the file's: same algorithm and parameters as the first
// entry.
func TestDummyHashMatchesFile(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("x"), 5)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		file  string
		check func(t *testing.T, d hash)
	}{
		{"bcrypt", "a:" + string(b) + "\n", func(t *testing.T, d hash) {
			if cost, err := bcrypt.Cost(d.bcrypt); err != nil || cost != 5 {
				t.Errorf("dummy bcrypt cost = %d, %v; want 5", cost, err)
			}
		}},
		{"argon2id", "a:$argon2id$v=19$m=64,t=3,p=2$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\n", func(t *testing.T, d hash) {
			if d.bcrypt != nil || d.memory != 64 || d.time != 3 || d.threads != 2 || len(d.salt) != 16 || len(d.key) != 32 {
				t.Errorf("dummy = m=%d t=%d p=%d salt %d key %d; want m=64 t=3 p=2 salt 16 key 32", d.memory, d.time, d.threads, len(d.salt), len(d.key))
			}
		}},
		{"$7$", "a:$7$101$MDEyMzQ1Njc4OWFi$" + strings.Repeat("A", 86) + "==\n", func(t *testing.T, d hash) {
			if d.kind != kindPBKDF2 || d.iterations != 101 || len(d.salt) != 12 || len(d.key) != 64 {
				t.Errorf("dummy = kind %d iterations %d salt %d key %d; want PBKDF2, 101, 12, 64", d.kind, d.iterations, len(d.salt), len(d.key))
			}
		}},
		{"$6$", "a:$6$MDEyMzQ1Njc4OWFi$" + strings.Repeat("A", 86) + "==\n", func(t *testing.T, d hash) {
			if d.kind != kindSHA512 || len(d.salt) != 12 || len(d.key) != 64 {
				t.Errorf("dummy = kind %d salt %d key %d; want SHA-512, 12, 64", d.kind, len(d.salt), len(d.key))
			}
		}},
		{"empty file", "# nobody\n", func(t *testing.T, d hash) {
			if d.memory != argonMemory || d.time != argonTime || d.threads != argonThreads {
				t.Errorf("dummy = m=%d t=%d p=%d; want HashPassword's defaults", d.memory, d.time, d.threads)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePasswords(strings.NewReader(tt.file), "f")
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p.dummy)
			if p.Verify("nobody", []byte("x")) {
				t.Error("Verify(unknown user) = true")
			}
		})
	}
}
