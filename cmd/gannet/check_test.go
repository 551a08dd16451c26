package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckConfigAgreesWithServe runs check-config and serve on configs
// that decode but that serve refuses (a missing or broken file, a queue
// in a directory that is not there): check-config used to say "ok" to
// them. Both must refuse, with the same error naming the file or key (and
// the line, for values); serve must refuse before opening any socket.
func TestCheckConfigAgreesWithServe(t *testing.T) {
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "missing")
	notDir := file("plain-file", "x")
	goodPSK := file("psk", "s1:00112233445566778899aabbccddeeff\n")
	badPSK := file("bad-psk", "s1:not-hex\n")
	badACL := file("bad-acl", "topic readwrite a/#\nfrobnicate b\n")
	badCert := file("bad.crt", "not a certificate\n")
	// A queue whose first log segment cannot be opened for writing.
	walDir := filepath.Join(dir, "w.db.wal.0")
	if err := os.Mkdir(walDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Ports are 0: a serve that got past the checks would start serving
	// (and the test would see it in the log).
	const base = "[[listen]]\nnetwork = \"udp4\"\naddress = \"127.0.0.1:0\"\n[mqtt]\naddress = \"127.0.0.1:0\"\n"
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"missing acl file", fmt.Sprintf("[mqtt.auth]\nacl_file = %q\n", missing), "[mqtt.auth]: auth: "},
		{"broken acl file", fmt.Sprintf("[mqtt.auth]\nacl_file = %q\n", badACL), "line 2: unknown directive \"frobnicate\""},
		{"missing password file", fmt.Sprintf("[mqtt.auth]\npassword_file = %q\n", missing), missing},
		{"missing psk file", fmt.Sprintf("[[listen]]\nnetwork = \"dtls\"\naddress = \"127.0.0.1:0\"\n[listen.dtls]\npsk_file = %q\n", missing), "listen[1] (127.0.0.1:0) dtls.psk_file"},
		{"broken psk file", fmt.Sprintf("[[listen]]\nnetwork = \"dtls\"\naddress = \"127.0.0.1:0\"\n[listen.dtls]\npsk_file = %q\n", badPSK), "dtls.psk_file"},
		{"bridge queue in a missing directory", fmt.Sprintf("[[bridge]]\nname = \"c\"\nservers = [\"mqtt://127.0.0.1:1\"]\n[[bridge.rule]]\npattern = \"a/#\"\ndirection = \"out\"\n[bridge.queue]\npath = %q\n", filepath.Join(missing, "q.db")), `bridge "c" queue.path: directory ` + missing},
		{"bridge queue under a file", fmt.Sprintf("[[bridge]]\nname = \"c\"\nservers = [\"mqtt://127.0.0.1:1\"]\n[[bridge.rule]]\npattern = \"a/#\"\ndirection = \"out\"\n[bridge.queue]\npath = %q\n", filepath.Join(notDir, "q.db")), "is not a directory"},
		{"bridge queue in the store's file", fmt.Sprintf("[store]\npath = %q\n[[bridge]]\nname = \"c\"\nservers = [\"mqtt://127.0.0.1:1\"]\n[[bridge.rule]]\npattern = \"a/#\"\ndirection = \"out\"\n[bridge.queue]\npath = %q\n", filepath.Join(dir, "core.db"), filepath.Join(dir, "core.db")), `bridge "c" queue.path: ` + filepath.Join(dir, "core.db") + " is [store]'s file"},
		{"bridge queue log not writable", fmt.Sprintf("[[bridge]]\nname = \"c\"\nservers = [\"mqtt://127.0.0.1:1\"]\n[[bridge.rule]]\npattern = \"a/#\"\ndirection = \"out\"\n[bridge.queue]\npath = %q\n", filepath.Join(dir, "w.db")), "its log " + walDir},
		{"two bridges, one queue", fmt.Sprintf("[[bridge]]\nname = \"a\"\nservers = [\"mqtt://127.0.0.1:1\"]\n[[bridge.rule]]\npattern = \"a/#\"\ndirection = \"out\"\n[bridge.queue]\npath = %q\n[[bridge]]\nname = \"b\"\nservers = [\"mqtt://127.0.0.1:1\"]\n[[bridge.rule]]\npattern = \"a/#\"\ndirection = \"out\"\n[bridge.queue]\npath = %q\n", filepath.Join(dir, "q.db"), filepath.Join(dir, "q.db")), `is already the queue of bridge "a"`},
		{"bridge ca file", fmt.Sprintf("[[bridge]]\nname = \"c\"\nservers = [\"mqtts://127.0.0.1:1\"]\n[[bridge.rule]]\npattern = \"a/#\"\ndirection = \"out\"\n[bridge.tls]\nca_file = %q\n[bridge.queue]\npath = %q\n", badCert, filepath.Join(dir, "c.db")), "no PEM certificate"},
		{"http password file", fmt.Sprintf("[http]\nenabled = true\naddress = \"127.0.0.1:0\"\npassword_file = %q\n", missing), "http.password_file"},
		{"http certificate", fmt.Sprintf("[http]\nenabled = true\naddress = \"127.0.0.1:0\"\n[http.tls]\ncert_file = %q\nkey_file = %q\n", badCert, badCert), "http.tls"},
		{"http on the network without auth", "[http]\nenabled = true\naddress = \"0.0.0.0:9184\"\n", "line 8: http.address"},
		{"value error with its line", "[gateway]\nretry_interval = \"1s\"\nmax_clients = -1\n", "line 8: gateway: max_clients = -1"},
		{"value in the second listener", "[[listen]]\nnetwork = \"udp4\"\naddress = \"127.0.0.1:0\"\nbatch_size = 100000\n", "line 9: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := file("gannet.toml", base+tc.extra)
			var out bytes.Buffer
			if rc := run(context.Background(), []string{"check-config", "-config", path}, nil, &out, &out); rc != 1 || !strings.Contains(out.String(), tc.want) {
				t.Errorf("check-config = %d, %q; want 1 and %q", rc, out.String(), tc.want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var serr bytes.Buffer
			if rc := run(ctx, []string{"serve", "-config", path}, nil, &serr, &serr); rc != 1 || !strings.Contains(serr.String(), tc.want) || strings.Contains(serr.String(), "serving MQTT-SN") {
				t.Errorf("serve = %d, %q; want 1, %q, before serving", rc, serr.String(), tc.want)
			}
		})
	}
	// The same files, good: ok.
	path := file("good.toml", base+fmt.Sprintf("[[listen]]\nnetwork = \"dtls\"\naddress = \"127.0.0.1:0\"\n[listen.dtls]\npsk_file = %q\n", goodPSK))
	var out bytes.Buffer
	if rc := run(context.Background(), []string{"check-config", "-config", path}, nil, &out, &out); rc != 0 {
		t.Errorf("check-config of a good config = %d: %s", rc, out.String())
	}
}
