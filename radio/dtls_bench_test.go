package radio

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkDTLSSessionMemory measures what one established DTLS session
// costs the server: heap bytes and goroutines per session, with 500 PSK
// sessions held open by clients in a child process (so their memory is not
// counted). Run it with -benchtime=1x; b.N does not change the count.
func BenchmarkDTLSSessionMemory(b *testing.B) {
	const sessions = 500
	var psks strings.Builder
	for i := range sessions {
		fmt.Fprintf(&psks, "bench-%d:%s\n", i, testKey1)
	}
	l := listenDTLST(b, DTLSConfig{
		PSKFile:       writeFile(b, b.TempDir(), "psk", psks.String()),
		HandshakeRate: 1e6, HandshakeBurst: 1e6,
	})
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()

		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDTLSClients$")
		cmd.Env = append(os.Environ(), "RADIO_HELPER_DTLS="+l.LocalAddr().String(), "RADIO_HELPER_SESSIONS="+strconv.Itoa(sessions))
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		ready := make(chan string, 1)
		go func() { // exits when the child's stdout closes
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == "ready" {
					ready <- "ready"
				}
			}
			close(ready)
		}()
		select {
		case r := <-ready:
			if r != "ready" {
				b.Fatal("helper exited before establishing its sessions")
			}
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			b.Fatal("helper did not establish its sessions within 2 minutes")
		}
		if got := l.Stats().Sessions; got != sessions {
			b.Fatalf("%d sessions established; want %d", got, sessions)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		g1 := runtime.NumGoroutine()
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/sessions, "heap-B/session")
		b.ReportMetric(float64(g1-g0)/sessions, "goroutines/session")
		stdin.Close()
		cmd.Wait()
	}
}

// TestHelperDTLSClients is the child process of BenchmarkDTLSSessionMemory:
// it opens RADIO_HELPER_SESSIONS sessions to RADIO_HELPER_DTLS, prints
// "ready" and holds them until stdin closes. It does nothing otherwise.
func TestHelperDTLSClients(t *testing.T) {
	addr := os.Getenv("RADIO_HELPER_DTLS")
	if addr == "" {
		t.Skip("helper process for BenchmarkDTLSSessionMemory")
	}
	n, _ := strconv.Atoi(os.Getenv("RADIO_HELPER_SESSIONS"))
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		// One identity per session: a second session with an identity
		// replaces the first.
		if _, err := dialPSK(t, ua, fmt.Sprintf("bench-%d", i), testKey1); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
}
