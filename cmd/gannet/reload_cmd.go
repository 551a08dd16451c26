package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// reloadCmd runs "gannet reload": it asks a running gannet to reread its
// configuration through POST /-/reload on the [http] listener (found in
// the configuration file, or given with -url) and prints what was
// applied. Without the [http] listener, send SIGHUP instead (systemctl
// reload gannet does): the same reload, reported in the log.
func reloadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("reload", stderr)
	path := configFlag(fs)
	url := fs.String("url", "", "the running gannet's [http] `URL` (default: from the configuration's [http] section)")
	user := fs.String("user", "", "basic-auth `user` for the [http] listener; the password is read from $GANNET_HTTP_PASSWORD")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this `long`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *url == "" {
		cfg, err := loadConfig(*path)
		if err != nil {
			return fmt.Errorf("find the [http] listener (or give -url): %w", err)
		}
		if *url, err = httpURL(cfg, *path); err != nil { // backup.go
			return fmt.Errorf("%w, or send SIGHUP (kill -HUP PID, systemctl reload gannet)", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*url, "/")+"/-/reload", nil)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if *user != "" {
		req.SetBasicAuth(*user, os.Getenv("GANNET_HTTP_PASSWORD"))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	defer resp.Body.Close()
	var rep reloadReport
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reload: read the answer: %w", err)
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return fmt.Errorf("reload: %s answered %s: %s", req.URL, resp.Status, strings.TrimSpace(string(body)))
	}
	if rep.Error != "" {
		return fmt.Errorf("reload rejected, the running configuration stays: %s", rep.Error)
	}
	for _, a := range rep.Applied {
		fmt.Fprintln(stdout, "applied:     ", a)
	}
	for _, n := range rep.NotApplied {
		fmt.Fprintln(stdout, "not applied: ", n)
	}
	return nil
}
