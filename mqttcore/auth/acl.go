package auth

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/gannet-mqtt/gannet/mqttcore"
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

// levelKind says how a rule level matches a topic level.
type levelKind uint8

// Level kinds.
const (
	levelLiteral  levelKind = iota // matches the same name
	levelPlus                      // '+': any one level
	levelHash                      // '#': the rest, including none
	levelTemplate                  // a pattern level with %u or %c
)

// segment is a piece of a template level: literal text or a substitution.
type segment struct {
	lit string
	sub byte // 0: lit; 'u': the username; 'c': the client id
}

// level is one precompiled level of a rule's filter.
type level struct {
	kind levelKind
	lit  string    // levelLiteral
	segs []segment // levelTemplate
}

// rule is one ACL line: an access and a topic filter, which for a pattern
// may have %u and %c in its levels, split into levels when the file is
// parsed so that a check only compares.
type rule struct {
	access    Access
	filter    string // as written
	levels    []level
	wildFirst bool // first level is '+' or '#': never matches a '$' topic
}

// ruleSet is a section's rules. With more than indexMin rules, those whose
// first level is a literal are indexed by it, so a check looks at the rules
// that can match its topic's first level plus those starting with a
// wildcard or a substitution.
type ruleSet struct {
	all     []rule            // in file order; scanned when small
	byFirst map[string][]rule // rules with a literal first level, when indexed
	rest    []rule            // the others, when indexed
}

// indexMin is the size from which a ruleSet is indexed.
const indexMin = 8

// index builds the first-level index of a large set.
func (rs *ruleSet) index() {
	if len(rs.all) < indexMin {
		return
	}
	rs.byFirst = make(map[string][]rule)
	for _, r := range rs.all {
		if l := r.levels[0]; l.kind == levelLiteral {
			rs.byFirst[l.lit] = append(rs.byFirst[l.lit], r)
		} else {
			rs.rest = append(rs.rest, r)
		}
	}
}

// ACL is a loaded topic access list. Whatever no rule allows is denied. It
// is immutable and safe for concurrent use.
type ACL struct {
	anonymous ruleSet             // topic lines before the first user or client line
	users     map[string]*ruleSet // topic lines under "user <name>"
	clients   map[string]*ruleSet // topic lines under "client <id>"
	patterns  ruleSet             // pattern lines, for every client
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
// clients (those without a username). In a pattern line, as in Mosquitto,
// "%u" stands for the client's username and "%c" for its client id,
// anywhere within a level ("sensors/%c/#", "users/%u", "dev-%c/status"), so
// one line covers a fleet; topic lines are not substituted and refuse them.
// A pattern with %u never matches an anonymous client. A username or client
// id that starts with '$' or contains '/', '+' or '#' is never substituted
// (the pattern does not match for that client), so a client cannot widen
// its rights with its client id: "a/b" in "sensors/%c/#" would otherwise
// reach client "a"'s topics, "+" or "#" every client's, "$SYS" the broker's.
// Mosquitto likewise refuses '+' and '#' in pattern substitutions; Gannet
// also refuses '/' and a leading '$'. There are no deny rules: a client
// may do what at least one of its rules allows and nothing else.
//
// A client's rules are: its user section (if it has a username), its
// client section (if one names its client id), the anonymous section (if
// it has no username), and all patterns. See CanPublish, CanRead and
// CanSubscribe. Sections with many rules are indexed by their rules' first
// level, so a check costs a map lookup and the few rules that can match,
// whatever the file's length.
func ParseACL(r io.Reader, name string) (*ACL, error) {
	a := &ACL{users: make(map[string]*ruleSet), clients: make(map[string]*ruleSet)}
	var section map[string]*ruleSet // nil: the anonymous section
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
				section[key] = &ruleSet{}
			}
		case "topic", "pattern":
			r, err := parseRule(rest, keyword == "pattern")
			if err != nil {
				return nil, fmt.Errorf("acl file %s line %d: %w", name, line, err)
			}
			switch {
			case keyword == "pattern":
				a.patterns.all = append(a.patterns.all, r)
			case section == nil:
				a.anonymous.all = append(a.anonymous.all, r)
			default:
				section[key].all = append(section[key].all, r)
			}
		default:
			return nil, fmt.Errorf("acl file %s line %d: unknown directive %q (want user, client, topic or pattern)", name, line, keyword)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("acl file %s: %w", name, err)
	}
	a.anonymous.index()
	a.patterns.index()
	for _, rs := range a.users {
		rs.index()
	}
	for _, rs := range a.clients {
		rs.index()
	}
	return a, nil
}

