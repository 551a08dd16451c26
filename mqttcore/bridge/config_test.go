package bridge

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		Name:    "central",
		Servers: []string{"mqtt://127.0.0.1:1883", "mqtts://backup.example.com:8883", "ws://h:80/mqtt"},
		Rules:   []Rule{{Pattern: "sensors/#", Direction: Out, QoS: 1, RemotePrefix: "site-7/"}},
		Queue:   QueueConfig{Path: "/var/lib/gannet/central.db"},
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no name", func(c *Config) { c.Name = "" }, "name is required"},
		{"slash in name", func(c *Config) { c.Name = "a/b" }, "must not contain"},
		{"no servers", func(c *Config) { c.Servers = nil }, "at least one URL"},
		{"bad scheme", func(c *Config) { c.Servers = []string{"http://h:80"} }, "scheme"},
		{"no port", func(c *Config) { c.Servers = []string{"mqtt://h"} }, "no port"},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c.pem" }, "go together"},
		{"negative keep_alive", func(c *Config) { c.KeepAlive = -time.Second }, "keep_alive"},
		{"fractional keep_alive", func(c *Config) { c.KeepAlive = 1500 * time.Millisecond }, "whole seconds"},
		{"huge keep_alive", func(c *Config) { c.KeepAlive = 70000 * time.Second }, "65535"},
		{"fractional session_expiry", func(c *Config) { c.SessionExpiry = time.Millisecond }, "session_expiry"},
		{"backoff min above max", func(c *Config) { c.BackoffMin, c.BackoffMax = time.Minute, time.Second }, "above backoff_max"},
		{"short sys_interval", func(c *Config) { c.SysInterval = time.Millisecond }, "sys_interval"},
		{"negative max_inflight", func(c *Config) { c.MaxInflight = -1 }, "max_inflight"},
		{"huge max_inflight", func(c *Config) { c.MaxInflight = 65001 }, "max_inflight"},
		{"largest max_inflight", func(c *Config) { c.MaxInflight = MaxMaxInflight }, ""},
		{"no rules", func(c *Config) { c.Rules = nil }, "rule"},
		{"bad direction", func(c *Config) { c.Rules[0].Direction = "up" }, "direction"},
		{"no direction", func(c *Config) { c.Rules[0].Direction = "" }, "direction"},
		{"bad qos", func(c *Config) { c.Rules[0].QoS = 3 }, "qos"},
		{"no pattern", func(c *Config) { c.Rules[0] = Rule{Direction: In} }, "pattern is required"},
		{"prefixes only", func(c *Config) { c.Rules[0] = Rule{Direction: In, LocalPrefix: "a/b", RemotePrefix: "x/a/b"} }, ""},
		{"one prefix only", func(c *Config) { c.Rules[0] = Rule{Direction: In, LocalPrefix: "a/b"} }, "empty filter"},
		{"shared", func(c *Config) { c.Rules[0].Pattern = "$share/g/x" }, "shared"},
		{"wildcard prefix", func(c *Config) { c.Rules[0].LocalPrefix = "+/" }, "wildcards"},
		{"bad filter", func(c *Config) { c.Rules[0].Pattern = "a/#/b" }, "#"},
		{"partial plus", func(c *Config) { c.Rules[0].Pattern = "a+/b" }, "+"},
		{"negative max_bytes", func(c *Config) { c.Queue.MaxBytes = -1 }, "max_bytes"},
		{"negative max_age", func(c *Config) { c.Queue.MaxAge = -time.Second }, "max_age"},
		{"negative max_batch", func(c *Config) { c.Queue.MaxBatch = -1 }, "max_batch"},
		{"negative max_pending", func(c *Config) { c.Queue.MaxPending = -1 }, "max_pending"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.modify(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errConfig) {
				t.Fatalf("Validate() = %v; want an error about %q wrapping errConfig", err, tc.want)
			}
		})
	}
}

func TestTopicMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/b", "$SYS/b", false},
		{"$SYS/#", "$SYS/x", true},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/d", false},
		{"a/b/c", "a/b", false},
		{"a", "a/b", false},
		{"+", "", true},
		{"a//b", "a//b", true},
	}
	for _, tc := range tests {
		if got := topicMatch(tc.filter, tc.topic); got != tc.want {
			t.Errorf("topicMatch(%q, %q) = %v; want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := Config{BackoffMin: time.Second, BackoffMax: 8 * time.Second}
	if d := c.backoff(0); d != 0 {
		t.Fatalf("backoff(0) = %v; want 0 (first attempt at once)", d)
	}
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 10: 8 * time.Second} {
		for range 100 {
			d := c.backoff(attempt)
			if d < base-base/4 || d > base+base/4 {
				t.Fatalf("backoff(%d) = %v; want %v +-25%%", attempt, d, base)
			}
		}
	}
}
