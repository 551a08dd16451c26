package benchfleet

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validConfig returns a valid publish configuration.
func validConfig() Config {
	return Config{
		Scenario: ScenarioPublish, Gateway: "127.0.0.1:1884", Broker: "127.0.0.1:1883",
		Sensors: 1, QoS: 0, Duration: time.Second, PayloadSize: 64, TopicMode: TopicRegister,
		TopicID: 1, ShortTopic: "bn", Prefix: "bench", ClientPrefix: "gb-", KeepAlive: time.Minute,
		Queued: 10, SleepFor: time.Minute, Drain: time.Second,
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(c *Config)
		want   string // substring of the error; "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"qos -1 short", func(c *Config) { c.QoS, c.TopicMode = -1, TopicShort }, ""},
		{"sleepers", func(c *Config) { c.Scenario, c.QoS = ScenarioSleepers, 1 }, ""},
		{"echo windowed", func(c *Config) { c.Scenario, c.Broker, c.Window = ScenarioEcho, "", 8 }, ""},
		{"storm without broker", func(c *Config) { c.Scenario, c.Broker, c.Duration = ScenarioConnectStorm, "", 0 }, ""},
		{"unknown scenario", func(c *Config) { c.Scenario = "flood" }, "scenario"},
		{"gateway not ip:port", func(c *Config) { c.Gateway = "localhost" }, "gateway address"},
		{"publish without broker", func(c *Config) { c.Broker = "" }, "needs a broker"},
		{"no sensors", func(c *Config) { c.Sensors = 0 }, "sensors"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "rate"},
		{"qos 3", func(c *Config) { c.QoS = 3 }, "qos"},
		{"qos -2", func(c *Config) { c.QoS = -2 }, "qos"},
		{"no duration nor count", func(c *Config) { c.Duration, c.Count = 0, 0 }, "duration or a count"},
		{"payload below stamp", func(c *Config) { c.PayloadSize = HeaderLen - 1 }, "payload"},
		{"payload too big", func(c *Config) { c.PayloadSize = 70000 }, "payload"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "concurrency"},
		{"negative window", func(c *Config) { c.Window = -1 }, "window"},
		{"keepalive fraction", func(c *Config) { c.KeepAlive = 1500 * time.Millisecond }, "keepalive"},
		{"long client prefix", func(c *Config) { c.ClientPrefix = strings.Repeat("x", 17) }, "client prefix"},
		{"bad topic mode", func(c *Config) { c.TopicMode = "long" }, "topic mode"},
		{"predefined id 0", func(c *Config) { c.TopicMode, c.TopicID = TopicPredefined, 0 }, "topic id"},
		{"short topic of 3", func(c *Config) { c.TopicMode, c.ShortTopic = TopicShort, "abc" }, "short topic"},
		{"qos -1 register", func(c *Config) { c.QoS = -1 }, "qos -1 needs"},
		{"qos -1 fanout", func(c *Config) { c.Scenario, c.QoS, c.TopicMode = ScenarioFanout, -1, TopicShort }, "only for the publish"},
		{"sleepers qos 0", func(c *Config) { c.Scenario = ScenarioSleepers }, "QoS 1 or 2"},
		{"mqtt-publish short topic", func(c *Config) { c.Scenario, c.TopicMode = ScenarioMQTTPublish, TopicShort }, "mqtt-publish publishes over MQTT"},
		{"mqtt-publish ok", func(c *Config) { c.Scenario = ScenarioMQTTPublish }, ""},
		{"sleepers no queue", func(c *Config) { c.Scenario, c.QoS, c.Queued = ScenarioSleepers, 1, 0 }, "queued"},
		{"sleepers bad sleep", func(c *Config) { c.Scenario, c.QoS, c.SleepFor = ScenarioSleepers, 1, 0 }, "sleep"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidConfig)):
				t.Errorf("Validate() = %v; want an ErrInvalidConfig naming %q", err, tc.want)
			}
		})
	}
}

func TestTopicsPerMode(t *testing.T) {
	c := validConfig()
	if got := c.sensorTopic(7).String(); !strings.Contains(got, "bench/gb-7") {
		t.Errorf("register: sensorTopic(7) = %s; want bench/gb-7", got)
	}
	if got := c.subFilter(); got != "bench/#" {
		t.Errorf("register: subFilter() = %q; want bench/#", got)
	}
	c.TopicMode = TopicShort
	if got := c.subFilter(); got != "bn" {
		t.Errorf("short: subFilter() = %q; want bn", got)
	}
	if _, name := c.groupTopic(); name != "bn" {
		t.Errorf("short: groupTopic() name = %q; want bn", name)
	}
	c.TopicMode, c.SubFilter = TopicPredefined, "site/all"
	if _, name := c.groupTopic(); name != "site/all" {
		t.Errorf("predefined: groupTopic() name = %q; want site/all", name)
	}
}
