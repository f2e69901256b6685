package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decodeFile decodes TOML into cfg key by key, so that a wrong type or an
// unknown key is one problem among all the others rather than the end of
// the run. Sections and keys are the `toml` tags of Config's fields; there
// is no second list of them.
//
// MetaData.Undecoded cannot serve here: the decoder stops at the first
// wrong type, and the keys after it would then read as undecoded too.
func decodeFile(text string, cfg *Config) Problems {
	var file map[string]toml.Primitive
	md, err := toml.Decode(text, &file)
	if err != nil {
		return Problems{{Key: "toml", Msg: syntaxMessage(err)}}
	}
	var p Problems
	sections := reflect.ValueOf(cfg).Elem()
	for _, name := range sortedKeys(file) {
		sec, ok := fieldByTag(sections, name)
		if !ok {
			p.add(name, "unknown section")
			continue
		}
		if t := md.Type(name); t != "Hash" {
			p.add(name, "must be a table ([%s]), not %s", name, tomlType(t))
			continue
		}
		var keys map[string]toml.Primitive
		if err := md.PrimitiveDecode(file[name], &keys); err != nil {
			p.add(name, "%v", err)
			continue
		}
		for _, key := range sortedKeys(keys) {
			decodeKey(md, &p, sec, name, key, keys[key])
		}
	}
	return p
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeKey decodes one key into its field, or adds the problem with it.
func decodeKey(md toml.MetaData, p *Problems, sec reflect.Value, name, key string, v toml.Primitive) {
	path := name + "." + key
	field, ok := fieldByTag(sec, key)
	if !ok {
		p.add(path, "unknown key")
		return
	}
	got := md.Type(name, key)
	if field.Type() == durationType {
		// toml would take an integer as nanoseconds: "retention = 30"
		// would silently mean 30 ns.
		if got != "String" {
			p.add(path, `must be a duration string such as "30s", not %s`, tomlType(got))
			return
		}
		var s string
		_ = md.PrimitiveDecode(v, &s)
		d, err := time.ParseDuration(s)
		if err != nil {
			p.add(path, "bad duration %q: use a number with a unit, such as \"1s\", \"5m\" or \"720h\"", s)
			return
		}
		field.SetInt(int64(d))
		return
	}
	// Decode into a fresh value so that a failed decode leaves the default.
	fresh := reflect.New(field.Type())
	if err := md.PrimitiveDecode(v, fresh.Interface()); err != nil {
		p.add(path, "must be %s, not %s", goType(field.Type()), tomlType(got))
		return
	}
	field.Set(fresh.Elem())
}

// fieldByTag returns the field of struct v whose toml tag is name.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("toml") == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// goType names what a field of type t takes, in TOML's words.
func goType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return t.String()
}

// tomlType names a type as MetaData.Type reports it.
func tomlType(t string) string {
	switch t {
	case "String":
		return "a string"
	case "Integer":
		return "an integer"
	case "Float":
		return "a float"
	case "Bool":
		return "a boolean"
	case "Hash":
		return "a table"
	case "Array", "ArrayHash":
		return "an array"
	case "Datetime", "DatetimeLocal", "DateLocal", "TimeLocal":
		return "a date"
	}
	return strings.ToLower(t)
}

func syntaxMessage(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)
	}
	return err.Error()
}

// Problem is one thing wrong with the configuration.
type Problem struct {
	Key string // e.g. wechatpay.private_key_file
	Msg string
	Err error // the underlying error, if any
}

func (p Problem) String() string { return p.Key + ": " + p.Msg }

// Problems is every problem found in one run; it is the error Parse,
// Validate and Load return.
type Problems []Problem

func (ps *Problems) add(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Key < ps[j].Key })
}

// has reports whether a problem names key.
func (ps Problems) has(key string) bool {
	for _, p := range ps {
		if p.Key == key {
			return true
		}
	}
	return false
}

// Unwrap returns the underlying errors of the problems that have one.
func (ps Problems) Unwrap() []error {
	var errs []error
	for _, p := range ps {
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
	}
	return errs
}

// Error lists the problems one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
