package snclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
)

// A sensor that connects, subscribes to its commands, publishes a reading
// and disconnects. (Not run: it needs a gateway on localhost:1884.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	commands := make(chan string, 16)
	c, err := snclient.Dial(ctx, "udp", "localhost:1884", snclient.Options{
		ClientID: "sensor-1",
		// The handler runs on the client's reader goroutine: hand the
		// message off without blocking, copying the payload.
		Handler: func(m snclient.Message) {
			select {
			case commands <- m.Topic + " " + string(m.Payload):
			default: // full: drop rather than stall the client
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Connect(ctx); errors.Is(err, snclient.ErrCongestion) {
		log.Fatal("gateway congested; try again in a few minutes")
	} else if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, snclient.Named("cmd/sensor-1/#"), 1); err != nil {
		log.Fatal(err)
	}
	if err := c.Publish(ctx, snclient.Named("sensors/1/temp"), 1, false, []byte("21.5")); err != nil {
		log.Fatal(err)
	}
	select {
	case cmd := <-commands:
		fmt.Println("command:", cmd)
	case <-ctx.Done():
	}
	if err := c.Disconnect(ctx); err != nil {
		log.Print(err)
	}
}

// A sleeping sensor: sleep, wake now and then to collect what the gateway
// buffered, and go back to sleep. (Not run: it needs a gateway.)
func ExampleClient_CheckMessages() {
	ctx := context.Background()
	c, err := snclient.Dial(ctx, "udp", "localhost:1884", snclient.Options{
		ClientID: "sleepy-1",
		Handler:  func(m snclient.Message) { fmt.Printf("%s: %s\n", m.Topic, m.Payload) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	if err := c.Sleep(ctx, 10*time.Minute); err != nil {
		log.Fatal(err)
	}
	wake := time.NewTicker(5 * time.Minute) // the radio is off in between
	defer wake.Stop()
	for range 3 {
		<-wake.C
		// The handler receives the buffered messages before this returns.
		if err := c.CheckMessages(ctx); err != nil {
			log.Print(err)
		}
	}
	if err := c.Connect(ctx); err != nil { // awake for good
		log.Fatal(err)
	}
}
