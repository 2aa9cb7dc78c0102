package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/greettest"
)

// TestConfigPrecedence checks that a flag wins over the environment and the
// environment over the config file, and that the default config file is
// found under XDG_CONFIG_HOME.
func TestConfigPrecedence(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	const nowhere = "127.0.0.1:1"
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		file     string // Contents of $XDG_CONFIG_HOME/greetctl/config.yaml.
		wantCode int
	}{
		{"flag beats environment", []string{"--addr", s.Addr}, map[string]string{"GREETCTL_ADDR": nowhere}, "", 0},
		{"environment beats file", nil, map[string]string{"GREETCTL_ADDR": s.Addr}, "addr: " + nowhere + "\n", 0},
		{"file beats default", nil, nil, "addr: " + s.Addr + "\nno-retry: true\ntimeout: 5s\n", 0},
		{"flag beats file", []string{"--addr", s.Addr}, nil, "addr: " + nowhere + "\n", 0},
		{"file for a flag of another command", []string{"--addr", s.Addr}, nil, "count: 5\nwatch: true\n", 0},
		{"environment is used", nil, map[string]string{"GREETCTL_ADDR": nowhere, "GREETCTL_NO_RETRY": "true"}, "", exitcode.Unavailable},
		{"bad environment value", []string{"--addr", s.Addr}, map[string]string{"GREETCTL_TIMEOUT": "soon"}, "", exitcode.Usage},
		{"unknown key", []string{"--addr", s.Addr}, nil, "adress: " + s.Addr + "\n", exitcode.Usage},
		{"bad value", []string{"--addr", s.Addr}, nil, "timeout: [1s, 2s]\n", exitcode.Usage},
		{"bad YAML", []string{"--addr", s.Addr}, nil, "addr: [\n", exitcode.Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xdg := t.TempDir()
			env := map[string]string{"XDG_CONFIG_HOME": xdg}
			for k, v := range tt.env {
				env[k] = v
			}
			if tt.file != "" {
				writeFile(t, filepath.Join(xdg, "greetctl"), "config.yaml", tt.file)
			}
			r := run(t, invocation{args: append(tt.args, "hello", "Ada"), env: env})
			if r.code != tt.wantCode {
				t.Errorf("got %v, want exit %d", r, tt.wantCode)
			}
		})
	}
}

// TestCommandFlagsFromConfig checks that a command's own flags come from
// the environment and the config file too.
func TestCommandFlagsFromConfig(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	path := writeFile(t, t.TempDir(), "config.yaml", "count: 2\noutput: json\n")
	tests := []struct {
		name  string
		inv   invocation
		lines int
	}{
		{"file", invocation{args: args(addr(s), "--config", path, "stream", "Ada")}, 2},
		{"environment over file", invocation{args: args(addr(s), "--config", path, "stream", "Ada"), env: map[string]string{"GREETCTL_COUNT": "1"}}, 1},
		{"flag over environment", invocation{args: args(addr(s), "--config", path, "stream", "Ada", "-n", "4"), env: map[string]string{"GREETCTL_COUNT": "1"}}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.inv)
			if r.code != 0 || strings.Count(r.stdout, `{"message":"Hello, Ada!"`) != tt.lines {
				t.Errorf("got %v, want %d JSON lines", r, tt.lines)
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	for name, inv := range map[string]invocation{
		"flag":        {args: []string{"--config", missing, "version"}},
		"environment": {args: []string{"version"}, env: map[string]string{"GREETCTL_CONFIG": missing}},
	} {
		t.Run(name, func(t *testing.T) {
			r := run(t, inv)
			if r.code != exitcode.Usage || !strings.Contains(r.stderr, "nope.yaml") {
				t.Errorf("got %v, want exit 2 naming the file", r)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
