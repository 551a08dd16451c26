package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
)

// snFlags are the flags gannet pub and gannet sub share: where the gateway
// is, who the client is, and which topic it names.
type snFlags struct {
	gateway    string
	network    string
	clientID   string
	keepAlive  time.Duration
	persistent bool
	qos        int
	topic      string
	predefID   uint
	short      string
	predefined string
	timeout    time.Duration
	verbose    bool
	version    versionFlag
	username   string
	password   string
}

// versionFlag is the MQTT-SN protocol version of -protocol: "1.2" (the
// default) or "2.0" (also "1" and "2"), as mosquitto_pub's -V picks the
// MQTT version. It has no -V spelling: gannet sub's -V has long been
// -print-topic.
type versionFlag snclient.Version

func (v *versionFlag) String() string {
	if *v == 0 {
		return snclient.Version12.String()
	}
	return snclient.Version(*v).String()
}

func (v *versionFlag) Set(s string) error {
	switch s {
	case "1.2", "1", "12":
		*v = versionFlag(snclient.Version12)
	case "2.0", "2", "20":
		*v = versionFlag(snclient.Version20)
	default:
		return fmt.Errorf("MQTT-SN version %q: want 1.2 or 2.0", s)
	}
	return nil
}

// register defines the shared flags. The long names match gannet bench's
// (-qos, -topic-id, -short-topic, -count); the short ones of earlier
// releases (-q, -t, -p, -s, -id, -v) keep working.
func (f *snFlags) register(fs *flag.FlagSet, defaultQoS int) {
	fs.StringVar(&f.gateway, "gateway", "127.0.0.1:1884", "MQTT-SN gateway `host:port`")
	fs.StringVar(&f.network, "network", "udp", "udp, udp4 or udp6")
	fs.StringVar(&f.clientID, "client-id", "", "client `id` (default: a random snc-XXXXXXXX)")
	fs.DurationVar(&f.keepAlive, "keepalive", 60*time.Second, "keep-alive `period` (whole seconds)")
	fs.BoolVar(&f.persistent, "persistent", false, "connect with CleanSession=0 (keep the session)")
	fs.IntVar(&f.qos, "qos", defaultQoS, "QoS: -1, 0, 1 or 2")
	fs.StringVar(&f.topic, "topic", "", "topic `name` (registered with the gateway)")
	fs.UintVar(&f.predefID, "topic-id", 0, "predefined topic `id` instead of -topic")
	fs.StringVar(&f.short, "short-topic", "", "two-character short topic `name` instead of -topic")
	fs.StringVar(&f.predefined, "predefined", "", "predefined topics the gateway knows, as `id=topic,...` (names -topic uses)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up on the gateway after this `long` per request")
	fs.BoolVar(&f.verbose, "verbose", false, "log the client's state changes to stderr")
	fs.Var(&f.version, "protocol", "MQTT-SN `version`: 1.2 or 2.0")
	fs.StringVar(&f.username, "username", "", "MQTT-SN 2.0: authenticate as `user` (SASL PLAIN, checked against the gateway's [mqtt.auth] password file)")
	fs.StringVar(&f.password, "password", "", "MQTT-SN 2.0: the `password` of -username")
	for name, old := range map[string]string{"client-id": "id", "qos": "q", "topic": "t", "topic-id": "p", "short-topic": "s", "verbose": "v",
		"username": "u", "password": "P"} {
		alias(fs, name, old)
	}
}

// snTopic returns the one topic the flags name.
func (f *snFlags) snTopic() (snclient.Topic, error) {
	n := 0
	for _, set := range []bool{f.topic != "", f.predefID != 0, f.short != ""} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return snclient.Topic{}, fmt.Errorf("give exactly one of -topic (-t), -topic-id (-p) and -short-topic (-s): %w", errUsage)
	case f.predefID > 0xFFFE:
		return snclient.Topic{}, fmt.Errorf("-topic-id %d: a topic id is 1 to 65534: %w", f.predefID, errUsage)
	case f.predefID != 0:
		return snclient.Predefined(uint16(f.predefID)), nil
	case f.short != "":
		if len(f.short) != 2 {
			return snclient.Topic{}, fmt.Errorf("-short-topic %q: a short topic name has two characters: %w", f.short, errUsage)
		}
		return snclient.Short(f.short), nil
	}
	return snclient.Named(f.topic), nil
}

