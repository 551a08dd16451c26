package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/radio"
)

func TestOpenLinksUDPAndDTLS(t *testing.T) {
	dir := t.TempDir()
	psk := filepath.Join(dir, "psk")
	if err := os.WriteFile(psk, []byte("sensor-1:00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	links, err := openLinks([]radio.ListenerConfig{
		{Network: "udp4", Address: "127.0.0.1:0"},
		{Network: "dtls", Address: "127.0.0.1:0", DTLS: radio.DTLSConfig{PSKFile: psk}},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()
	if _, ok := links[0].(*radio.UDPLink); !ok {
		t.Errorf("links[0] is %T; want *radio.UDPLink", links[0])
	}
	d, ok := links[1].(*radio.DTLSLink)
	if !ok {
		t.Fatalf("links[1] is %T; want *radio.DTLSLink", links[1])
	}
	if err := reloadLinks(links, log); err != nil || d.Stats().Reloads != 1 {
		t.Errorf("reloadLinks = %v, Reloads = %d; want nil, 1", err, d.Stats().Reloads)
	}
	os.WriteFile(psk, []byte("broken\n"), 0o600)
	if err := reloadLinks(links, log); err == nil || !strings.Contains(err.Error(), "psk") {
		t.Errorf("reloadLinks with a broken psk file = %v; want an error naming it", err)
	}
}

func TestOpenLinksClosesWhatItOpenedOnError(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := openLinks([]radio.ListenerConfig{
		{Network: "udp4", Address: "127.0.0.1:0"},
		{Network: "dtls", Address: "127.0.0.1:0", DTLS: radio.DTLSConfig{PSKFile: "/nonexistent/psk"}},
	}, log)
	if err == nil || !strings.Contains(err.Error(), "listen[1]") {
		t.Fatalf("openLinks = %v; want an error naming listen[1]", err)
	}
}

// TestConfigDTLSExampleLoads uncomments the DTLS example in the root
// config.toml and loads it, so the example cannot rot.
func TestConfigDTLSExampleLoads(t *testing.T) {
	root, err := os.ReadFile("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(root)
	start, end := strings.Index(text, "# BEGIN DTLS EXAMPLE\n"), strings.Index(text, "# END DTLS EXAMPLE")
	if start < 0 || end < start {
		t.Fatal("config.toml has no BEGIN/END DTLS EXAMPLE block")
	}
	var b strings.Builder
	b.WriteString(text[:start])
	for _, line := range strings.Split(text[start:end], "\n")[1:] {
		b.WriteString(strings.TrimPrefix(line, "# ") + "\n") // "# # x" stays a comment
	}
	b.WriteString(text[end:])
	path := filepath.Join(t.TempDir(), "gannet.toml")
	os.WriteFile(path, []byte(b.String()), 0o600)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatalf("config.toml with the DTLS example uncommented: %v", err)
	}
	if len(cfg.Listen) != 2 || cfg.Listen[1].Network != "dtls" || cfg.Listen[1].DTLS.PSKFile == "" {
		t.Errorf("Listen = %+v; want the udp listener and a dtls one with a psk_file", cfg.Listen)
	}
}