// parseRule parses "[read|write|readwrite] <filter>".
func parseRule(s string, pattern bool) (rule, error) {
	r := rule{access: ReadWrite, filter: s}
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
	r.compile(pattern)
	return r, nil
}

// compile splits the checked filter into levels.
func (r *rule) compile(pattern bool) {
	for _, l := range strings.Split(r.filter, "/") {
		switch {
		case l == "+":
			r.levels = append(r.levels, level{kind: levelPlus})
		case l == "#":
			r.levels = append(r.levels, level{kind: levelHash})
		case pattern && (strings.Contains(l, "%u") || strings.Contains(l, "%c")):
			r.levels = append(r.levels, level{kind: levelTemplate, segs: template(l)})
		default:
			r.levels = append(r.levels, level{kind: levelLiteral, lit: l})
		}
	}
	r.wildFirst = r.levels[0].kind == levelPlus || r.levels[0].kind == levelHash
}

// template splits a pattern level into literal text and %u/%c
// substitutions, scanning left to right.
func template(l string) []segment {
	var segs []segment
	lit := 0
	for i := 0; i+1 < len(l); i++ {
		if l[i] == '%' && (l[i+1] == 'u' || l[i+1] == 'c') {
			if lit < i {
				segs = append(segs, segment{lit: l[lit:i]})
			}
			segs = append(segs, segment{sub: l[i+1]})
			i++
			lit = i + 1
		}
	}
	if lit < len(l) {
		segs = append(segs, segment{lit: l[lit:]})
	}
	return segs
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
		case !pattern && (strings.Contains(level, "%u") || strings.Contains(level, "%c")):
			return fmt.Errorf("topic filter %q: %%u and %%c are substituted only in pattern lines", f)
		}
	}
	return nil
}

// Allow implements mqttcore.Authorizer: ActionPublish is CanPublish,
// ActionSubscribe CanSubscribe and ActionRead CanRead. It does not
// allocate.
func (a *ACL) Allow(user, clientID string, action mqttcore.Action, topic string) bool {
	switch action {
	case mqttcore.ActionPublish:
		return a.CanPublish(user, clientID, topic)
	case mqttcore.ActionSubscribe:
		return a.CanSubscribe(user, clientID, topic)
	case mqttcore.ActionRead:
		return a.CanRead(user, clientID, topic)
	}
	return false
}

// CanPublish reports whether the client may publish to topic: whether one
// of its rules with write access matches topic by MQTT's matching rules,
// including that a filter starting with a wildcard does not match a topic
// starting with '$' [MQTT-4.7.2-1]. username "" means an anonymous client.
// It does not allocate.
func (a *ACL) CanPublish(username, clientID, topic string) bool {
	return a.allowed(Write, false, username, clientID, topic)
}

// CanRead reports whether the client may receive a message published to
// topic: whether one of its rules with read access matches topic. The core
// asks it for every message it queues for a session, so a subscription
// only delivers what its user may read now. It does not allocate.
func (a *ACL) CanRead(username, clientID, topic string) bool {
	return a.allowed(Read, false, username, clientID, topic)
}

// CanSubscribe reports whether the client may subscribe to filter.
//
// The rule: a filter is allowed only if a single rule with read access
// covers it, meaning every topic the filter can match is matched by that
// rule. Level by level, a rule level '#' covers the rest of the filter; a
// rule level '+' covers one filter level that is a name or '+', never '#';
// a name (or a substituted pattern level) covers only the same name; a
// filter that ends where the rule continues with a final '#' is covered
// (the '#' matches the parent level too). A rule starting with a wildcard
// never covers a filter starting with '$'. So with the rule
// "sensors/+/temp", "sensors/+/temp" and "sensors/kitchen/temp" are
// allowed but "sensors/#" and "#" are not, even though they would deliver
// some allowed messages. For a shared subscription
// "$share/<group>/<filter>" the check applies to <filter>. username ""
// means an anonymous client. It does not allocate.
func (a *ACL) CanSubscribe(username, clientID, filter string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		group, f, found := strings.Cut(rest, "/")
		if !found || group == "" || f == "" {
			return false
		}
		filter = f
	}
	return a.allowed(Read, true, username, clientID, filter)
}