// parse parses args and returns the topic and QoS the flags name.
func (f *snFlags) parse(fs *flag.FlagSet, args []string) (snclient.Topic, snclient.QoS, error) {
	if err := parse(fs, args); err != nil {
		return snclient.Topic{}, 0, err
	}
	topic, err := f.snTopic()
	if err != nil {
		return snclient.Topic{}, 0, err
	}
	q, err := f.snQoS()
	if err == nil && f.username != "" && f.version != versionFlag(snclient.Version20) {
		err = fmt.Errorf("-username: authentication needs -protocol 2.0 (MQTT-SN 1.2 has none): %w", errUsage)
	}
	return topic, q, err
}

func (f *snFlags) snQoS() (snclient.QoS, error) {
	if f.qos < -1 || f.qos > 2 {
		return 0, fmt.Errorf("-qos %d: QoS is -1, 0, 1 or 2: %w", f.qos, errUsage)
	}
	if f.qos == -1 {
		return snclient.QoSMinus1, nil
	}
	return snclient.QoS(f.qos), nil
}

// parsePredefined reads "1=a/b,2=c/d".
func parsePredefined(s string) (map[uint16]string, error) {
	if s == "" {
		return nil, nil
	}
	m := map[uint16]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		id, err := strconv.ParseUint(k, 10, 16)
		if !ok || err != nil || v == "" {
			return nil, fmt.Errorf("-predefined %q: want id=topic[,id=topic...]: %w", kv, errUsage)
		}
		m[uint16(id)] = v
	}
	return m, nil
}

// dial opens a client to the gateway.
func (f *snFlags) dial(ctx context.Context, stderr io.Writer, h snclient.Handler) (*snclient.Client, error) {
	pre, err := parsePredefined(f.predefined)
	if err != nil {
		return nil, err
	}
	opts := snclient.Options{
		ClientID:          f.clientID,
		KeepAlive:         f.keepAlive,
		PersistentSession: f.persistent,
		PredefinedTopics:  pre,
		Handler:           h,
		Version:           snclient.Version(f.version),
	}
	if f.username != "" {
		opts.Auth = snclient.PlainAuth(f.username, f.password)
	}
	if f.verbose {
		opts.Logger = (&logConfig{Level: "debug"}).logger(stderr)
	}
	return snclient.Dial(ctx, f.network, f.gateway, opts)
}

// request bounds one exchange with the gateway.
func (f *snFlags) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, f.timeout)
}

