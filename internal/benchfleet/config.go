package benchfleet

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// Scenario names.
const (
	ScenarioPublish      = "publish"
	ScenarioFanout       = "fanout"
	ScenarioConnectStorm = "connect-storm"
	ScenarioSleepers     = "sleepers"
	ScenarioIdle         = "idle"
	ScenarioEcho         = "echo"
	// ScenarioMQTTPublish is publish without a gateway: MQTT clients
	// publish straight to the broker (the ceiling of publish).
	ScenarioMQTTPublish = "mqtt-publish"
)

// Topic id modes: how sensors name the topic they publish to or subscribe
// to.
const (
	TopicRegister   = "register"   // a normal topic name, REGISTERed (or SUBSCRIBEd) by name
	TopicPredefined = "predefined" // a predefined topic id the gateway maps
	TopicShort      = "short"      // a two-character short topic name
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid bench config")

// Config is one benchmark run. Validate rejects bad values; nothing is
// adjusted.
type Config struct {
	// Scenario is publish, fanout, connect-storm, sleepers, idle, echo or
	// mqtt-publish.
	Scenario string
	// Gateway is the MQTT-SN gateway's UDP host:port (the echo server's in
	// echo mode).
	Gateway string
	// Broker is the MQTT broker's TCP host:port the benchmark's own MQTT
	// client uses (publish, fanout; sleepers when set, otherwise their
	// publisher is one more MQTT-SN sensor).
	Broker string
	// Sensors is the number of simulated sensors (UDP sockets).
	Sensors int
	// Version is the sensors' MQTT-SN version: snclient.Version12 (the
	// zero value means it too) or snclient.Version20.
	Version snclient.Version
	// Rate is messages per second: per sensor in publish and echo, of the
	// MQTT publisher in fanout. 0 means flat out.
	Rate float64
	// QoS is -1, 0, 1 or 2 (-1: publish only, without connecting).
	QoS int
	// SubQoS0 makes the publish scenario's MQTT subscriber subscribe at
	// QoS 0 whatever QoS the sensors publish at (by default it subscribes
	// at their QoS), to compare end-to-end QoS 1 with QoS 1 in, QoS 0 out.
	SubQoS0 bool
	// Duration bounds the sending phase; Count, when positive, ends it
	// after that many messages per sensor (publish, echo) or in total
	// (fanout), whichever comes first.
	Duration time.Duration
	Count    int
	// PayloadSize is the payload size in octets, at least HeaderLen.
	PayloadSize int
	// TopicMode is register, predefined or short.
	TopicMode string
	// TopicID is the predefined topic id (TopicMode predefined).
	TopicID uint16
	// ShortTopic is the two-character short topic name (TopicMode short).
	ShortTopic string
	// Prefix is the topic prefix: sensors publish to Prefix/CLIENT_ID in
	// register mode; fanout and sleepers use Prefix/all.
	Prefix string
	// SubFilter is what the MQTT subscriber subscribes to; empty means
	// Prefix/# (register, predefined) or ShortTopic (short).
	SubFilter string
	// ClientPrefix starts every sensor's client id; the sensor's index
	// follows. At most 16 characters.
	ClientPrefix string
	// Bind lists local addresses the sensors' sockets are spread over (round
	// robin); empty lets the kernel choose. Each address has about 28,000
	// ephemeral ports, so 100,000 sensors need four.
	Bind []netip.Addr
	// Concurrency bounds how many sensors connect (or wake) at once; 0
	// means all at once.
	Concurrency int
	// KeepAlive is the sensors' keep-alive period.
	KeepAlive time.Duration
	// RetryInterval and MaxRetries are the sensors' T_retry and N_retry.
	RetryInterval time.Duration
	MaxRetries    int
	// Drain is how long to wait for outstanding deliveries after sending
	// stops.
	Drain time.Duration
	// Queued is the number of messages each sleeping sensor gets queued
	// (sleepers).
	Queued int
	// SleepFor is how long sleepers ask the gateway to keep them asleep.
	SleepFor time.Duration
	// Hold is how long idle keeps its sensors connected after measuring.
	Hold time.Duration
	// GatewayPID, when positive, is the gateway process whose RSS and CPU
	// time are read from /proc.
	GatewayPID int
	// Settle is how long to wait before reading the gateway's RSS after
	// sessions are established, so its garbage collector catches up.
	Settle time.Duration
	// Window, in echo and publish, is how many messages each sensor keeps
	// in flight end to end (closed loop: the next goes when one arrives, or
	// after a second without an arrival); 0 sends open loop, flat out or at
	// Rate.
	Window int
	// Barrier, when set, is called at the run's synchronisation points
	// ("start" before the first CONNECT; "connected" once the fleet is
	// connected (publish, fanout, connect-storm, idle); "asleep" and
	// "queued" in sleepers) and blocks until the run may go on. A parent
	// process driving several bench processes (gannet bench -procs) uses it
	// to start them together and to read the gateway's memory while every
	// process holds its sessions. An error ends the run.
	Barrier func(name string) error
	// Disconnect, when true, ends every connected sensor with DISCONNECT
	// (otherwise sockets are just closed and the gateway loses them later).
	Disconnect bool
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("bench: %s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
	}
	switch c.Scenario {
	case ScenarioPublish, ScenarioFanout, ScenarioConnectStorm, ScenarioSleepers, ScenarioIdle, ScenarioEcho, ScenarioMQTTPublish:
	default:
		return bad("scenario %q: want publish, fanout, connect-storm, sleepers, idle, echo or mqtt-publish", c.Scenario)
	}
	if _, err := netip.ParseAddrPort(c.Gateway); err != nil {
		return bad("gateway address %q: want ip:port: %v", c.Gateway, err)
	}
	needsBroker := c.Scenario == ScenarioPublish || c.Scenario == ScenarioFanout || c.Scenario == ScenarioMQTTPublish
	if needsBroker && c.Broker == "" {
		return bad("scenario %s needs a broker address", c.Scenario)
	}
	switch {
	case c.Sensors < 1:
		return bad("sensors = %d: want at least 1", c.Sensors)
	case c.Rate < 0:
		return bad("rate = %v: want 0 (flat out) or more", c.Rate)
	case c.QoS < -1 || c.QoS > 2:
		return bad("qos = %d: want -1, 0, 1 or 2", c.QoS)
	case c.Duration < 0:
		return bad("duration = %v: must not be negative", c.Duration)
	case c.Count < 0:
		return bad("count = %d: must not be negative", c.Count)
	case c.PayloadSize < HeaderLen || c.PayloadSize > 60000:
		return bad("payload = %d: want %d to 60000 octets (the stamp needs %d)", c.PayloadSize, HeaderLen, HeaderLen)
	case c.Concurrency < 0:
		return bad("concurrency = %d: must not be negative", c.Concurrency)
	case c.Window < 0:
		return bad("window = %d: must not be negative", c.Window)
	case c.Drain < 0:
		return bad("drain = %v: must not be negative", c.Drain)
	case c.Settle < 0:
		return bad("settle = %v: must not be negative", c.Settle)
	case c.Hold < 0:
		return bad("hold = %v: must not be negative", c.Hold)
	case c.RetryInterval < 0:
		return bad("retry = %v: must not be negative", c.RetryInterval)
	case c.MaxRetries < 0:
		return bad("retries = %d: must not be negative", c.MaxRetries)
	case c.KeepAlive < 0 || c.KeepAlive > 65535*time.Second || c.KeepAlive%time.Second != 0:
		return bad("keepalive = %v: want whole seconds up to 65535s", c.KeepAlive)
	case len(c.ClientPrefix) > 16:
		return bad("client prefix %q: at most 16 characters, so ids stay within %d", c.ClientPrefix, snclient.MaxClientIDLen)
	}
	sending := c.Scenario == ScenarioPublish || c.Scenario == ScenarioFanout || c.Scenario == ScenarioEcho || c.Scenario == ScenarioMQTTPublish
	if sending && c.Duration == 0 && c.Count == 0 {
		return bad("scenario %s needs a duration or a count", c.Scenario)
	}
	switch c.TopicMode {
	case TopicRegister:
	case TopicPredefined:
		if c.TopicID == 0 || c.TopicID == 0xFFFF {
			return bad("topic id %d: a predefined id must be 1 to 65534", c.TopicID)
		}
	case TopicShort:
		if _, ok := snpacket.ShortTopicID(c.ShortTopic); !ok || len(c.ShortTopic) != 2 {
			return bad("short topic %q: want exactly two characters", c.ShortTopic)
		}
		if c.Version == snclient.Version20 {
			return bad("topic mode short: MQTT-SN 2.0 has no short topic names")
		}
	default:
		return bad("topic mode %q: want register, predefined or short", c.TopicMode)
	}
	if c.QoS == -1 {
		if c.Scenario != ScenarioPublish {
			return bad("qos -1 is only for the publish scenario")
		}
		if c.TopicMode == TopicRegister {
			return bad("qos -1 needs topic mode predefined or short (there is no connection to register on)")
		}
	}
	if c.Scenario == ScenarioSleepers {
		if c.Queued < 1 {
			return bad("queued = %d: sleepers need at least 1 queued message each", c.Queued)
		}
		if c.SleepFor < time.Second || c.SleepFor%time.Second != 0 || c.SleepFor > 65535*time.Second {
			return bad("sleep = %v: want whole seconds, 1s to 65535s", c.SleepFor)
		}
		if c.QoS < 1 {
			return bad("qos = %d: sleepers need QoS 1 or 2, or the core does not queue for them", c.QoS)
		}
	}
	if c.Scenario == ScenarioMQTTPublish && (c.QoS < 0 || c.TopicMode != TopicRegister) {
		return bad("mqtt-publish publishes over MQTT: qos must be 0, 1 or 2 and topic mode register")
	}
	if (c.Scenario == ScenarioFanout) && c.QoS < 0 {
		return bad("fanout publishes over MQTT: qos must be 0, 1 or 2")
	}
	return nil
}

// subFilter returns the MQTT subscriber's filter.
func (c *Config) subFilter() string {
	if c.SubFilter != "" {
		return c.SubFilter
	}
	if c.TopicMode == TopicShort {
		return c.ShortTopic
	}
	return c.Prefix + "/#"
}

// clientID returns sensor i's client id.
func (c *Config) clientID(i int) string { return fmt.Sprintf("%s%d", c.ClientPrefix, i) }

// sensorTopic returns the topic sensor i publishes to.
func (c *Config) sensorTopic(i int) snclient.Topic {
	switch c.TopicMode {
	case TopicPredefined:
		return snclient.Predefined(c.TopicID)
	case TopicShort:
		return snclient.Short(c.ShortTopic)
	}
	return snclient.Named(c.Prefix + "/" + c.clientID(i))
}

// groupTopic returns the topic every sensor subscribes to (fanout, sleepers)
// and its MQTT name, as the MQTT publisher uses it.
func (c *Config) groupTopic() (snclient.Topic, string) {
	switch c.TopicMode {
	case TopicPredefined:
		name := c.SubFilter
		if name == "" {
			name = c.Prefix + "/all"
		}
		return snclient.Predefined(c.TopicID), name
	case TopicShort:
		return snclient.Short(c.ShortTopic), c.ShortTopic
	}
	return snclient.Named(c.Prefix + "/all"), c.Prefix + "/all"
}
