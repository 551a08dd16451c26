package radio

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/internal/outside"
)

// lockedBuffer collects a process's output for inspection while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// sClient starts openssl s_client against the link with a PSK and the
// given cipher; stdin stays open until the test ends.
func sClient(t *testing.T, ctx context.Context, l *DTLSLink, identity, key, cipher string) (*exec.Cmd, *lockedBuffer, *os.File) {
	t.Helper()
	openssl := outside.Program(t, "openssl", "openssl")
	cmd := exec.CommandContext(ctx, openssl, "s_client", "-dtls1_2", "-connect", l.LocalAddr().String(),
		"-psk_identity", identity, "-psk", key, "-cipher", cipher, "-quiet", "-no_ign_eof")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start openssl s_client: %v", err)
	}
	r.Close()
	t.Cleanup(func() {
		w.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, out, w
}

func TestOpenSSLClientPSK(t *testing.T) {
	for _, cipher := range []string{"PSK-AES128-CCM8", "PSK-AES128-GCM-SHA256"} {
		t.Run(cipher, func(t *testing.T) {
			l, _ := pskLink(t, DTLSConfig{})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, out, stdin := sClient(t, ctx, l, "sensor-2", testKey2, cipher)
			// s_client sends each line of stdin as one record once the
			// handshake is done.
			if _, err := fmt.Fprintln(stdin, "hello from openssl"); err != nil {
				t.Fatal(err)
			}
			got, addr := readLink(t, l)
			if got != "hello from openssl\n" {
				t.Fatalf("link read %q; want the line s_client sent (s_client said: %s)", got, out)
			}
			if id, ok := l.Identity(addr); id != "sensor-2" || !ok {
				t.Errorf("Identity = %q, %v; want sensor-2", id, ok)
			}
			if _, err := l.WriteToUDPAddrPort([]byte("hello from gannet\n"), addr); err != nil {
				t.Fatal(err)
			}
			for !strings.Contains(out.String(), "hello from gannet") {
				select {
				case <-ctx.Done():
					t.Fatalf("s_client never printed the gateway's reply; it said: %s", out)
				case <-time.After(10 * time.Millisecond): // polling output, not synchronising
				}
			}
		})
	}
}

func TestOpenSSLClientWrongPSKIsRefused(t *testing.T) {
	l, _ := pskLink(t, DTLSConfig{HandshakeTimeout: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A record that fails its MAC is dropped silently (RFC 6347 4.1.2.7),
	// so s_client retransmits its Finished for a long time; the server's
	// handshake times out and fails. Wait for that, not for s_client.
	_, out, stdin := sClient(t, ctx, l, "sensor-1", testKey2, "PSK-AES128-CCM8")
	fmt.Fprintln(stdin, "must not arrive")
	for l.Stats().HandshakeFailures == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("the server never failed the handshake with a wrong key; s_client said: %s", out)
		case <-time.After(10 * time.Millisecond): // polling a counter, bounded by ctx
		}
	}
	if st := l.Stats(); st.Handshakes != 0 || st.Sessions != 0 || st.Received != 0 {
		t.Errorf("Stats() = %+v; want no session and nothing received", st)
	}
}
