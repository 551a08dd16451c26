package radio

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MaxPSKs caps the entries of a PSK file.
const MaxPSKs = 1 << 20

// credentials is everything Reload replaces: swapped as one value, so a
// handshake sees either the old set or the new one, never a mix.
type credentials struct {
	psks map[string][]byte // identity -> key; nil when no psk_file
	cert *tls.Certificate  // nil when no cert_file
	cas  *x509.CertPool    // nil when no ca_file
}

// loadCredentials reads the files named in d.
func loadCredentials(d *DTLSConfig) (*credentials, error) {
	c := &credentials{}
	if d.PSKFile != "" {
		psks, err := LoadPSKFile(d.PSKFile)
		if err != nil {
			return nil, err
		}
		c.psks = psks
	}
	if d.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(d.CertFile, d.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("radio: load dtls certificate %s and key %s: %w", d.CertFile, d.KeyFile, err)
		}
		c.cert = &cert
	}
	if d.CAFile != "" {
		pem, err := os.ReadFile(d.CAFile)
		if err != nil {
			return nil, fmt.Errorf("radio: read dtls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("radio: dtls ca_file %s: no PEM certificate in it", d.CAFile)
		}
		c.cas = pool
	}
	return c, nil
}

// LoadPSKFile reads a PSK file: one "identity:hexkey" per line, blank lines
// and lines starting with '#' ignored (mosquitto's psk_file format). An
// identity may not contain ':'; a key is 1 to 64 octets of hex. Errors name
// the line.
func LoadPSKFile(path string) (map[string][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("radio: read psk_file: %w", err)
	}
	return parsePSKs(path, data)
}

func parsePSKs(path string, data []byte) (map[string][]byte, error) {
	psks := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, key, ok := strings.Cut(line, ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("radio: %s:%d: want identity:hexkey", path, n)
		}
		k, err := hex.DecodeString(strings.TrimSpace(key))
		if err != nil || len(k) == 0 || len(k) > 64 {
			return nil, fmt.Errorf("radio: %s:%d: identity %q: key must be 1 to 64 octets of hex", path, n, id)
		}
		if _, dup := psks[id]; dup {
			return nil, fmt.Errorf("radio: %s:%d: identity %q appears twice", path, n, id)
		}
		if len(psks) == MaxPSKs {
			return nil, fmt.Errorf("radio: %s:%d: more than %d identities", path, n, MaxPSKs)
		}
		psks[id] = k
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("radio: read %s: %w", path, err)
	}
	if len(psks) == 0 {
		return nil, fmt.Errorf("radio: %s: no identity in the psk file", path)
	}
	return psks, nil
}

// errNoSuchIdentity refuses a PSK handshake with an identity not in the file.
var errNoSuchIdentity = errors.New("unknown psk identity")

// verifyClientCert checks a client's chain against the current CA pool;
// with no certificate it fails only when one is required.
func verifyClientCert(raw [][]byte, cas *x509.CertPool, required bool) error {
	if len(raw) == 0 {
		if required {
			return errors.New("radio: dtls client sent no certificate")
		}
		return nil
	}
	if cas == nil {
		return errors.New("radio: dtls client certificate but no ca_file to verify it")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return fmt.Errorf("radio: dtls client certificate %d: %w", i, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots: cas, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("radio: dtls client certificate %q: %w", certs[0].Subject.CommonName, err)
	}
	return nil
}
