package bridge

import (
	"context"
	"errors"
	"testing"

	"github.com/eclipse/paho.golang/autopaho"
)

// FailConnects makes the next n connection managers b starts fail to
// start, as autopaho.NewConnection does for a configuration it rejects.
func FailConnects(b *Bridge, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.newConn = func(ctx context.Context, cfg autopaho.ClientConfig) (*autopaho.ConnectionManager, error) {
		if n > 0 { // connect runs under b.mu
			n--
			return nil, errors.New("test: connection manager not started")
		}
		return autopaho.NewConnection(ctx, cfg)
	}
}

// QueueDiskBytes returns the disk space a queue's own file and its log
// take.
func QueueDiskBytes(t testing.TB, path string) int64 { return queueDiskBytes(t, path) }
