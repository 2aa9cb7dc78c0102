// Command tracebench measures what OpenTelemetry tracing costs the greeter
// (see bench.RunTracing): server CPU per call, at a fixed rate of unary
// calls, with tracing off, and on at sample ratios 1.0 and 0.01, exporting
// to a real OTLP receiver on loopback. It prints a markdown table (docs/performance.md, "Tracing").
// From the test directory, or with make bench-tracing at the root:
//
//	go tool tracebench [-rate 1000] [-in-flight 64] [-duration 5s] [-runs 5]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/acme/greeter/test/bench"
	"github.com/acme/greeter/test/harness/repo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tracebench:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := bench.TracingConfig{Progress: os.Stderr}
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long each run drives each variant (at most 5m)")
	flag.IntVar(&cfg.Runs, "runs", 5, "runs per variant, 1 to 50; the variants take turns")
	flag.IntVar(&cfg.Rate, "rate", 1000, "unary calls per second sent to each variant, 1 to 100000: below what each sustains on this machine")
	flag.IntVar(&cfg.InFlight, "in-flight", 64, "most calls outstanding at once, 1 to 20000")
	flag.Parse()
	switch {
	case cfg.Duration <= 0 || cfg.Duration > 5*time.Minute:
		return errors.New("-duration must be between 0 and 5m")
	case cfg.Runs < 1 || cfg.Runs > 50:
		return errors.New("-runs must be from 1 to 50")
	case cfg.Rate < 1 || cfg.Rate > 100000:
		return errors.New("-rate must be from 1 to 100000")
	case cfg.InFlight < 1 || cfg.InFlight > 20000:
		return errors.New("-in-flight must be from 1 to 20000")
	}
	root, err := repo.Root()
	if err != nil {
		return err
	}
	md, err := bench.RunTracing(context.Background(), root, cfg)
	if err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}
