// Package outside finds the programs no one here wrote that interop tests
// drive (mosquitto, mosquitto_sub/pub, openssl). Only _test.go files and
// test helper packages import it.
package outside

import (
	"os"
	"os/exec"
	"testing"
)

// Program returns the path of the program name on PATH. When it is missing
// the test is skipped with a message naming the Debian package to install,
// except with CI=true, where it fails: CI must not go green by skipping.
func Program(t testing.TB, name, debianPkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found on PATH (CI=true): CI must install the Debian package %s", name, debianPkg)
		}
		t.Skipf("%s not found on PATH: install the Debian package %s to run this test", name, debianPkg)
	}
	return p
}