// pub publishes messages to a gateway, like mqtt-sn-pub.
func pub(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flagSet("pub", stderr)
	var f snFlags
	f.register(fs, 0)
	msg := fs.String("message", "", "the message `payload`")
	lines := fs.Bool("lines", false, "publish each line of standard input as a message")
	null := fs.Bool("null", false, "publish an empty message")
	count := fs.Int("count", 1, "publish the message this many `times`")
	retain := fs.Bool("retain", false, "set the retain flag")
	for name, old := range map[string]string{"message": "m", "lines": "l", "null": "n", "count": "c", "retain": "r"} {
		alias(fs, name, old)
	}
	sleep := fs.Duration("sleep", 0, "after publishing, sleep for this `long` instead of disconnecting")
	topic, q, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if *count < 1 {
		return fmt.Errorf("-count %d: must be at least 1: %w", *count, errUsage)
	}
	if (*msg != "") && (*lines || *null) || (*lines && *null) || (*msg == "" && !*lines && !*null) {
		return fmt.Errorf("give exactly one of -message (-m), -lines (-l) and -null (-n): %w", errUsage)
	}
	c, err := f.dial(ctx, stderr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if q != snclient.QoSMinus1 { // QoS -1 needs no connection
		rctx, cancel := f.request(ctx)
		err := c.Connect(rctx)
		cancel()
		if err != nil {
			return err
		}
	}
	send := func(payload []byte) error {
		for range *count {
			rctx, cancel := f.request(ctx)
			err := c.Publish(rctx, topic, q, *retain, payload)
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if *lines {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 0, 64*1024), snclient.MaxMessageLen)
		for sc.Scan() {
			if err := send(sc.Bytes()); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
	} else if err := send([]byte(*msg)); err != nil {
		return err
	}
	if q == snclient.QoSMinus1 {
		return nil
	}
	rctx, cancel := f.request(ctx)
	defer cancel()
	if *sleep > 0 {
		return c.Sleep(rctx, *sleep)
	}
	return c.Disconnect(rctx)
}

// sub subscribes and prints what arrives, like mqtt-sn-sub.
func sub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("sub", stderr)
	var f snFlags
	f.register(fs, 0)
	count := fs.Int("count", 0, "exit after this many `messages` (0: run until interrupted)")
	withTopic := fs.Bool("print-topic", false, "print each message's topic before its payload")
	alias(fs, "count", "C")
	alias(fs, "print-topic", "V")
	sleep := fs.Duration("sleep", 0, "sleep between checks for messages: asleep for this `long`, then wake, collect and sleep again")
	topic, q, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if q == snclient.QoSMinus1 {
		return fmt.Errorf("-qos -1: a subscription is QoS 0, 1 or 2: %w", errUsage)
	}
	if *count < 0 {
		return fmt.Errorf("-count %d: must not be negative: %w", *count, errUsage)
	}
	got := make(chan struct{}, 1)
	received := 0
	// The handler runs on the client's reader goroutine, one message at a
	// time, so received needs no lock; stdout is written from there only.
	handler := func(m snclient.Message) {
		if *count > 0 && received >= *count {
			return
		}
		received++
		if *withTopic {
			fmt.Fprintf(stdout, "%s %s\n", m.Topic, m.Payload)
		} else {
			fmt.Fprintf(stdout, "%s\n", m.Payload)
		}
		if *count > 0 && received == *count {
			got <- struct{}{}
		}
	}
	c, err := f.dial(ctx, stderr, handler)
	if err != nil {
		return err
	}
	defer c.Close()
	rctx, cancel := f.request(ctx)
	err = c.Connect(rctx)
	cancel()
	if err != nil {
		return err
	}
	rctx, cancel = f.request(ctx)
	_, err = c.Subscribe(rctx, topic, q)
	cancel()
	if err != nil {
		return err
	}
	if *sleep > 0 {
		return sleepAndCollect(ctx, c, &f, *sleep, got)
	}
	select {
	case <-ctx.Done():
	case <-got:
	}
	rctx, cancel = f.request(context.WithoutCancel(ctx))
	defer cancel()
	return c.Disconnect(rctx)
}

// sleepAndCollect sleeps, wakes every d to collect buffered messages, and
// sleeps again, until ctx ends or enough messages arrived (then it
// disconnects).
func sleepAndCollect(ctx context.Context, c *snclient.Client, f *snFlags, d time.Duration, got <-chan struct{}) error {
	rctx, cancel := f.request(ctx)
	err := c.Sleep(rctx, d)
	cancel()
	if err != nil {
		return err
	}
	t := time.NewTimer(d / 2) // wake well within the sleep duration
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-got:
			rctx, cancel := f.request(context.WithoutCancel(ctx))
			defer cancel()
			return c.Disconnect(rctx)
		case <-t.C:
		}
		rctx, cancel := f.request(ctx)
		err := c.CheckMessages(rctx)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		t.Reset(d / 2)
	}
}
