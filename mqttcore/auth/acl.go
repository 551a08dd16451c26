package auth

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Access is what a rule grants: receiving messages (subscribe) and/or
// sending them (publish).
type Access uint8

// Access values.
const (
	// Read allows subscribing to topics the rule covers.
	Read Access = 1 << iota
	// Write allows publishing to topics the rule matches.
	Write
	// ReadWrite allows both.
	ReadWrite = Read | Write
)

// String returns the ACL file keyword for a.
func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case ReadWrite:
		return "readwrite"
	default:
		return fmt.Sprintf("access(%d)", uint8(a))
	}
}

// rule is one ACL line: an access and a topic filter, which for a pattern
// may have %u and %c levels.
type rule struct {
	access  Access
	filter  string
	pattern bool // has a %u or %c level
}

// ACL is a loaded topic access list. Whatever no rule allows is denied. It
// is immutable and safe for concurrent use.
type ACL struct {
	anonymous []rule            // topic lines before the first user or client line
	users     map[string][]rule // topic lines under "user <name>"
	clients   map[string][]rule // topic lines under "client <id>"
	patterns  []rule            // pattern lines, for every client
}

// LoadACL reads and parses the ACL file at path.
func LoadACL(path string) (*ACL, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load acl file: %w", err)
	}
	defer f.Close()
	return ParseACL(f, path)
}

// ParseACL parses an ACL file; name is used in error messages.
//
// The format follows Mosquitto's acl_file. One directive per line; blank
// lines and lines whose first non-blank character is '#' are ignored:
//
//	user <username>                       rules below apply to this username
//	client <client id>                    rules below apply to this client id
//	topic [read|write|readwrite] <filter> a rule for the current section
//	pattern [read|write|readwrite] <filter>  a rule for every client
//
// The access defaults to readwrite. The filter is the rest of the line (it
// may contain spaces) and uses MQTT topic filter syntax: '+' matches one
// level, '#' (last level only) matches any number of levels including none.
// Topic lines before the first user or client line apply to anonymous
// clients (those without a username). In a pattern, a level that is exactly
// "%u" matches the client's username and "%c" its client id; %u and %c
// elsewhere in a level are refused. A pattern with %u never matches an
// anonymous client, and a pattern level never matches a username or client
// id containing '/', '+' or '#'. There are no deny rules: a client may do
// what at least one of its rules allows and nothing else.
//
// A client's rules are: its user section (if it has a username), its
// client section (if one names its client id), the anonymous section (if
// it has no username), and all patterns. See CanPublish and CanSubscribe.
func ParseACL(r io.Reader, name string) (*ACL, error) {
	a := &ACL{users: make(map[string][]rule), clients: make(map[string][]rule)}
	var section map[string][]rule // nil: the anonymous section
	var key string
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		keyword, rest, _ := strings.Cut(text, " ")
		rest = strings.TrimSpace(rest)
		switch keyword {
		case "user", "client":
			if rest == "" {
				return nil, fmt.Errorf("acl file %s line %d: %s without a name", name, line, keyword)
			}
			section, key = a.users, rest
			if keyword == "client" {
				section = a.clients
			}
			if _, ok := section[key]; !ok {
				section[key] = nil
			}
		case "topic", "pattern":
			r, err := parseRule(rest, keyword == "pattern")
			if err != nil {
				return nil, fmt.Errorf("acl file %s line %d: %w", name, line, err)
			}
			switch {
			case keyword == "pattern":
				a.patterns = append(a.patterns, r)
			case section == nil:
				a.anonymous = append(a.anonymous, r)
			default:
				section[key] = append(section[key], r)
			}
		default:
			return nil, fmt.Errorf("acl file %s line %d: unknown directive %q (want user, client, topic or pattern)", name, line, keyword)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("acl file %s: %w", name, err)
	}
	return a, nil
}

// parseRule parses "[read|write|readwrite] <filter>".
func parseRule(s string, pattern bool) (rule, error) {
	r := rule{access: ReadWrite, filter: s, pattern: pattern}
	if word, rest, ok := strings.Cut(s, " "); ok {
		switch word {
		case "read":
			r.access, r.filter = Read, strings.TrimSpace(rest)
		case "write":
			r.access, r.filter = Write, strings.TrimSpace(rest)
		case "readwrite":
			r.access, r.filter = ReadWrite, strings.TrimSpace(rest)
		case "deny":
			return rule{}, fmt.Errorf("deny rules are not supported: whatever no rule allows is denied")
		}
	}
	if err := checkRuleFilter(r.filter, pattern); err != nil {
		return rule{}, err
	}
	return r, nil
}

