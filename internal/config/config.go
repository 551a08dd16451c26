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
	return validate(reflect.ValueOf(v).Elem())
}

// validate calls Validate on rv and on every struct field below it.
func validate(rv reflect.Value) error {
	if rv.CanAddr() {
		if val, ok := rv.Addr().Interface().(Validator); ok {
			if err := val.Validate(); err != nil {
				return err
			}
		}
	}
	if rv.Kind() != reflect.Struct {
		return nil
	}
	for i := range rv.NumField() {
		f := rv.Field(i)
		if !rv.Type().Field(i).IsExported() {
			continue
		}
		switch f.Kind() {
		case reflect.Struct:
			if err := validate(f); err != nil {
				return err
			}
		case reflect.Slice:
			for j := range f.Len() {
				if err := validate(f.Index(j)); err != nil {
					return err
				}
			}
		}
	}
	return nil
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