// allowed checks the client's rules in turn: s is a topic name, or with
// cover a topic filter.
func (a *ACL) allowed(access Access, cover bool, username, clientID, s string) bool {
	if username != "" {
		if rs := a.users[username]; rs != nil && rs.any(access, cover, username, clientID, s) {
			return true
		}
	} else if a.anonymous.any(access, cover, username, clientID, s) {
		return true
	}
	if rs := a.clients[clientID]; rs != nil && rs.any(access, cover, username, clientID, s) {
		return true
	}
	return a.patterns.any(access, cover, username, clientID, s)
}

// any reports whether one of the set's rules grants access to s.
func (rs *ruleSet) any(access Access, cover bool, username, clientID, s string) bool {
	if rs.byFirst == nil {
		return anyRule(rs.all, access, cover, username, clientID, s)
	}
	first, _, _ := strings.Cut(s, "/")
	// A literal rule level covers neither '+' nor '#' in a filter.
	if !(cover && (first == "+" || first == "#")) {
		if anyRule(rs.byFirst[first], access, cover, username, clientID, s) {
			return true
		}
	}
	return anyRule(rs.rest, access, cover, username, clientID, s)
}

// anyRule reports whether one of rules grants access to s.
func anyRule(rules []rule, access Access, cover bool, username, clientID, s string) bool {
	for i := range rules {
		r := &rules[i]
		if r.access&access == 0 {
			continue
		}
		if cover && r.covers(username, clientID, s) || !cover && r.matches(username, clientID, s) {
			return true
		}
	}
	return false
}

// substitutable reports whether s may be substituted for %u or %c: it is
// not empty, does not start with '$' and has no '/', '+' or '#', so that a
// client id or username can never widen a pattern beyond one level of its
// own, nor reach '$' topics.
func substitutable(s string) bool {
	if s == "" || s[0] == '$' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c == '+' || c == '#' {
			return false
		}
	}
	return true
}

// matchName reports whether rule level l matches the topic (or filter)
// level name by name: a literal equals it; a template equals it after
// substitution.
func (l *level) matchName(username, clientID, name string) bool {
	if l.kind == levelLiteral {
		return l.lit == name
	}
	for _, sg := range l.segs {
		v := sg.lit
		switch sg.sub {
		case 'u':
			v = username
		case 'c':
			v = clientID
		}
		if sg.sub != 0 && !substitutable(v) {
			return false
		}
		if !strings.HasPrefix(name, v) {
			return false
		}
		name = name[len(v):]
	}
	return name == ""
}

// matches reports whether the rule matches topic name t.
func (r *rule) matches(username, clientID, t string) bool {
	if len(t) > 0 && t[0] == '$' && r.wildFirst {
		return false
	}
	rest, more := t, true
	for i := range r.levels {
		l := &r.levels[i]
		if l.kind == levelHash {
			return true
		}
		if !more {
			return false
		}
		var name string
		name, rest, more = strings.Cut(rest, "/")
		if l.kind != levelPlus && !l.matchName(username, clientID, name) {
			return false
		}
	}
	return !more
}

// covers reports whether every topic filter f can match is matched by the
// rule (see CanSubscribe).
func (r *rule) covers(username, clientID, f string) bool {
	if len(f) > 0 && f[0] == '$' && r.wildFirst {
		return false
	}
	rest, more := f, true
	for i := range r.levels {
		l := &r.levels[i]
		if l.kind == levelHash {
			return true
		}
		if !more {
			return false
		}
		var name string
		name, rest, more = strings.Cut(rest, "/")
		switch {
		case l.kind == levelPlus:
			if name == "#" {
				return false
			}
		case !l.matchName(username, clientID, name):
			// A name never equals '+' or '#' here: literals cannot be
			// wildcards and substituted values cannot contain them.
			return false
		}
	}
	return !more
}
