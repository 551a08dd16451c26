package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
	"github.com/gannet-mqtt/gannet/snclient"
)

// TestBackupRunningGatewayAndRestore backs up the store of a running
// gannet (the built binary, its file locked) with `gannet backup`, which
// fetches it from the [http] listener, while a sleeping sensor has five
// acknowledged commands queued; a command published after the backup is
// not in the copy. The copy restored into a fresh data directory starts a
// gannet where the sleeper wakes and gets the five commands, and the
// retained message is there. With no gannet running, `gannet backup`
// reads the file itself.
func TestBackupRunningGatewayAndRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gannet binary; skipped with -short")
	}
	dir := t.TempDir()
	gannet := bridgeBuildGannet(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfgPath, udp, mqttAddr := storeServeConfig(t, dir)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "tcp"))
	cfgText, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfgText = fmt.Appendf(cfgText, "\n[http]\nenabled = true\naddress = %q\n", httpAddr)
	if err := os.WriteFile(cfgPath, cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	p := bridgeStart(t, gannet, "serve", "-config", cfgPath)

	var gotMu sync.Mutex
	got := map[string]int{} // what the sleeper received
	sleeper := sensorUp(t, ctx, udp, snclient.Options{ClientID: "sleeper", PersistentSession: true,
		RetryInterval: 200 * time.Millisecond, MaxRetries: 10,
		Handler: func(m snclient.Message) {
			gotMu.Lock()
			got[string(m.Payload)]++
			gotMu.Unlock()
		}})
	if sleeper == nil {
		t.FailNow()
	}
	defer sleeper.Close()
	if _, err := sleeper.Subscribe(ctx, snclient.Named("cmd/sleeper"), snclient.QoS1); err != nil {
		t.Fatalf("sleeper subscribe: %v", err)
	}
	if err := sleeper.Sleep(ctx, 10*time.Minute); err != nil {
		t.Fatalf("sleeper sleep: %v", err)
	}
	ctl := newStoreApp("ctl", mqttAddr)
	ctl.connect(t, ctx)
	publish := func(topic, payload string, retain bool) {
		t.Helper()
		// The PUBACK follows the commit: the message is in the file.
		if _, err := ctl.client.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: retain, Payload: []byte(payload)}); err != nil {
			t.Fatalf("publish %s %s: %v", topic, payload, err)
		}
	}
	publish("cfg/site", "v1", true)
	const queued = 5
	for i := range queued {
		publish("cmd/sleeper", fmt.Sprintf("cmd-%d", i), false)
	}

	backup := filepath.Join(dir, "backup.db")
	runBackup := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, gannet, append([]string{"backup"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gannet backup %s: %v\n%s\ngannet serve:\n%s", strings.Join(args, " "), err, out, p.out)
		}
		return string(out)
	}
	if out := runBackup("-config", cfgPath, "-o", backup); !strings.Contains(out, "from the running gannet at http://"+httpAddr) {
		t.Errorf("gannet backup of a running gannet said %q; want it fetched from http://%s", out, httpAddr)
	}
	publish("cmd/sleeper", "cmd-after", false) // not in the copy
	p.kill()

	// Restore: a fresh directory with the same configuration, the copy in
	// place of its store file.
	dir2 := t.TempDir()
	cfg2 := filepath.Join(dir2, "config.toml")
	if err := os.WriteFile(cfg2, cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir2, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, defaultStorePath), data, 0o600); err != nil {
		t.Fatal(err)
	}
	p2 := bridgeStart(t, gannet, "serve", "-config", cfg2)
	waitReady(t, ctx, p2, "http://"+httpAddr+"/readyz")

	// The sleeper, which never reconnected, wakes and gets the five.
	if err := sleeper.CheckMessages(ctx); err != nil {
		t.Fatalf("sleeper wake on the restored gannet: %v\n%s", err, p2.out)
	}
	gotMu.Lock()
	for i := range queued {
		if c := fmt.Sprintf("cmd-%d", i); got[c] == 0 {
			t.Errorf("the restored gannet did not deliver %s to the sleeper (got %v)", c, got)
		}
	}
	if got["cmd-after"] != 0 {
		t.Errorf("the sleeper got cmd-after, published after the backup: the copy is not the state at the backup")
	}
	gotMu.Unlock()
	late := newStoreApp("late", mqttAddr)
	late.connect(t, ctx)
	if _, err := late.client.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "cfg/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	for late.count("v1") == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("the retained message is not in the restored store\n%s", p2.out)
		case <-time.After(5 * time.Millisecond): // poll what the app received; bounded by ctx
		}
	}

	// Offline: no gannet runs, backup reads the file.
	p2.kill()
	offline := filepath.Join(dir2, "offline.db")
	if out := runBackup("-config", cfg2, "-o", offline); !strings.Contains(out, "no gannet running") {
		t.Errorf("gannet backup with no gannet running said %q; want it read from the file", out)
	}
	st, err := boltstore.Open(offline, boltstore.Options{})
	if err != nil {
		t.Fatalf("the offline copy does not open: %v", err)
	}
	st.Close()
}

