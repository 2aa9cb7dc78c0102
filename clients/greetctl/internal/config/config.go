// Package config fills in the flags a user did not give on the command
// line, first from GREETCTL_* environment variables, then from a YAML
// config file, so that a flag always wins over the environment and the
// environment over the file.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the environment variable of every flag: --user-agent is
// GREETCTL_USER_AGENT.
const EnvPrefix = "GREETCTL_"

// EnvName returns the environment variable of the flag called name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// DefaultPath returns $XDG_CONFIG_HOME/greetctl/config.yaml, or
// ~/.config/greetctl/config.yaml when XDG_CONFIG_HOME is not set. It
// returns "" if neither can be determined.
func DefaultPath(lookupEnv func(string) (string, bool)) string {
	if dir, ok := lookupEnv("XDG_CONFIG_HOME"); ok && filepath.IsAbs(dir) {
		return filepath.Join(dir, "greetctl", "config.yaml")
	}
	if home, ok := lookupEnv("HOME"); ok && home != "" {
		return filepath.Join(home, ".config", "greetctl", "config.yaml")
	}
	return ""
}

// Source says where unset flags come from.
type Source struct {
	// LookupEnv reads the environment, os.LookupEnv outside tests.
	LookupEnv func(string) (string, bool)
	// Path is the config file. A missing file is an error only if
	// Required: the default file is optional.
	Path     string
	Required bool
	// Known reports whether a config file key names a flag of some
	// command. Other keys are errors, so that a typo does not pass for a
	// setting.
	Known func(name string) bool
}

// Apply sets every flag of flags that is not Changed from the environment,
// then from the config file. Repeatable flags (-H) take a YAML list; their
// environment variable holds one value.
func Apply(flags *pflag.FlagSet, src Source) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v, ok := src.LookupEnv(EnvName(f.Name)); ok {
			if serr := flags.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, serr)
			}
		}
	})
	if err != nil || src.Path == "" {
		return err
	}
	values, err := read(src.Path, src.Required)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if !src.Known(key) {
			return fmt.Errorf("%s: unknown key %q: keys are long flag names such as addr or timeout", src.Path, key)
		}
		f := flags.Lookup(key)
		if f == nil || f.Changed {
			// Another command's flag, or one the user gave.
			continue
		}
		if err := set(flags, key, values[key]); err != nil {
			return fmt.Errorf("%s: %s: %w", src.Path, key, err)
		}
	}
	return nil
}

func read(path string, required bool) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return values, nil
}

func set(flags *pflag.FlagSet, name string, value any) error {
	switch v := value.(type) {
	case []any:
		if !strings.HasSuffix(flags.Lookup(name).Value.Type(), "Array") {
			return fmt.Errorf("takes one value, not a list")
		}
		for _, item := range v {
			if err := set(flags, name, item); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		return fmt.Errorf("takes a value, not a mapping")
	case nil:
		return nil
	default:
		return flags.Set(name, fmt.Sprint(v))
	}
}
