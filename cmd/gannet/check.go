package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/radio"
)

// check runs what serve checks at start-up beyond decoding, short of
// binding sockets: every file the configuration names exists and parses,
// and every directory it writes to is writable. check-config, serve and a
// reload all run it, so check-config says "ok" only for a file serve
// accepts (sockets aside). path is the configuration file, for messages.
func (c *fileConfig) check(path string) error {
	var errs []error
	add := func(where string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", path, where, err))
		}
	}
	for i, l := range c.Listen {
		where := fmt.Sprintf("listen[%d] (%s)", i, l.Address)
		d := l.DTLS
		if d.PSKFile != "" {
			_, err := radio.LoadPSKFile(d.PSKFile)
			add(where+" dtls.psk_file", err)
		}
		if d.CertFile != "" {
			_, err := tls.LoadX509KeyPair(d.CertFile, d.KeyFile)
			add(where+" dtls.cert_file/key_file", err)
		}
		if d.CAFile != "" {
			add(where+" dtls.ca_file", checkCAFile(d.CAFile))
		}
	}
	// serve loads [mqtt.auth] even with the listener off: its ACL binds
	// the sensors too.
	_, err := auth.New(c.MQTT.Auth)
	add("[mqtt.auth]", err)
	if !c.MQTT.Disabled {
		if c.MQTT.TLS.Enabled() {
			_, err := c.MQTT.TLS.ServerTLS()
			add("[mqtt.tls]", err)
		}
	}
	if c.Transparent.Enabled {
		_, err := c.Transparent.ClientTLS()
		add("[transparent.tls]", err)
	}
	names, queues := map[string]bool{}, map[string]string{}
	storePath := ""
	if c.Store.Type != storeMemory {
		storePath = absPath(c.Store.path(path))
	}
	for _, b := range c.Bridges {
		where := fmt.Sprintf("bridge %q", b.Name)
		if names[b.Name] {
			add(where, errors.New("two [[bridge]] sections with this name"))
		}
		names[b.Name] = true
		if q := filepath.Clean(b.Queue.Path); b.Queue.Path != "" {
			if other, ok := queues[q]; ok {
				add(where+" queue.path", fmt.Errorf("%s is already the queue of bridge %q", b.Queue.Path, other))
			}
			queues[q] = b.Name
		}
		if b.Queue.Path != "" { // "": the core's store
			add(where+" queue.path", checkQueueFile(b.Queue.Path, storePath))
		}
		if b.TLS.CAFile != "" {
			add(where+" tls.ca_file", checkCAFile(b.TLS.CAFile))
		}
		if b.TLS.CertFile != "" {
			_, err := tls.LoadX509KeyPair(b.TLS.CertFile, b.TLS.KeyFile)
			add(where+" tls.cert_file/key_file", err)
		}
	}
	if c.Store.Type != storeMemory {
		add("[store] path", checkCreatable(c.Store.path(path)))
	}
	if c.HTTP.Enabled {
		_, _, err := c.HTTP.check()
		add("[http]", err)
	}
	return errors.Join(errs...)
}

// checkQueueFile checks a bridge's own queue file as OpenStore will open
// it: not the core's store file (which holds its own lock and log), in a
// directory that exists and takes new files, and the file and its log
// segments beside it (path.wal.0, path.wal.1), those that exist, open for
// writing. What is in them is read at start-up, not here.
func checkQueueFile(path, storePath string) error {
	if p := absPath(path); storePath != "" && (p == storePath || strings.HasPrefix(p, storePath+".wal.")) {
		return fmt.Errorf("%s is [store]'s file: give the queue a file of its own, or leave queue.path out to keep the queue in [store]'s file", path)
	}
	if err := checkWritable(path); err != nil {
		return err
	}
	for _, wal := range []string{path + ".wal.0", path + ".wal.1"} {
		if f, err := os.OpenFile(wal, os.O_RDWR, 0); err == nil {
			f.Close()
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("its log %s: %w", wal, err)
		}
	}
	return nil
}

// absPath returns path made absolute and clean (as it is when relative
// and the working directory cannot be read).
func absPath(path string) string {
	if p, err := filepath.Abs(path); err == nil {
		return p
	}
	return filepath.Clean(path)
}

// checkCAFile reads a PEM bundle of CA certificates.
func checkCAFile(path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return nil
}

// checkWritable checks that the file at path can be written: its directory
// exists and takes a new file, and the file, if it exists, opens for
// writing. It creates and removes a probe file beside it.
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".gannet-check-*")
	if err != nil {
		return fmt.Errorf("directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// checkCreatable checks that the file at path can be created as serve
// creates the store: missing directories are made, so the nearest existing
// one must take new entries, and an existing file must open for writing.
func checkCreatable(path string) error {
	dir := filepath.Dir(path)
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return checkWritable(filepath.Join(dir, filepath.Base(path)))
}