// checkRuleFilter refuses a filter that is not a valid MQTT topic filter,
// or that uses %u or %c other than as a whole level of a pattern.
func checkRuleFilter(f string, pattern bool) error {
	switch {
	case f == "":
		return fmt.Errorf("missing topic filter")
	case len(f) > 65535:
		return fmt.Errorf("topic filter longer than 65535 bytes")
	case !utf8.ValidString(f) || strings.IndexByte(f, 0) >= 0:
		return fmt.Errorf("topic filter %q is not valid UTF-8 without NUL", f)
	}
	for rest, more := f, true; more; {
		var level string
		level, rest, more = strings.Cut(rest, "/")
		switch {
		case level == "#" && more:
			return fmt.Errorf("topic filter %q: '#' must be the last level", f)
		case level != "#" && level != "+" && strings.ContainsAny(level, "+#"):
			return fmt.Errorf("topic filter %q: '+' and '#' must fill a whole level", f)
		case level == "%u" || level == "%c":
			if !pattern {
				return fmt.Errorf("topic filter %q: %%u and %%c are substituted only in pattern lines", f)
			}
		case strings.Contains(level, "%u") || strings.Contains(level, "%c"):
			return fmt.Errorf("topic filter %q: %%u and %%c must fill a whole level", f)
		}
	}
	return nil
}

// CanPublish reports whether the client may publish to topic: whether one
// of its rules with write access matches topic by MQTT's matching rules,
// including that a filter starting with a wildcard does not match a topic
// starting with '$' [MQTT-4.7.2-1]. username "" means an anonymous client.
// It does not allocate.
func (a *ACL) CanPublish(username, clientID, topic string) bool {
	return a.allowed(Write, username, clientID, topic)
}

// CanSubscribe reports whether the client may subscribe to filter.
//
// The rule: a filter is allowed only if a single rule with read access
// covers it, meaning every topic the filter can match is matched by that
// rule. Level by level, a rule level '#' covers the rest of the filter; a
// rule level '+' covers one filter level that is a name or '+', never '#';
// a name (or a substituted %u or %c) covers only the same name; a filter
// that ends where the rule continues with a final '#' is covered (the '#'
// matches the parent level too). A rule starting with a wildcard never
// covers a filter starting with '$'. So with the rule "sensors/+/temp",
// "sensors/+/temp" and "sensors/kitchen/temp" are allowed but
// "sensors/#" and "#" are not, even though they would deliver some
// allowed messages. For a shared subscription "$share/<group>/<filter>"
// the check applies to <filter>. username "" means an anonymous client.
// It does not allocate.
func (a *ACL) CanSubscribe(username, clientID, filter string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		group, f, found := strings.Cut(rest, "/")
		if !found || group == "" || f == "" {
			return false
		}
		filter = f
	}
	return a.allowed(Read, username, clientID, filter)
}

// allowed checks the client's rules in turn.
func (a *ACL) allowed(access Access, username, clientID, s string) bool {
	if username != "" {
		if anyRule(a.users[username], access, username, clientID, s) {
			return true
		}
	} else if anyRule(a.anonymous, access, username, clientID, s) {
		return true
	}
	if rules, ok := a.clients[clientID]; ok && anyRule(rules, access, username, clientID, s) {
		return true
	}
	return anyRule(a.patterns, access, username, clientID, s)
}

// anyRule reports whether one of rules grants access to s: a topic name for
// Write, a topic filter for Read.
func anyRule(rules []rule, access Access, username, clientID, s string) bool {
	for i := range rules {
		r := &rules[i]
		if r.access&access == 0 {
			continue
		}
		if access == Write && r.matches(username, clientID, s) {
			return true
		}
		if access == Read && r.covers(username, clientID, s) {
			return true
		}
	}
	return false
}

// level returns the substituted value of a pattern level, the level itself
// otherwise, and false if the substitution cannot match anything.
func (r *rule) level(l, username, clientID string) (string, bool) {
	if !r.pattern {
		return l, true
	}
	switch l {
	case "%u":
		return username, substitutable(username)
	case "%c":
		return clientID, substitutable(clientID)
	}
	return l, true
}

// substitutable reports whether s can stand for a whole topic level.
func substitutable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c == '+' || c == '#' {
			return false
		}
	}
	return true
}

// startsWithWildcard reports whether f's first level is '+' or '#'.
func startsWithWildcard(f string) bool {
	return len(f) > 0 && (f[0] == '+' || f[0] == '#')
}

// matches reports whether the rule matches topic name t.
func (r *rule) matches(username, clientID, t string) bool {
	f := r.filter
	if len(t) > 0 && t[0] == '$' && startsWithWildcard(f) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(f, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(t, "/")
		if fl != "+" {
			want, ok := r.level(fl, username, clientID)
			if !ok || want != tl {
				return false
			}
		}
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			return frest == "#"
		case !fmore:
			return false
		}
		f, t = frest, trest
	}
}

// covers reports whether every topic filter f can match is matched by the
// rule (see CanSubscribe).
func (r *rule) covers(username, clientID, f string) bool {
	rf := r.filter
	if len(f) > 0 && f[0] == '$' && startsWithWildcard(rf) {
		return false
	}
	for {
		rl, rrest, rmore := strings.Cut(rf, "/")
		if rl == "#" {
			return true
		}
		fl, frest, fmore := strings.Cut(f, "/")
		if rl == "+" {
			if fl == "#" {
				return false
			}
		} else {
			want, ok := r.level(rl, username, clientID)
			if !ok || want != fl {
				return false
			}
		}
		switch {
		case !rmore && !fmore:
			return true
		case !fmore:
			return rrest == "#"
		case !rmore:
			return false
		}
		rf, f = rrest, frest
	}
}
