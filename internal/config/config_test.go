package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/internal/config"
)

type section struct {
	Interval time.Duration `toml:"interval"`
	Count    int           `toml:"count"`
	Items    []item        `toml:"item"`
}

func (s *section) Validate() error {
	if s.Count < 0 {
		return errors.New("count must not be negative")
	}
	return nil
}

type item struct {
	Wait time.Duration `toml:"wait"`
	Name string        `toml:"name"`
}

func (i *item) Validate() error {
	if i.Name == "" {
		return errors.New("item name is required")
	}
	return nil
}

// Embedded has its fields promoted into outer, as listener.Config's
// are into the [mqtt] section.
type Embedded struct {
	Delay time.Duration `toml:"delay"`
}

type outer struct {
	On bool `toml:"on"`
	Embedded
}

type file struct {
	Section section `toml:"section"`
	Outer   outer   `toml:"outer"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		wantErr string // empty: success
	}{
		{"ok", "[section]\ninterval = \"30s\"\ncount = 3\n[[section.item]]\nname = \"a\"\nwait = \"1m\"\n", ""},
		{"unknown key", "[section]\ninterval = \"30s\"\ncuont = 3\n", `line 3: unknown key "section.cuont"`},
		{"unknown table", "[sektion]\ncount = 3\n", `unknown key "sektion`},
		{"integer duration", "[section]\ncount = 1\ninterval = 30\n", "line 3: section.interval: a duration needs a unit"},
		{"integer duration in array table", "[[section.item]]\nname = \"a\"\nwait = 5\n", "section.item.wait: a duration needs a unit"},
		{"integer duration in embedded struct", "[outer]\non = true\ndelay = 5\n", "line 3: outer.delay: a duration needs a unit"},
		{"duration in embedded struct", "[outer]\ndelay = \"5s\"\n", ""},
		{"bad duration string", "[section]\ninterval = \"soon\"\n", "soon"},
		{"syntax error", "[section]\ninterval = = 3\n", "line 2"},
		{"validate section", "[section]\ncount = -1\n", "count must not be negative"},
		{"validate array element", "[[section.item]]\nwait = \"1s\"\n", "item name is required"},
	}
	for _, tc := range tests {
		var f file
		err := config.Decode([]byte(tc.toml), &f)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: Decode = %v; want success", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: Decode = %v; want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
	var f file
	if err := config.Decode([]byte("[section]\ninterval = \"90s\"\n[[section.item]]\nname = \"x\"\nwait = \"2m\"\n"), &f); err != nil ||
		f.Section.Interval != 90*time.Second || len(f.Section.Items) != 1 || f.Section.Items[0].Wait != 2*time.Minute {
		t.Errorf("Decode = %+v, %v", f, err)
	}
}

// TestValidateErrorLines: an error from a section's Validate names the
// line of the key it mentions, in the right element of an array of
// tables, or else the line of the table's header.
func TestValidateErrorLines(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"key named", "[section]\ninterval = \"1s\"\ncount = -1\n", "line 3: count must not be negative"},
		{"second element", "[section]\n[[section.item]]\nname = \"a\"\n[[section.item]]\nwait = \"1s\"\n", "line 4: item name is required"},
		{"third element", "[section]\n[[section.item]]\nname = \"a\"\n[[section.item]]\nname = \"b\"\n\n[[section.item]]\nname = \"\"\n", "line 8: item name is required"},
	} {
		var f file
		err := config.Decode([]byte(tc.toml), &f)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: Decode = %v; want %q", tc.name, err, tc.want)
		}
	}
}
