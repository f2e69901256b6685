package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decoder walks the raw TOML tree, assigning known keys and collecting a
// problem for each wrong type or unknown key, so one run reports them all.
type decoder struct{ problems *Problems }

type section struct {
	name     string
	raw      map[string]any
	problems *Problems
}

func (d decoder) section(raw map[string]any, name string, fill func(section)) {
	v, ok := raw[name]
	if !ok {
		return
	}
	delete(raw, name)
	m, ok := v.(map[string]any)
	if !ok {
		d.problems.add(name, "must be a table ([%s])", name)
		return
	}
	s := section{name: name, raw: m, problems: d.problems}
	fill(s)
	for key := range m {
		s.problems.add(name+"."+key, "unknown key")
	}
}

// take removes key from the section and reports whether it was there.
func (s section) take(key string) (any, bool) {
	v, ok := s.raw[key]
	delete(s.raw, key)
	return v, ok
}

func (s section) wrongType(key string, want string, v any) {
	s.problems.add(s.name+"."+key, "must be %s, not %s", want, tomlType(v))
}

func (s section) str(key string, dst *string) {
	v, ok := s.take(key)
	if !ok {
		return
	}
	str, ok := v.(string)
	if !ok {
		s.wrongType(key, "a string", v)
		return
	}
	*dst = str
}

func (s section) integer(key string, dst *int64) {
	v, ok := s.take(key)
	if !ok {
		return
	}
	n, ok := v.(int64)
	if !ok {
		s.wrongType(key, "an integer", v)
		return
	}
	*dst = n
}

func (s section) num(key string, dst *int) {
	n := int64(*dst)
	s.integer(key, &n)
	*dst = int(n)
}

func (s section) duration(key string, dst *time.Duration) {
	v, ok := s.take(key)
	if !ok {
		return
	}
	str, ok := v.(string)
	if !ok {
		s.wrongType(key, `a duration string such as "30s"`, v)
		return
	}
	d, err := time.ParseDuration(str)
	if err != nil {
		s.problems.add(s.name+"."+key, "bad duration %q: use a number with a unit, such as \"1s\", \"5m\" or \"720h\"", str)
		return
	}
	*dst = d
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case time.Time:
		return "a date"
	}
	return fmt.Sprintf("%T", v)
}

func asParseError(err error, pe *toml.ParseError) bool { return errors.As(err, pe) }

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
