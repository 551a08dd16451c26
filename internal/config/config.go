// Package config decodes Gannet's TOML configuration strictly: an unknown
// key is an error naming the key and its line, a duration must be a string
// such as "30s" (an integer would silently mean nanoseconds), and every
// section's Validate runs. It knows the file's shape only through the
// struct it is given; the sections are the packages' own Config types.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Validator is implemented by configuration sections that check themselves.
type Validator interface {
	Validate() error
}

// LoadFile reads and decodes the file at path into v (a pointer to a
// struct). See Decode.
func LoadFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := Decode(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Decode decodes TOML data into v strictly, then runs Validate on every
// field of v (and v itself) that implements Validator.
func Decode(data []byte, v any) error {
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(v)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return fmt.Errorf("line %d: %s", perr.Position.Line, perr.Message)
		}
		return fmt.Errorf("config: %w", err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		k := keys[0]
		return fmt.Errorf("line %d: unknown key %q", lineOf(data, k), k.String())
	}
	rt := reflect.TypeOf(v).Elem()
	for _, k := range md.Keys() {
		if md.Type(k...) != "Integer" {
			continue
		}
		if t := fieldType(rt, k); t == reflect.TypeFor[time.Duration]() {
			return fmt.Errorf("line %d: %s: a duration needs a unit, as in \"30s\" or \"5m\"", lineOf(data, k), k.String())
		}
	}
	return validate(reflect.ValueOf(v).Elem(), data, nil)
}

// tablePos is one step of the TOML path to a table: its name and, for an
// element of an array of tables, its index (-1 otherwise).
type tablePos struct {
	name  string
	index int
}

// validate calls Validate on rv and on every struct field below it. path
// is where rv is in the file; an error gets the line of the key it names
// (or of its table) in front, when the line can be found.
func validate(rv reflect.Value, data []byte, path []tablePos) error {
	if rv.CanAddr() {
		if val, ok := rv.Addr().Interface().(Validator); ok {
			if err := val.Validate(); err != nil {
				if n := errorLine(data, path, rv.Type(), err); n > 0 {
					return fmt.Errorf("line %d: %w", n, err)
				}
				return err
			}
		}
	}
	if rv.Kind() != reflect.Struct {
		return nil
	}
	for i := range rv.NumField() {
		f := rv.Field(i)
		sf := rv.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		sub := path
		if !(sf.Anonymous && name == "") { // an untagged embedded struct shares its parent's table
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			sub = append(path[:len(path):len(path)], tablePos{name, -1})
		}
		for f.Kind() == reflect.Pointer && !f.IsNil() {
			f = f.Elem()
		}
		switch f.Kind() {
		case reflect.Struct:
			if err := validate(f, data, sub); err != nil {
				return err
			}
		case reflect.Slice:
			for j := range f.Len() {
				elem := append(sub[:len(sub)-1:len(sub)-1], tablePos{sub[len(sub)-1].name, j})
				if err := validate(f.Index(j), data, elem); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// errKey finds the words of an error message that may be keys.
var errKey = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)`)

// errorLine returns the line of the first key of the table at path (whose
// Go type is t) that err's message names and the file sets, or else of
// the table's header; 0 if neither is found.
func errorLine(data []byte, path []tablePos, t reflect.Type, err error) int {
	if len(path) == 0 {
		return 0
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for _, m := range errKey.FindAllStringSubmatch(err.Error(), -1) {
		if t.Kind() == reflect.Struct {
			if _, ok := fieldByTag(t, m[1]); !ok {
				continue
			}
		}
		if n := lineIn(data, path, m[1]); n > 0 {
			return n
		}
	}
	return lineIn(data, path, "")
}

// lineIn returns the line of key in the table at path, following
// [[array]] element indices, or of the table's header when key is "";
// 0 if not found. Keys are matched as plain or quoted bare names; dotted
// keys and inline tables are not followed.
func lineIn(data []byte, path []tablePos, key string) int {
	want := make([]string, len(path))
	for i, p := range path {
		want[i] = p.name
	}
	wantName := strings.Join(want, ".")
	// seen counts, per array-table name, the elements opened so far.
	seen := map[string]int{}
	inside := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			array := strings.HasPrefix(line, "[[")
			name := strings.TrimSpace(strings.Trim(strings.SplitN(line, "#", 2)[0], " []"))
			if array {
				seen[name]++
			}
			inside = name == wantName && matchesIndices(path, seen)
			if inside && key == "" {
				return n
			}
			continue
		}
		if !inside || key == "" {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if ok && strings.Trim(strings.TrimSpace(k), `"`) == key {
			return n
		}
	}
	return 0
}

// matchesIndices reports whether the array elements opened so far (seen)
// are the ones path names.
func matchesIndices(path []tablePos, seen map[string]int) bool {
	for i, p := range path {
		if p.index < 0 {
			continue
		}
		names := make([]string, i+1)
		for j := range names {
			names[j] = path[j].name
		}
		if seen[strings.Join(names, ".")] != p.index+1 {
			return false
		}
	}
	return true
}

// fieldType follows a TOML key path through struct t by toml tags (array
// tables and arrays through their element type).
func fieldType(t reflect.Type, key toml.Key) reflect.Type {
	for _, name := range key {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := fieldByTag(t, name)
		if !ok {
			return nil
		}
		t = f.Type
	}
	for t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return t
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == name || tag == "" && strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	// The decoder promotes the fields of an untagged embedded struct
	// (listener.Config in [mqtt]); look there too, or an integer
	// duration in one would pass unnoticed.
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Tag.Get("toml") == "" && f.Type.Kind() == reflect.Struct {
			if ef, ok := fieldByTag(f.Type, name); ok {
				return ef, true
			}
		}
	}
	return reflect.StructField{}, false
}

// lineOf finds the line that defines key, tracking [table] and [[array]]
// headers; 0 if it cannot tell (for example for inline tables).
func lineOf(data []byte, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	table, name := strings.Join(key[:len(key)-1], "."), key[len(key)-1]
	current := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "[["):
			current = strings.TrimSpace(strings.Trim(line, "[]"))
			if current == strings.Join(key, ".") {
				return n
			}
		case strings.HasPrefix(line, "["):
			current = strings.TrimSpace(strings.Trim(line, "[]"))
			if current == strings.Join(key, ".") {
				return n
			}
		default:
			k, _, ok := strings.Cut(line, "=")
			k = strings.Trim(strings.TrimSpace(k), `"`)
			if ok && current == table && k == name {
				return n
			}
			if ok && current == "" && k == strings.Join(key, ".") { // dotted key at top level
				return n
			}
		}
	}
	return 0
}
