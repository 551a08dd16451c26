package bridge

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// Changing a running bridge (a configuration reload).
//
// Reconfigure changes a bridge's rules and connection settings in place:
// its queue (file or bucket, and everything in it), its sender and its
// session state stay. Out rules are subscriptions in the core: a rule whose
// local filter and QoS are unchanged keeps its subscription (its prefixes
// are swapped under it, so nothing published meanwhile is missed); a new
// filter is subscribed before a removed one is unsubscribed, so a message
// matching both in that instant may be queued twice (at least once, as
// overlapping rules always are). Messages already queued are sent as they
// were queued (with the remote topic of the rule that queued them).
//
// A change to the servers, TLS, credentials, client id, keep-alive, clean
// start, session expiry, connect timeout, backoff or the in rules replaces
// the connection: the current one is closed cleanly (DISCONNECT) and a new
// one made with the new settings; unacknowledged messages are sent again
// on it, as after any reconnect. Should the new one fail to start, the new
// settings stay in force and the bridge retries with backoff
// (ErrConnectRetrying): the caller records cfg, not the old config. In
// rules are subscribed on the new connection; the filters of removed in rules are unsubscribed there, and
// again on each later connection until the remote's UNSUBACK (dropIn).
// Messages that still arrive for a removed in rule match no rule in
// force: they are acknowledged and not published into the core.
//
// The queue's settings (queue.*), max_inflight, sys_interval and
// sys_disabled size or start what New built: Reconfigure refuses a change
// to them with ErrRestartNeeded, and the caller closes the bridge and
// makes it anew (New reopens the same queue).

// ErrRestartNeeded is returned by Reconfigure for a change it cannot make
// in place: the bridge must be closed and made anew with New.
var ErrRestartNeeded = errors.New("bridge: change needs the bridge closed and made anew")

// ErrConnectRetrying is returned, wrapped, by Reconfigure when the new
// configuration is in force but the connection with it could not be
// started: the bridge retries, with backoff, until it starts (as after any
// outage), and queues meanwhile. The changes returned with it were made.
var ErrConnectRetrying = errors.New("bridge: new configuration in force, but its connection did not start; retrying with backoff")

// outSub is one out rule's subscription in the core. Its rule may be
// replaced (same local filter and QoS) without resubscribing.
type outSub struct {
	rule atomic.Pointer[Rule]
	sub  *mqttcore.InlineSub
}

// key identifies the subscription an out rule needs.
func (r *Rule) key() string { return fmt.Sprintf("%d %s", r.QoS, r.LocalPrefix+r.Pattern) }

// subscribeOut subscribes out rule r in the core.
func (b *Bridge) subscribeOut(r Rule) (*outSub, error) {
	os := &outSub{}
	os.rule.Store(&r)
	sub, err := b.inline.SubscribeHeld(r.LocalPrefix+r.Pattern, mqttcore.SubOptions{QoS: r.QoS, RetainHandling: mqttcore.NoRetained}, b.outbound(os))
	if err != nil {
		return nil, fmt.Errorf("bridge %q: subscribe %q: %w", b.Name(), r.LocalPrefix+r.Pattern, err)
	}
	os.sub = sub
	return os, nil
}

// inRules returns the in (and both) rules of rules.
func inRules(rules []Rule) []Rule {
	in := []Rule{}
	for _, r := range rules {
		if r.Direction.in() {
			in = append(in, r)
		}
	}
	return in
}

// outRules returns the out (and both) rules of rules.
func outRules(rules []Rule) []Rule {
	var out []Rule
	for _, r := range rules {
		if r.Direction.out() {
			out = append(out, r)
		}
	}
	return out
}

