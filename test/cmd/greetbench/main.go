// Command greetbench is the load benchmark behind `make bench`: the greeter
// against a bare grpc-go server, server CPU per request measured from
// outside, with the server and the load generators on CPUs of their own,
// then what well-behaved slow streams and hostile clients do to both (see
// package bench). Run it in the test module (or `make bench` at the root):
//
//	go tool greetbench [-duration 3s] [-rounds 2] [-concurrency 1,16,64,256] [-scenarios unary,...] [-generators greetload,ghz] [-capacity 10000] [-overload stuck-one,...] [-out docs/performance.md]
//
// The defaults measure everything, in about 20 minutes on a 2-core
// machine. Each table is measured when its flag names something: empty
// leaves it out, so that
//
//	go tool greetbench -scenarios "" -http-concurrency "" -throughput "" -capacity "" -overload crowd
//
// measures the overload table's crowd alone. -out is relative to the
// repository root.
//
// The report goes after the line "<!-- greetbench -->" of -out, so the
// hand-written part above it stays. A run of every table replaces all that
// follows the line; a run of some replaces only their sections, each
// between markers of its own, and leaves the others as they were.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/acme/greeter/test/bench"
	"github.com/acme/greeter/test/bench/load"
	"github.com/acme/greeter/test/harness/repo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "greetbench:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := bench.Config{Progress: os.Stderr}
	var conc, scen, gens, through, idle, capacity, overload, extra, out, httpConc, httpScen string
	flag.DurationVar(&cfg.Duration, "duration", 3*time.Second, "how long each measured run drives one server (at most 5m)")
	flag.DurationVar(&cfg.Warmup, "warmup", 500*time.Millisecond, "how long each server is driven, unmeasured, before each measured run")
	flag.IntVar(&cfg.Rounds, "rounds", 2, "how many times each row alternates greeter and bare (1 to 20)")
	flag.StringVar(&conc, "concurrency", "1,16,64,256", "comma-separated numbers of RPCs in flight")
	flag.StringVar(&scen, "scenarios", joined(load.Scenarios), "comma-separated scenarios of the CPU rows (with idle memory); empty for none")
	flag.StringVar(&gens, "generators", joined(bench.Generators), "comma-separated load generators")
	flag.StringVar(&through, "throughput", "64,256", "comma-separated numbers of streams in flight for the unpinned streaming throughput rows; empty for none")
	flag.StringVar(&idle, "idle-conns", "100,1000", "comma-separated numbers of idle client connections to measure memory with (at most the greeter's --max-connections-per-client: 4,096 for the benchmark's 2 GiB plan); empty for idle RSS only")
	flag.StringVar(&capacity, "capacity", "10000", "comma-separated numbers of well-behaved slow streams held at once for the capacity rows, against the greeter at its default 256 MiB plan; empty for none")
	flag.StringVar(&overload, "overload", joined(bench.Attacks), "comma-separated attacks of the overload table, against the greeter at its default 256 MiB plan and bare, each at full counts (about 6 minutes a round for all); empty for none")
	flag.StringVar(&httpConc, "http-concurrency", "1,16,64", "comma-separated numbers of calls in flight for the HTTP port's rows (h2load: greeter vs bare connect-go); empty for none")
	flag.StringVar(&httpScen, "http-scenarios", strings.Join(bench.HTTPScenarioKeys(), ","), "comma-separated HTTP rows")
	flag.StringVar(&extra, "greeter-args", "", "extra space-separated flags for the greeter (default none: production defaults)")
	flag.StringVar(&cfg.GreeterBin, "greeter-bin", "", "greeter `binary` to measure instead of building services/greeter (an earlier build, to compare)")
	flag.StringVar(&out, "out", "docs/performance.md", "markdown file whose part after "+bench.Marker+" is updated; empty prints only")
	flag.Parse()
	if cfg.Duration <= 0 || cfg.Duration > 5*time.Minute {
		return errors.New("-duration must be between 0 and 5m")
	}
	if cfg.Warmup < 0 || cfg.Warmup > time.Minute {
		return errors.New("-warmup must be between 0 and 1m")
	}
	if cfg.Rounds < 1 || cfg.Rounds > 20 {
		return errors.New("-rounds must be from 1 to 20")
	}
	var err error
	if cfg.Concurrency, err = ints(conc); err != nil {
		return fmt.Errorf("-concurrency: %w", err)
	}
	if strings.TrimSpace(through) != "" {
		if cfg.Throughput, err = ints(through); err != nil {
			return fmt.Errorf("-throughput: %w", err)
		}
	}
	if strings.TrimSpace(httpConc) != "" {
		if cfg.HTTPConcurrency, err = ints(httpConc); err != nil {
			return fmt.Errorf("-http-concurrency: %w", err)
		}
	}
	for _, s := range strings.Split(httpScen, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.HTTPScenarios = append(cfg.HTTPScenarios, s)
		}
	}
	for _, g := range strings.Split(gens, ",") {
		cfg.Generators = append(cfg.Generators, bench.Generator(strings.TrimSpace(g)))
	}
	if strings.TrimSpace(idle) != "" {
		if cfg.IdleConns, err = ints(idle); err != nil {
			return fmt.Errorf("-idle-conns: %w", err)
		}
	}
	if strings.TrimSpace(capacity) != "" {
		if cfg.Capacity, err = ints(capacity); err != nil {
			return fmt.Errorf("-capacity: %w", err)
		}
	}
	for _, s := range strings.Split(scen, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Scenarios = append(cfg.Scenarios, load.Scenario(s))
		}
	}
	for _, a := range strings.Split(overload, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Overload = append(cfg.Overload, bench.Attack(a))
		}
	}
	cfg.GreeterArgs = strings.Fields(extra)

	root, err := repo.Root()
	if err != nil {
		return err
	}
	rep, err := bench.Run(context.Background(), root, cfg)
	if err != nil {
		return err
	}
	fmt.Print(rep.Markdown())
	if out == "" {
		return nil
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	old, err := os.ReadFile(out)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(out, []byte(rep.Update(string(old))), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "wrote", out)
	return nil
}

func joined[T ~string](list []T) string {
	s := make([]string, len(list))
	for i, x := range list {
		s[i] = string(x)
	}
	return strings.Join(s, ",")
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
