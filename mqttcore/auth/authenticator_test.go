package auth_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  auth.Config
		ok   bool
	}{
		{"zero value", auth.Config{}, true},
		{"allow", auth.Config{Anonymous: "allow"}, true},
		{"deny with passwords", auth.Config{Anonymous: "deny", PasswordFile: "p"}, true},
		{"deny without passwords", auth.Config{Anonymous: "deny"}, false},
		{"unknown policy", auth.Config{Anonymous: "yes"}, false},
		{"wrong case", auth.Config{Anonymous: "Allow"}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// writeFile writes content to a file in a test directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuthenticate(t *testing.T) {
	pw := writeFile(t, "passwd", "alice:"+cheapArgon2id("wonderland")+"\n")
	acl := writeFile(t, "acl", "user alice\ntopic write a/#\n")
	tests := []struct {
		name           string
		cfg            auth.Config
		user, password string
		want           error
	}{
		{"no files: anonymous allowed", auth.Config{}, "", "", nil},
		{"no files: any username, unverified", auth.Config{}, "mallory", "x", nil},
		{"passwords: anonymous refused by default", auth.Config{PasswordFile: pw}, "", "", auth.ErrAnonymousRefused},
		{"passwords: anonymous allowed", auth.Config{PasswordFile: pw, Anonymous: "allow"}, "", "", nil},
		{"passwords: right password", auth.Config{PasswordFile: pw}, "alice", "wonderland", nil},
		{"passwords: wrong password", auth.Config{PasswordFile: pw}, "alice", "wonder", auth.ErrBadCredentials},
		{"passwords: unknown user", auth.Config{PasswordFile: pw}, "bob", "wonderland", auth.ErrBadCredentials},
		{"passwords and acl", auth.Config{PasswordFile: pw, ACLFile: acl, Anonymous: "deny"}, "alice", "wonderland", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := auth.New(tt.cfg)
			if err != nil {
				t.Fatalf("New(%+v) = %v", tt.cfg, err)
			}
			if err := a.Authenticate(tt.user, []byte(tt.password)); !errors.Is(err, tt.want) {
				t.Errorf("Authenticate(%q, %q) = %v; want %v", tt.user, tt.password, err, tt.want)
			}
		})
	}
}

func TestAuthenticatorACL(t *testing.T) {
	open, err := auth.New(auth.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !open.CanPublish("", "c", "any/topic") || !open.CanSubscribe("", "c", "#") {
		t.Error("without an ACL: want everything allowed")
	}
	a, err := auth.New(auth.Config{ACLFile: writeFile(t, "acl", "user alice\ntopic write a/#\n")})
	if err != nil {
		t.Fatal(err)
	}
	if !a.CanPublish("alice", "c", "a/b") || a.CanPublish("alice", "c", "b") || a.CanSubscribe("alice", "c", "a/b") {
		t.Error("with an ACL: want alice to publish to a/# only and subscribe to nothing")
	}
}

func TestNewReportsFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  auth.Config
		want string
	}{
		{"missing password file", auth.Config{PasswordFile: filepath.Join(dir, "nope")}, "load password file"},
		{"plain password", auth.Config{PasswordFile: writeFile(t, "passwd", "alice:secret\n")}, "line 1"},
		{"missing acl file", auth.Config{ACLFile: filepath.Join(dir, "nope")}, "load acl file"},
		{"bad acl", auth.Config{ACLFile: writeFile(t, "acl", "topic a/#/b\n")}, "line 1"},
		{"bad config", auth.Config{Anonymous: "maybe"}, "anonymous"},
	}
	for _, tt := range tests {
		if _, err := auth.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v; want an error saying %q", tt.name, err, tt.want)
		}
	}
	if _, err := auth.New(auth.Config{PasswordFile: writeFile(t, "p2", "alice:secret\n")}); !errors.Is(err, auth.ErrUnknownHash) {
		t.Errorf("New with a plain password = %v; want ErrUnknownHash", err)
	}
}

func BenchmarkVerifyArgon2id(b *testing.B) {
	h, err := auth.HashPassword([]byte("s3cret"), auth.Argon2id)
	if err != nil {
		b.Fatal(err)
	}
	p, err := auth.ParsePasswords(strings.NewReader("u:"+h+"\n"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Verify("u", []byte("s3cret"))
	}
}

func BenchmarkVerifyBcrypt(b *testing.B) {
	h, err := auth.HashPassword([]byte("s3cret"), auth.Bcrypt)
	if err != nil {
		b.Fatal(err)
	}
	p, err := auth.ParsePasswords(strings.NewReader("u:"+h+"\n"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Verify("u", []byte("s3cret"))
	}
}

// Both implement the core's interface.
var (
	_ mqttcore.Authorizer = (*auth.Authenticator)(nil)
	_ mqttcore.Authorizer = (*auth.ACL)(nil)
)

// TestReload checks that Reload swaps in edited files, and that a broken
// file is refused with the old rules kept.
func TestReload(t *testing.T) {
	pw := writeFile(t, "pw", "alice:"+cheapArgon2id("one")+"\n")
	acl := writeFile(t, "acl", "user alice\ntopic a/#\n")
	a, err := auth.New(auth.Config{PasswordFile: pw, ACLFile: acl})
	if err != nil {
		t.Fatal(err)
	}
	if a.Authenticate("alice", []byte("one")) != nil || !a.Allow("alice", "c", mqttcore.ActionPublish, "a/x") || a.Allow("alice", "c", mqttcore.ActionPublish, "b/x") {
		t.Fatal("initial files not in force")
	}
	if err := os.WriteFile(pw, []byte("alice:"+cheapArgon2id("two")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(acl, []byte("user alice\ntopic b/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatalf("Reload = %v", err)
	}
	if a.Authenticate("alice", []byte("one")) == nil || a.Authenticate("alice", []byte("two")) != nil {
		t.Error("after Reload the old password still works or the new one does not")
	}
	if a.Allow("alice", "c", mqttcore.ActionPublish, "a/x") || !a.Allow("alice", "c", mqttcore.ActionRead, "b/x") {
		t.Error("after Reload the old ACL is still in force")
	}
	if err := os.WriteFile(acl, []byte("user alice\ntopic c/#/d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Reload of a broken acl = %v; want an error naming line 2", err)
	}
	if !a.Allow("alice", "c", mqttcore.ActionPublish, "b/x") || a.Authenticate("alice", []byte("two")) != nil {
		t.Error("a failed Reload changed the rules in force")
	}
	if err := auth.NewFrom(nil, nil, true).Reload(); err == nil {
		t.Error("Reload of a NewFrom authenticator = nil; want an error")
	}
}
