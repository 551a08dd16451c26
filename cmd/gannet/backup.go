package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// backupPath is the [http] listener's backup endpoint: GET streams a
// consistent copy of the store file (Store.Backup).
const backupPath = "/-/backup"

// backupCmd runs "gannet backup": a consistent copy of the core's store
// file (sessions, their queues, retained messages, each sensor's gateway
// state; the bridge queues when they share the file) into -o. A running
// gannet holds the file's lock, so the copy comes from its [http]
// listener (GET /-/backup, one read transaction while commits go on);
// with no gannet running, the file is opened and copied directly. The
// copy is written beside -o, checked by opening it as a store, and then
// renamed to -o, so -o is either a complete, readable store or untouched.
// docs/operations.md says how to restore it.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("backup", stderr)
	path := configFlag(fs)
	out := fs.String("o", "", "write the copy to this `file` (required)")
	url := fs.String("url", "", "the running gannet's [http] `URL` (default: from the configuration's [http] section)")
	user := fs.String("user", "", "basic-auth `user` for the [http] listener; the password is read from $GANNET_HTTP_PASSWORD")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this `long`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-o FILE is required: %w", errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: %w", fs.Arg(0), errUsage)
	}
	if fi, err := os.Stat(*out); err == nil && fi.IsDir() {
		return fmt.Errorf("-o %s is a directory: give the copy's file name: %w", *out, errUsage)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if cfg.Store.Type == storeMemory {
		return fmt.Errorf("%s: [store] type = %q: nothing is stored, nothing to back up", *path, storeMemory)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	defer tmp.Close()

	storePath := cfg.Store.path(*path)
	n, how, err := backupOffline(storePath, tmp)
	if errors.Is(err, boltstore.ErrLocked) { // a gannet runs: ask it
		if *url == "" {
			if *url, err = httpURL(cfg, *path); err != nil {
				return fmt.Errorf("backup: %s is in use by a running gannet and %w", storePath, err)
			}
		}
		n, err = backupOnline(ctx, *url, *user, tmp)
		how = "from the running gannet at " + *url
	}
	if err != nil {
		return err
	}
	if n == 0 { // Open below would take an empty file for a new store
		return fmt.Errorf("backup: the copy of %s is empty", storePath)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// The copy must open as a store, as serve will open it at a restore.
	// Opening gives it a write-ahead log; Close checkpoints it into the
	// file, and the log goes: a log left beside a restored copy would be
	// refused.
	st, err := boltstore.Open(tmp.Name(), boltstore.Options{LockTimeout: time.Second})
	if err != nil {
		return fmt.Errorf("backup: the copy does not open as a store: %w", err)
	}
	logs := st.LogPaths()
	defer func() {
		for _, l := range logs {
			os.Remove(l) // also after a failure below: nothing of the temporary copy stays
		}
	}()
	if err := st.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if d, err := os.Open(filepath.Dir(*out)); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	fmt.Fprintf(stdout, "%s: %d bytes, a consistent copy of %s %s\n", *out, n, storePath, how)
	return nil
}

// backupOffline copies the store file at path into w when no gannet holds
// it; the error wraps boltstore.ErrLocked when one does.
func backupOffline(path string, w io.Writer) (int64, string, error) {
	if _, err := os.Stat(path); err != nil {
		// Open would create an empty store: a typo in the path must not
		// give an empty backup.
		return 0, "", fmt.Errorf("backup: the store file: %w", err)
	}
	st, err := boltstore.Open(path, boltstore.Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		return 0, "", err
	}
	n, err := st.Backup(w)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("backup: %w", cerr)
	}
	return n, "(no gannet running: read from the file)", err
}

// backupOnline fetches GET /-/backup from the [http] listener at base into
// w.
func backupOnline(ctx context.Context, base, user string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+backupPath, nil)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if user != "" {
		req.SetBasicAuth(user, os.Getenv("GANNET_HTTP_PASSWORD"))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return 0, fmt.Errorf("backup: %s answered %s: %s", req.URL, resp.Status, strings.TrimSpace(string(body)))
	}
	// A copy cut short (the server failed mid-way) ends without the final
	// chunk: io.Copy returns io.ErrUnexpectedEOF.
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup: receive from %s: %w", req.URL, err)
	}
	return n, nil
}

// httpURL is the base URL of the [http] listener the configuration at
// path (cfg) describes, as seen from this machine.
func httpURL(cfg *fileConfig, path string) (string, error) {
	if !cfg.HTTP.Enabled {
		return "", fmt.Errorf("%s: [http] is not enabled: give -url", path)
	}
	scheme, addr := "http", cfg.HTTP.address()
	if cfg.HTTP.TLS.CertFile != "" {
		scheme = "https"
	}
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return scheme + "://" + addr, nil
}

// apiBackup is GET /-/backup: a consistent copy of the store file, from
// one read transaction (commits go on meanwhile). The [http] listener's
// basic auth guards it like every other page; on an address other than
// loopback it is required.
func (in *instance) apiBackup(w http.ResponseWriter, r *http.Request) {
	if in.store == nil {
		http.Error(w, `[store] type = "memory": nothing to back up`, http.StatusNotFound)
		return
	}
	// A large store takes longer than the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="gannet-backup.db"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead { // the mux routes HEAD to GET handlers: no copy for nobody
		return
	}
	start := time.Now()
	n, err := in.store.Backup(w)
	if err != nil {
		in.log.Error("backup failed", "remote", r.RemoteAddr, "bytes", n, "err", err)
		// Abort the response: the client sees a cut transfer, not a
		// complete-looking file.
		panic(http.ErrAbortHandler)
	}
	in.log.Info("backup served", "remote", r.RemoteAddr, "bytes", n, "took", time.Since(start).Round(time.Millisecond))
}