// Reconfigure applies cfg to the running bridge (see the comment above)
// and returns what changed, in words for an operator. An invalid cfg, or
// TLS files that do not load, change nothing. A change to the name, the
// queue settings, max_inflight or the $SYS settings returns
// ErrRestartNeeded and changes nothing. An error wrapping
// ErrConnectRetrying means cfg is in force (Config returns it) and the
// bridge keeps trying to start its connection. Not safe for concurrent
// use with itself or Close.
func (b *Bridge) Reconfigure(cfg Config) (changes []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	old := b.conf()
	var fixed []string
	for _, f := range []struct {
		name   string
		differ bool
	}{
		{"name", cfg.Name != old.Name},
		{"queue", cfg.Queue != old.Queue},
		{"max_inflight", cfg.maxInflight() != old.maxInflight()},
		{"sys_interval", cfg.sysInterval() != old.sysInterval()},
		{"sys_disabled", cfg.SysDisabled != old.SysDisabled},
	} {
		if f.differ {
			fixed = append(fixed, f.name)
		}
	}
	if len(fixed) > 0 {
		return nil, fmt.Errorf("bridge %q: %v changed: %w", old.Name, fixed, ErrRestartNeeded)
	}
	tlsCfg, urls, err := cfg.dialSettings()
	if err != nil {
		return nil, err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	// Out rules: keep, add, then remove.
	oldOut, newOut := outRules(old.Rules), outRules(cfg.Rules)
	if !slices.Equal(oldOut, newOut) {
		unused := slices.Clone(b.subs)
		var subs []*outSub
		var added []*outSub
		type swap struct {
			os *outSub
			r  *Rule
		}
		var swaps []swap // kept subscriptions' new rules, stored once every new one is subscribed
		for _, r := range newOut {
			i := slices.IndexFunc(unused, func(os *outSub) bool { return os.rule.Load().key() == r.key() })
			if i >= 0 {
				os := unused[i]
				unused = slices.Delete(unused, i, i+1)
				swaps = append(swaps, swap{os, &r})
				subs = append(subs, os)
				continue
			}
			os, err := b.subscribeOut(r)
			if err != nil {
				for _, a := range added {
					a.sub.Unsubscribe()
				}
				return nil, err // the old subscriptions stand with their old rules
			}
			added = append(added, os)
			subs = append(subs, os)
		}
		for _, sw := range swaps {
			sw.os.rule.Store(sw.r)
		}
		for _, os := range unused {
			os.sub.Unsubscribe()
		}
		b.subs = subs
		changes = append(changes, fmt.Sprintf("out rules: %d (%d subscribed, %d unsubscribed)", len(newOut), len(added), len(unused)))
	}
	// The connection, and with it the in rules.
	oldIn, newIn := inRules(old.Rules), inRules(cfg.Rules)
	conn := func(c Config) Config {
		c.Rules, c.Queue = nil, QueueConfig{}
		return c
	}
	inChanged := !slices.Equal(oldIn, newIn)
	if inChanged || !reflect.DeepEqual(conn(*old), conn(cfg)) {
		b.disconnect()
		var gone []string
		for _, r := range oldIn {
			gone = append(gone, r.RemotePrefix+r.Pattern)
		}
		if prev := b.dropIn.Load(); prev != nil { // not yet sent: still to do
			gone = append(gone, *prev...)
		}
		// A filter a new in rule needs is not dropped, also when an
		// earlier Reconfigure removed it: its UNSUBSCRIBE would race the
		// SUBSCRIBE made on connection.
		var drop []string
		for _, f := range gone {
			if !slices.Contains(drop, f) && !slices.ContainsFunc(newIn, func(n Rule) bool { return n.RemotePrefix+n.Pattern == f }) {
				drop = append(drop, f)
			}
		}
		b.dropIn.Store(&drop)
		b.in.Store(&newIn)
		b.cfg.Store(&cfg)
		b.gen++
		if inChanged {
			changes = append(changes, fmt.Sprintf("in rules: %d", len(newIn)))
		}
		keys := changedKeys(conn(*old), conn(cfg))
		if err := b.connect(&cfg, tlsCfg, urls); err != nil {
			// The new settings are in force (the out rules already
			// are): the bridge goes on trying to connect with them,
			// with backoff, queueing meanwhile, as after any outage.
			b.retryConnect(&cfg, tlsCfg, urls)
			return changes, fmt.Errorf("%w: %w", ErrConnectRetrying, err)
		}
		if len(keys) > 0 {
			changes = append(changes, "reconnected with the new "+strings.Join(keys, ", "))
		} else {
			changes = append(changes, "reconnected to subscribe the new in rules")
		}
		return changes, nil
	}
	b.cfg.Store(&cfg)
	return changes, nil
}

// changedKeys names the config.toml keys whose values differ between a and
// b ("servers", "tls.ca_file"), one level of tables deep.
func changedKeys(a, b Config) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("toml")
		fa, fb := va.Field(i), vb.Field(i)
		if reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			continue
		}
		if fa.Kind() == reflect.Struct && fa.Type() != reflect.TypeOf(time.Duration(0)) {
			for j := range fa.NumField() {
				if !reflect.DeepEqual(fa.Field(j).Interface(), fb.Field(j).Interface()) {
					out = append(out, name+"."+fa.Type().Field(j).Tag.Get("toml"))
				}
			}
			continue
		}
		out = append(out, name)
	}
	return out
}
