package mqttcore

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// sharePrefix starts a shared subscription filter: $share/{group}/{filter}.
const sharePrefix = "$share/"

// ValidTopic reports whether name is a valid topic name for publishing: non
// empty, at most 65535 bytes, UTF-8 without NUL, no wildcard, at most
// maxLevels levels (0 means no level limit). The error wraps ErrInvalidTopic.
func ValidTopic(name string, maxLevels int) error {
	if err := checkTopic(name, maxLevels); err != nil {
		return fmt.Errorf("mqttcore: %w", err)
	}
	return nil
}

// checkTopic is ValidTopic without the package prefix, for callers that
// add their own context.
func checkTopic(name string, maxLevels int) error {
	if name == "" {
		return fmt.Errorf("topic name is empty: %w", ErrInvalidTopic)
	}
	if len(name) > maxTopicLen {
		return fmt.Errorf("topic name of %d bytes: %w", len(name), ErrInvalidTopic)
	}
	levels := 1
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '+', '#':
			return fmt.Errorf("topic name %q has a wildcard: %w", name, ErrInvalidTopic)
		case 0:
			return fmt.Errorf("topic name %q has a NUL: %w", name, ErrInvalidTopic)
		case '/':
			levels++
		}
	}
	if maxLevels > 0 && levels > maxLevels {
		return fmt.Errorf("topic name %q has %d levels, limit %d: %w", name, levels, maxLevels, ErrInvalidTopic)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("topic name %q is not UTF-8: %w", name, ErrInvalidTopic)
	}
	return nil
}

// ValidFilter reports whether filter is a valid topic filter: like a topic
// name, but "+" may fill a whole level and "#" may be the whole last level.
// Shared filters ($share/group/filter) are accepted too. The error wraps
// ErrInvalidFilter.
func ValidFilter(filter string, maxLevels int) error {
	if _, _, err := parseFilter(filter, maxLevels); err != nil {
		return fmt.Errorf("mqttcore: %w", err)
	}
	return nil
}

// parseFilter splits a shared filter into group and filter ("" group for a
// plain filter) and validates it.
func parseFilter(full string, maxLevels int) (group, filter string, err error) {
	filter = full
	if strings.HasPrefix(full, sharePrefix) {
		rest := full[len(sharePrefix):]
		i := strings.IndexByte(rest, '/')
		if i <= 0 {
			return "", "", fmt.Errorf("shared filter %q has no group or no filter: %w", full, ErrInvalidFilter)
		}
		group, filter = rest[:i], rest[i+1:]
		if strings.ContainsAny(group, "+#") {
			return "", "", fmt.Errorf("shared filter %q: wildcard in group name: %w", full, ErrInvalidFilter)
		}
	}
	if filter == "" {
		return "", "", fmt.Errorf("topic filter %q is empty: %w", full, ErrInvalidFilter)
	}
	if len(full) > maxTopicLen {
		return "", "", fmt.Errorf("topic filter of %d bytes: %w", len(full), ErrInvalidFilter)
	}
	levels := 1
	start := 0
	for i := 0; i <= len(filter); i++ {
		if i < len(filter) && filter[i] != '/' {
			if filter[i] == 0 {
				return "", "", fmt.Errorf("topic filter %q has a NUL: %w", full, ErrInvalidFilter)
			}
			continue
		}
		level := filter[start:i]
		if strings.ContainsAny(level, "+#") && len(level) != 1 {
			return "", "", fmt.Errorf("topic filter %q: wildcard must fill level %q: %w", full, level, ErrInvalidFilter)
		}
		if level == "#" && i != len(filter) {
			return "", "", fmt.Errorf("topic filter %q: '#' must be the last level: %w", full, ErrInvalidFilter)
		}
		if i < len(filter) {
			levels++
		}
		start = i + 1
	}
	if maxLevels > 0 && levels > maxLevels {
		return "", "", fmt.Errorf("topic filter %q has %d levels, limit %d: %w", full, levels, maxLevels, ErrInvalidFilter)
	}
	if !utf8.ValidString(full) {
		return "", "", fmt.Errorf("topic filter %q is not UTF-8: %w", full, ErrInvalidFilter)
	}
	return group, filter, nil
}

// MatchFilter reports whether the valid, non-shared filter matches the valid
// topic name, applying the $ rule: a filter starting with a wildcard does not
// match a topic starting with '$'. It does not allocate.
func MatchFilter(filter, topic string) bool {
	if topic != "" && topic[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := cut(filter)
		if fl == "#" {
			return true
		}
		tl, trest, tmore := cut(topic)
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore && !tmore {
			return true
		}
		if !tmore {
			// "a/#" matches "a".
			return fmore && frest == "#"
		}
		if !fmore {
			return false
		}
		filter, topic = frest, trest
	}
}

// cut splits s at its first '/'.
func cut(s string) (level, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// hasWildcard reports whether a valid filter contains + or #.
func hasWildcard(filter string) bool {
	return strings.ContainsAny(filter, "+#")
}
