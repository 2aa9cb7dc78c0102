package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/acme/greeter/clients/greetctl/internal/config"
)

type flags struct {
	addr    string
	timeout time.Duration
	retry   bool
	headers []string
}

func newFlags(t *testing.T, args ...string) (*pflag.FlagSet, *flags) {
	t.Helper()
	f := &flags{}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.StringVar(&f.addr, "addr", "default:1", "")
	fs.DurationVar(&f.timeout, "timeout", time.Second, "")
	fs.BoolVar(&f.retry, "no-retry", false, "")
	fs.StringArrayVarP(&f.headers, "header", "H", nil, "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs, f
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func known(name string) bool {
	return name == "addr" || name == "timeout" || name == "no-retry" || name == "header" || name == "count"
}

func TestApply(t *testing.T) {
	file := "addr: file:1\ntimeout: 3s\nno-retry: true\nheader: ['a: 1', 'b: 2']\ncount: 7\n"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		file    string
		want    flags
		wantErr string
	}{
		{name: "defaults", want: flags{addr: "default:1", timeout: time.Second}},
		{name: "file", file: file, want: flags{addr: "file:1", timeout: 3 * time.Second, retry: true, headers: []string{"a: 1", "b: 2"}}},
		{name: "environment over file", file: file, env: map[string]string{"GREETCTL_ADDR": "env:1", "GREETCTL_HEADER": "c: 3"},
			want: flags{addr: "env:1", timeout: 3 * time.Second, retry: true, headers: []string{"c: 3"}}},
		{name: "flags over all", file: file, env: map[string]string{"GREETCTL_ADDR": "env:1"}, args: []string{"--addr", "flag:1", "-H", "d: 4", "--timeout", "0"},
			want: flags{addr: "flag:1", retry: true, headers: []string{"d: 4"}}},
		{name: "unknown key", file: "adr: x:1\n", wantErr: `unknown key "adr"`},
		{name: "list for a single flag", file: "addr: [a:1, b:2]\n", wantErr: "takes one value"},
		{name: "mapping", file: "addr: {a: 1}\n", wantErr: "not a mapping"},
		{name: "bad value", file: "timeout: soon\n", wantErr: "timeout"},
		{name: "bad environment", env: map[string]string{"GREETCTL_NO_RETRY": "maybe"}, wantErr: "GREETCTL_NO_RETRY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, got := newFlags(t, tt.args...)
			src := config.Source{LookupEnv: env(tt.env), Known: known}
			if tt.file != "" {
				src.Path = filepath.Join(t.TempDir(), "config.yaml")
				if err := os.WriteFile(src.Path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := config.Apply(fs, src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.addr != tt.want.addr || got.timeout != tt.want.timeout || got.retry != tt.want.retry ||
				strings.Join(got.headers, "|") != strings.Join(tt.want.headers, "|") {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.yaml")
	fs, _ := newFlags(t)
	if err := config.Apply(fs, config.Source{LookupEnv: env(nil), Known: known, Path: path}); err != nil {
		t.Errorf("optional missing file: %v", err)
	}
	if err := config.Apply(fs, config.Source{LookupEnv: env(nil), Known: known, Path: path, Required: true}); err == nil {
		t.Error("required missing file: no error")
	}
}

func TestDefaultPath(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/ada"}, "/xdg/greetctl/config.yaml"},
		{map[string]string{"XDG_CONFIG_HOME": "relative", "HOME": "/home/ada"}, "/home/ada/.config/greetctl/config.yaml"},
		{map[string]string{"HOME": "/home/ada"}, "/home/ada/.config/greetctl/config.yaml"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := config.DefaultPath(env(tt.env)); got != tt.want {
			t.Errorf("DefaultPath(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := config.EnvName("insecure-skip-verify"); got != "GREETCTL_INSECURE_SKIP_VERIFY" {
		t.Errorf("got %q", got)
	}
}
