package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/acme/greeter/services/greeter/internal/server"
)

// setting is one setting of the server, declared once (settings.go): its
// flag, from which its environment variable is derived, the Config field
// it fills, its default, its help, its bounds and, for most, the server
// option it becomes. Parse, --help, validation and ServerOptions all read
// the declarations.
type setting interface {
	flagName() flagName
	// define registers the flag, with its default, on fs, filling c.
	define(fs *flag.FlagSet, c *Config)
	// check returns what is wrong with the value in c, nil if nothing.
	check(c *Config) error
	// option is the server option the value in c becomes, nil for a
	// setting that main uses otherwise (an address, the log, TLS files).
	option(c *Config) server.Option
}

// flagType is what a setting's value may be: what package flag parses.
type flagType interface {
	string | bool | int | int64 | uint | float64 | time.Duration
}

// decl is a setting of value type T.
type decl[T flagType] struct {
	name   flagName
	field  func(*Config) *T
	def    T
	usage  string
	bounds []func(T) error
	toOpt  func(T) server.Option
}

// declare declares the setting name, stored in the field field returns,
// with default def and help usage (a word in backquotes names the value in
// --help, as in package flag).
func declare[T flagType](name flagName, field func(*Config) *T, def T, usage string) *decl[T] {
	return &decl[T]{name: name, field: field, def: def, usage: usage}
}

// becomes makes the setting the server option opt: opt's own bounds are
// the setting's, checked by Parse through server.CheckOption.
func (d *decl[T]) becomes(opt func(T) server.Option) *decl[T] {
	d.toOpt = opt
	return d
}

// within adds a bound the server option does not already check.
func (d *decl[T]) within(bound func(T) error) *decl[T] {
	d.bounds = append(d.bounds, bound)
	return d
}

func (d *decl[T]) flagName() flagName { return d.name }

func (d *decl[T]) define(fs *flag.FlagSet, c *Config) {
	name := string(d.name)
	switch p := any(d.field(c)).(type) {
	case *string:
		fs.StringVar(p, name, any(d.def).(string), d.usage)
	case *bool:
		fs.BoolVar(p, name, any(d.def).(bool), d.usage)
	case *int:
		fs.IntVar(p, name, any(d.def).(int), d.usage)
	case *int64:
		fs.Int64Var(p, name, any(d.def).(int64), d.usage)
	case *uint:
		fs.UintVar(p, name, any(d.def).(uint), d.usage)
	case *float64:
		fs.Float64Var(p, name, any(d.def).(float64), d.usage)
	case *time.Duration:
		fs.DurationVar(p, name, any(d.def).(time.Duration), d.usage)
	}
}

func (d *decl[T]) check(c *Config) error {
	v := *d.field(c)
	// A value as messages quote it: strings in quotes, so that an empty
	// one shows.
	quoted := fmt.Sprint(v)
	if s, ok := any(v).(string); ok {
		quoted = strconv.Quote(s)
	}
	var errs []error
	for _, bound := range d.bounds {
		if err := bound(v); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", d.name, quoted, err))
		}
	}
	if len(errs) > 0 || d.toOpt == nil {
		return errors.Join(errs...)
	}
	// The server option's bounds, in the flag's words.
	err := server.CheckOption(d.toOpt(v))
	if oe := (*server.OptionError)(nil); errors.As(err, &oe) {
		return fmt.Errorf("%s %s: %s", d.name, quoted, oe.Reason)
	}
	return err
}

func (d *decl[T]) option(c *Config) server.Option {
	if d.toOpt == nil {
		return nil
	}
	return d.toOpt(*d.field(c))
}

// logLevelSetting is --log-level: a name on the command line, an slog.Level
// in Config.
type logLevelSetting struct {
	name  flagName
	def   slog.Level
	usage string
}

func (s logLevelSetting) flagName() flagName { return s.name }

func (s logLevelSetting) define(fs *flag.FlagSet, c *Config) {
	c.LogLevel = s.def
	fs.Var(&levelValue{c}, string(s.name), s.usage)
}

func (s logLevelSetting) check(c *Config) error {
	if c.logLevelText != "" {
		return fmt.Errorf("%s %q: want debug, info, warn or error", s.name, c.logLevelText)
	}
	return nil
}

func (s logLevelSetting) option(*Config) server.Option { return nil }

// levelValue is the flag.Value of --log-level. A name it does not know is
// kept, to be reported by check with the flag's name (package flag's own
// message would name it -log-level).
type levelValue struct{ c *Config }

func (v *levelValue) String() string {
	if v.c == nil { // flag.isZeroValue's zero levelValue
		return ""
	}
	return strings.ToLower(v.c.LogLevel.String())
}

func (v *levelValue) Set(s string) error {
	v.c.logLevelText = ""
	if err := v.c.LogLevel.UnmarshalText([]byte(s)); err != nil {
		v.c.logLevelText = s
	}
	return nil
}

// quantity is n bytes as --help quotes it: "96 KiB", "1.25 MiB".
func quantity(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size {
			return strconv.FormatFloat(float64(n)/float64(u.size), 'f', -1, 64) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
