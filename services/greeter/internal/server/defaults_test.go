package server_test

import (
	"errors"
	"io"
	"testing"

	"github.com/acme/greeter/services/greeter/internal/config"
	"github.com/acme/greeter/services/greeter/internal/memlimit"
	"github.com/acme/greeter/services/greeter/internal/server"
)

// TestBinaryDefaultsAreInProcessDefaults: the greeter binary started with
// no flag and no environment serves on the defaults the in-process tests
// run on, setting by setting.
func TestBinaryDefaultsAreInProcessDefaults(t *testing.T) {
	cfg, err := config.Parse(nil, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	settings := cfg.ServerSettings()
	if len(settings) == 0 {
		t.Fatal("no setting becomes a server option")
	}
	for _, s := range settings {
		changes, err := server.ChangesDefaults(s.Option)
		if err != nil {
			t.Errorf("--%s's default: %v", s.Flag, err)
		}
		if changes {
			t.Errorf("--%s's default is not the in-process server's", s.Flag)
		}
	}
	// The memory limit main plans for without a flag or a cgroup.
	noCgroup := func() (uint64, error) { return 0, errors.New("no cgroup") }
	limit, _, _ := memlimit.Limit(cfg.MemoryLimit, noCgroup, server.DefaultMemoryLimit)
	if changes, err := server.ChangesDefaults(server.WithMemoryLimit(limit)); changes || err != nil {
		t.Errorf("--memory-limit's default plans for %d, not the in-process server's (%v)", limit, err)
	}
}

// TestDefaultsTestCanFail: a setting away from its default is seen.
func TestDefaultsTestCanFail(t *testing.T) {
	cfg, err := config.Parse([]string{"--drain-timeout=3s", "--reflection=false"}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	changed := map[string]bool{}
	for _, s := range cfg.ServerSettings() {
		if c, _ := server.ChangesDefaults(s.Option); c {
			changed[s.Flag] = true
		}
	}
	if len(changed) != 2 || !changed["drain-timeout"] || !changed["reflection"] {
		t.Errorf("changed settings %v, want drain-timeout and reflection", changed)
	}
}
