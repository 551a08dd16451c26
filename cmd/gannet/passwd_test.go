package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

// runPasswd runs "gannet passwd args..." with password as stdin and returns
// the exit code and stderr.
func runPasswd(t *testing.T, password string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"passwd"}, args...), strings.NewReader(password), &stdout, &stderr)
	return code, stderr.String()
}

func TestPasswdCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.pw")
	check := func(wantLen int, good map[string]string, bad map[string]string) {
		t.Helper()
		p, err := auth.LoadPasswords(path)
		if err != nil {
			t.Fatalf("LoadPasswords after gannet passwd = %v", err)
		}
		if p.Len() != wantLen {
			t.Errorf("file has %d users; want %d", p.Len(), wantLen)
		}
		for u, pw := range good {
			if !p.Verify(u, []byte(pw)) {
				t.Errorf("Verify(%q, %q) = false; want true", u, pw)
			}
		}
		for u, pw := range bad {
			if p.Verify(u, []byte(pw)) {
				t.Errorf("Verify(%q, %q) = true; want false", u, pw)
			}
		}
	}

	if code, errs := runPasswd(t, "wonderland\n", "-c", path, "alice"); code != 0 {
		t.Fatalf("passwd -c = %d, %s", code, errs)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "alice:$7$") {
		t.Errorf("file = %q; want an alice:$7$ entry", data)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	// A comment an operator added survives edits.
	if err := os.WriteFile(path, append([]byte("# operators\n"), data...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if code, errs := runPasswd(t, "builder\r\n", path, "bob"); code != 0 {
		t.Fatalf("passwd add bob = %d, %s", code, errs)
	}
	check(2, map[string]string{"alice": "wonderland", "bob": "builder"}, map[string]string{"bob": "builder\r"})
	if code, errs := runPasswd(t, "looking-glass", path, "alice"); code != 0 {
		t.Fatalf("passwd update alice = %d, %s", code, errs)
	}
	check(2, map[string]string{"alice": "looking-glass", "bob": "builder"}, map[string]string{"alice": "wonderland"})
	if code, errs := runPasswd(t, "", "-D", path, "bob"); code != 0 {
		t.Fatalf("passwd -D bob = %d, %s", code, errs)
	}
	check(1, map[string]string{"alice": "looking-glass"}, map[string]string{"bob": "builder"})
	data, _ = os.ReadFile(path)
	if !strings.HasPrefix(string(data), "# operators\n") {
		t.Errorf("file = %q; want the comment kept", data)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("edited file mode = %v, %v; want 0640 kept", st.Mode().Perm(), err)
	}

	for _, tt := range []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"missing file", "x\n", []string{filepath.Join(t.TempDir(), "nope"), "alice"}, 1, "use -c"},
		{"colon in username", "x\n", []string{path, "a:b"}, 1, "contains ':'"},
		{"empty password", "\n", []string{path, "carol"}, 1, "empty password"},
		{"delete unknown user", "", []string{"-D", path, "carol"}, 1, "not in"},
		{"one argument", "x\n", []string{path}, 2, "usage"},
		{"-c and -D", "x\n", []string{"-c", "-D", path, "alice"}, 2, "exclude"},
	} {
		code, errs := runPasswd(t, tt.stdin, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("%s: gannet passwd %q = %d, %q; want %d and %q", tt.name, tt.args, code, errs, tt.code, tt.want)
		}
	}
	check(1, map[string]string{"alice": "looking-glass"}, nil)
}