// waitReady polls url (a gannet process's /readyz) until it answers 200.
func waitReady(t *testing.T, ctx context.Context, p *bridgeProc, url string) {
	t.Helper()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select { // poll an outside process; bounded by ctx
		case <-p.exit:
			t.Fatalf("gannet exited:\n%s", p.out)
		case <-ctx.Done():
			t.Fatalf("%s never answered 200\n%s", url, p.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestBackupCommandRefuses: the usage errors of gannet backup, a memory
// store, a store file that does not exist (never an empty copy), and a
// running gannet without [http].
func TestBackupCommandRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const listen = "[[listen]]\nnetwork = \"udp4\"\naddress = \"127.0.0.1:0\"\n"
	memory := write("memory.toml", listen+"[store]\ntype = \"memory\"\n")
	missing := write("missing.toml", listen+"[store]\npath = \"nowhere/gannet.db\"\n")
	locked := write("locked.toml", listen+"[store]\npath = \"locked.db\"\n")
	st, err := boltstore.Open(filepath.Join(dir, "locked.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close() // holds the lock, as a running gannet does
	out := filepath.Join(dir, "copy.db")
	for _, tc := range []struct {
		args []string
		rc   int
		want string
	}{
		{[]string{"-config", memory}, 2, "-o FILE is required"},
		{[]string{"-config", memory, "-o", out, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-config", memory, "-o", dir}, 2, "is a directory"},
		{[]string{"-config", memory, "-o", out}, 1, "nothing to back up"},
		{[]string{"-config", missing, "-o", out}, 1, "nowhere/gannet.db: no such file"},
		{[]string{"-config", locked, "-o", out}, 1, "[http] is not enabled: give -url"},
	} {
		var stdout, stderr bytes.Buffer
		rc := run(context.Background(), append([]string{"backup"}, tc.args...), nil, &stdout, &stderr)
		if rc != tc.rc || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("gannet backup %v = %d, %q; want %d and %q", tc.args, rc, stderr.String(), tc.rc, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("gannet backup %v left %s", tc.args, out)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".copy.db.*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestBackupLeavesOnlyTheCopy: an offline backup of a store with committed
// data leaves exactly one file in the output directory, the copy (no
// temporary file, no write-ahead log of the check that opened it), and
// the copy holds the data without any log beside it.
func TestBackupLeavesOnlyTheCopy(t *testing.T) {
	dir := t.TempDir()
	storePath := filepath.Join(dir, "data", "gannet.db")
	st, err := boltstore.Open(storePath, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	st.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("backup-test"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte("[[listen]]\nnetwork = \"udp4\"\naddress = \"127.0.0.1:0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(outDir, "copy.db")
	var stdout, stderr bytes.Buffer
	if rc := run(context.Background(), []string{"backup", "-config", cfgPath, "-o", out}, nil, &stdout, &stderr); rc != 0 {
		t.Fatalf("gannet backup = %d: %s", rc, stderr.String())
	}
	entries, err := os.ReadDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "copy.db" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the output directory holds %v; want only copy.db", names)
	}
	cp, err := boltstore.Open(out, boltstore.Options{})
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	defer cp.Close()
	var got []byte
	if err := cp.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte("backup-test")); b != nil {
			got = append(got, b.Get([]byte("k"))...)
		}
		return nil
	}); err != nil || string(got) != "v" {
		t.Errorf("the copy holds %q, %v; want the committed v", got, err)
	}
}

// TestBackupThroughBasicAuth: with http.password_file set, GET /-/backup
// asks for it like every page, and gannet backup gives it from -user and
// $GANNET_HTTP_PASSWORD.
func TestBackupThroughBasicAuth(t *testing.T) {
	dir := t.TempDir()
	hash, err := auth.HashPassword([]byte("s3cret"), auth.Bcrypt)
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "http.passwd")
	if err := os.WriteFile(pwFile, []byte("ops:"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	storePath := filepath.Join(dir, "gannet.db")
	st, err := boltstore.Open(storePath, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close() // holds the lock: gannet backup must ask the listener
	in := &instance{version: "test", log: slog.New(slog.DiscardHandler), store: st}
	s, err := startHTTP(httpConfig{Enabled: true, Address: "127.0.0.1:0", PasswordFile: pwFile}, in.handler(), in.log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf("[[listen]]\nnetwork = \"udp4\"\naddress = \"127.0.0.1:0\"\n[store]\npath = %q\n[http]\nenabled = true\naddress = %q\npassword_file = %q\n",
		storePath, s.Addr().String(), pwFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "copy.db")
	backup := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		rc := run(context.Background(), append([]string{"backup", "-config", cfgPath, "-o", out}, args...), nil, &stdout, &stderr)
		return rc, stdout.String() + stderr.String()
	}
	if rc, msg := backup(); rc != 1 || !strings.Contains(msg, "401 Unauthorized") {
		t.Errorf("gannet backup without credentials = %d, %q; want 1 and 401 Unauthorized", rc, msg)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("a refused backup left %s", out)
	}
	t.Setenv("GANNET_HTTP_PASSWORD", "s3cret")
	if rc, msg := backup("-user", "ops"); rc != 0 || !strings.Contains(msg, "from the running gannet") {
		t.Fatalf("gannet backup -user ops = %d, %q; want 0, from the running gannet", rc, msg)
	}
	cp, err := boltstore.Open(out, boltstore.Options{})
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	cp.Close()
}
