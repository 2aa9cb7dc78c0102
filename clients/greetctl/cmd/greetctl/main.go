// Command greetctl is the command-line client of the greeter service. See
// "greetctl --help" and the README for its commands, flags and exit
// statuses.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/acme/greeter/clients/greetctl/internal/cli"
)

func main() {
	// Ctrl-C cancels the running call instead of killing the process, so
	// that a stream can report how far it got.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
