package mqttcore_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// TestSessionBudget: a front-end's budget caps the sessions it creates,
// exactly, when many goroutines attach at once; clients without the budget
// keep the rest of MaxSessions; an ended session gives its place back.
func TestSessionBudget(t *testing.T) {
	const total, share, tries = 30, 20, 200
	b := newBroker(t, mqttcore.Config{MaxSessions: total})
	budget, err := mqttcore.NewSessionBudget(share)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []*mqttcore.Conn
		other int
	)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := persistent(fmt.Sprintf("sensor-%d", i))
			opts.Budget = budget
			c, _, err := b.Attach(&fakeFE{}, opts)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				conns = append(conns, c)
			case isErr(err, mqttcore.ErrTooManySessions):
			default:
				other++
				t.Errorf("Attach(sensor-%d) = %v; want nil or ErrTooManySessions", i, err)
			}
		}()
	}
	wg.Wait()
	if len(conns) != share || budget.Len() != share {
		t.Fatalf("%d attached, budget.Len() = %d; want %d and %d", len(conns), budget.Len(), share, share)
	}
	for i := range total - share {
		attach(t, b, persistent(fmt.Sprintf("mqtt-%d", i))) // fails the test if refused
	}
	if _, _, err := b.Attach(&fakeFE{}, persistent("mqtt-over")); !isErr(err, mqttcore.ErrTooManySessions) {
		t.Errorf("Attach beyond MaxSessions = %v; want ErrTooManySessions", err)
	}
	// Ending a budgeted session gives its place back to the budget.
	if err := conns[0].SetSessionExpiry(0); err != nil {
		t.Fatal(err)
	}
	if err := conns[0].Disconnect(); err != nil {
		t.Fatal(err)
	}
	if budget.Len() != share-1 {
		t.Errorf("budget.Len() after a session ended = %d; want %d", budget.Len(), share-1)
	}
	opts := persistent("sensor-new")
	opts.Budget = budget
	if _, _, err := b.Attach(&fakeFE{}, opts); err != nil {
		t.Errorf("Attach into the freed place = %v", err)
	}
	if _, err := mqttcore.NewSessionBudget(0); !isErr(err, mqttcore.ErrInvalidConfig) {
		t.Errorf("NewSessionBudget(0) = %v; want ErrInvalidConfig", err)
	}
}
