// Command greetbench is the load benchmark behind `make bench`: the greeter
// against a bare grpc-go server, same load, same machine (see package
// bench). Run it in the test module (or `make bench` at the root):
//
//	go tool greetbench [-duration 5s] [-concurrency 1,16,64,256] [-out docs/performance.md]
//
// -out is relative to the repository root.
//
// The report replaces the part of -out after the line
// "<!-- greetbench -->", so the hand-written part above it stays.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/acme/greeter/test/bench"
	"github.com/acme/greeter/test/bench/load"
	"github.com/acme/greeter/test/harness/repo"
)

// marker separates the hand-written part of the report file from the
// generated one.
const marker = "<!-- greetbench -->"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "greetbench:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := bench.Config{Progress: os.Stderr}
	var conc, scen, idle, extra, out string
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long each row drives each server (at most 5m)")
	flag.StringVar(&conc, "concurrency", "1,16,64,256", "comma-separated numbers of RPCs in flight")
	flag.StringVar(&scen, "scenarios", "unary,server-stream,client-stream,bidi", "comma-separated scenarios")
	flag.StringVar(&idle, "idle-conns", "1000,5000", "comma-separated numbers of idle client connections to measure memory with")
	flag.StringVar(&extra, "greeter-args", "", "extra space-separated flags for the greeter (default none: production defaults)")
	flag.StringVar(&out, "out", "docs/performance.md", "markdown file whose part after "+marker+" is replaced; empty prints only")
	flag.Parse()
	if cfg.Duration <= 0 || cfg.Duration > 5*time.Minute {
		return errors.New("-duration must be between 0 and 5m")
	}
	var err error
	if cfg.Concurrency, err = ints(conc); err != nil {
		return fmt.Errorf("-concurrency: %w", err)
	}
	if cfg.IdleConns, err = ints(idle); err != nil {
		return fmt.Errorf("-idle-conns: %w", err)
	}
	for _, s := range strings.Split(scen, ",") {
		cfg.Scenarios = append(cfg.Scenarios, load.Scenario(strings.TrimSpace(s)))
	}
	cfg.GreeterArgs = strings.Fields(extra)

	root, err := repo.Root()
	if err != nil {
		return err
	}
	md, err := bench.Run(context.Background(), root, cfg)
	if err != nil {
		return err
	}
	fmt.Print(md)
	if out == "" {
		return nil
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	head := ""
	if old, err := os.ReadFile(out); err == nil {
		if i := strings.Index(string(old), marker); i >= 0 {
			head = string(old[:i])
		}
	}
	if err := os.WriteFile(out, []byte(head+marker+"\n\n"+md), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "wrote", out)
	return nil
}

func ints(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 20000 {
			return nil, fmt.Errorf("%q is not a number from 1 to 20000", f)
		}
		out = append(out, n)
	}
	return out, nil
}
