package mqttcore_test

import (
	"fmt"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// sensorFE stands for a front-end's per-client state: Notify wakes the
// goroutine that writes to the client.
type sensorFE struct{ wake chan struct{} }

// Acked implements mqttcore.FrontEnd; without a journal nothing is deferred.
func (f *sensorFE) Acked(mqttcore.Ack) {}

func (f *sensorFE) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *sensorFE) Close(reason error) { /* drop the network connection */ }

// Example shows the front-end contract: attach, receive and acknowledge,
// sleep (detach keeping the session and will), wake (re-attach), and the
// retransmission with Dup of what was not acknowledged.
func Example() {
	b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	fe := &sensorFE{wake: make(chan struct{}, 1)}
	// CONNECT: a persistent session with a will and an in-flight window of 1.
	c, present, err := b.Attach(fe, mqttcore.ConnectOptions{
		ClientID:      "sensor-1",
		SessionExpiry: mqttcore.NeverExpire,
		Will:          &mqttcore.Will{Topic: "sensors/1/status", Payload: []byte("lost")},
		MaxInflight:   1,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("session present:", present)
	if err := c.Subscribe("sensors/1/cmd", mqttcore.SubOptions{QoS: 1}); err != nil {
		panic(err)
	}

	app := b.Inline("app")
	send := func(payload string) {
		if err := app.Publish(&mqttcore.Message{Topic: "sensors/1/cmd", Payload: []byte(payload), QoS: 1}); err != nil {
			panic(err)
		}
	}
	send("on")
	<-fe.wake // the writer goroutine wakes and drains Next
	d, _ := c.Next()
	fmt.Printf("send %s pid %d dup %v\n", d.Message.Payload, d.PacketID, d.Dup)
	if err := c.Ack(d.PacketID); err != nil { // PUBACK arrived
		panic(err)
	}

	send("off")
	d, _ = c.Next()
	fmt.Printf("send %s pid %d dup %v\n", d.Message.Payload, d.PacketID, d.Dup)
	// No PUBACK: the sensor goes to sleep for 10 minutes.
	if err := c.Sleep(10 * time.Minute); err != nil {
		panic(err)
	}
	send("blink") // queued while asleep
	info, _ := b.Session("sensor-1")
	fmt.Println("asleep:", info.State, "queued", info.Queued, "in flight", info.Inflight)

	// Wake: resume the session, keeping its will.
	c, present, err = b.Attach(fe, mqttcore.ConnectOptions{
		ClientID: "sensor-1", SessionExpiry: mqttcore.NeverExpire, MaxInflight: 1, KeepWill: true,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("session present:", present)
	for {
		d, ok := c.Next()
		if !ok {
			break
		}
		fmt.Printf("send %s pid %d dup %v\n", d.Message.Payload, d.PacketID, d.Dup)
		if err := c.Ack(d.PacketID); err != nil {
			panic(err)
		}
	}
	// A clean DISCONNECT: no will; the session stays for its expiry.
	if err := c.Disconnect(); err != nil {
		panic(err)
	}
	fmt.Println("wills published:", b.Stats().WillsPublished)
	// Output:
	// session present: false
	// send on pid 1 dup false
	// send off pid 2 dup false
	// asleep: asleep queued 1 in flight 1
	// session present: true
	// send off pid 2 dup true
	// send blink pid 3 dup false
	// wills published: 0
}
