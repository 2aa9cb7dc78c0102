// Command greetload drives a running greeter (or any GreeterService) with
// a fixed number of RPCs in flight for a fixed time and prints throughput,
// latency and failures by code: the load generator of `make bench`
// (package load), pointed at an address of your choosing. Plaintext only;
// loopback or a private test network only.
//
//	go tool greetload -addr 127.0.0.1:50051 -scenario unary -concurrency 64 -duration 10s
//
// -warmup drives the server first without measuring (see load.Options).
// -json prints the result as one JSON object (load.Result: durations in
// nanoseconds) instead of the summary line, after a line "measuring" when
// the measured window begins and "measured" when it ends: greetbench,
// which runs it as a process of its own, reads the server's CPU time then.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/acme/greeter/test/bench/load"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "server `host:port`")
	scenario := flag.String("scenario", "unary", "unary, server-stream, client-stream or bidi")
	concurrency := flag.Int("concurrency", 16, "RPCs in flight")
	conns := flag.Int("connections", 4, "client connections the RPCs are spread over")
	duration := flag.Duration("duration", 10*time.Second, "how long to measure, after the warm-up (at most 1h)")
	warmup := flag.Duration("warmup", 0, "how long to drive the server first, unmeasured (at most 1h)")
	maxOps := flag.Int64("max-ops", 0, "stop after this many operations too; 0: no limit")
	streamLen := flag.Int("stream-length", 1000, "messages per streaming call")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()
	if *duration <= 0 || *duration > time.Hour || *warmup < 0 || *warmup > time.Hour || *concurrency < 1 || *conns < 1 {
		fmt.Fprintln(os.Stderr, "greetload: need 0 < -duration ≤ 1h, 0 ≤ -warmup ≤ 1h, -concurrency ≥ 1, -connections ≥ 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	clients, closeAll, err := load.Dial(*addr, *conns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "greetload:", err)
		os.Exit(2)
	}
	defer closeAll()
	opts := load.Options{
		Scenario: load.Scenario(*scenario), Concurrency: *concurrency,
		Duration: *duration, Warmup: *warmup, MaxOps: *maxOps, StreamLength: *streamLen,
	}
	if *asJSON {
		opts.OnMeasure = func(measuring bool) {
			if measuring {
				fmt.Println(load.MeasuringLine)
			} else {
				fmt.Println(load.MeasuredLine)
			}
		}
	}
	res, err := load.Run(ctx, clients, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "greetload:", err)
		os.Exit(2)
	}
	if *asJSON {
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			fmt.Fprintln(os.Stderr, "greetload:", err)
			os.Exit(2)
		}
	} else {
		fmt.Printf("%s, %d in flight, %s: %d ops, %.0f ops/s, p50 %v, p99 %v, failed %d %v\n",
			res.Scenario, res.Concurrency, res.Elapsed.Round(time.Millisecond), res.Ops, res.Rate(), res.P50, res.P99, res.Failed(), res.Errors)
	}
	if res.Failed() > 0 {
		os.Exit(1)
	}
}
