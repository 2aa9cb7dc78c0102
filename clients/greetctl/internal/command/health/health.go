// Package health implements "greetctl health [SERVICE]": a grpc.health.v1
// Check, or with --watch a Watch that prints every status change.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/greeter/clients/greetctl/internal/app"
	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/flagname"
)

// The names of the health command's own flags.
const (
	watchFlag  flagname.Name      = "watch"
	watchShort flagname.Shorthand = "w"
)

// flags are the health command's own flags.
type flags struct {
	Watch bool
}

// Bind registers the flags.
func (f *flags) Bind(fs *pflag.FlagSet) {
	fs.BoolVarP(&f.Watch, string(watchFlag), string(watchShort), false,
		"print the status and every change of it until Ctrl-C (no deadline unless "+flagname.Timeout.String()+" is set explicitly)")
}

// NewCommand returns the health command.
func NewCommand(c *app.Container) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "health [SERVICE]",
		Short: "Check the serving status of the server or of one SERVICE (grpc.health.v1)",
		Long: fmt.Sprintf(`Ask grpc.health.v1.Health for the serving status of SERVICE, by default ""
(the server as a whole). The greeter server also knows
"acme.greeter.v1.GreeterService" and "helloworld.Greeter".

Exits %d when the status is SERVING, %d when it is anything else, %d when the
server does not know SERVICE (NotFound). With %s, prints the status and
each change until Ctrl-C (exit status %d) or until the server ends the watch.`,
			exitcode.OK, exitcode.Unavailable, exitcode.Rejected, watchFlag, exitcode.Interrupted),
		Example: `  greetctl health
  greetctl health acme.greeter.v1.GreeterService -o json
  greetctl health --watch`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			service := ""
			if len(args) == 1 {
				service = args[0]
			}
			return run(cmd.Context(), c, f, service)
		},
	}
	f.Bind(cmd.Flags())
	return cmd
}

func run(ctx context.Context, c *app.Container, f *flags, service string) error {
	call, err := c.StartCall(ctx, f.Watch)
	if err != nil {
		return err
	}
	defer call.Close()
	ctx, conn, printer := call.Ctx, call.Conn, call.Printer
	client := healthpb.NewHealthClient(conn)
	req := &healthpb.HealthCheckRequest{Service: service}

	if !f.Watch {
		res, err := client.Check(ctx, req)
		if err != nil {
			return err
		}
		if err := printer.Print(res, res.GetStatus().String()); err != nil {
			return err
		}
		return notServing(service, res.GetStatus())
	}

	stream, err := client.Watch(ctx, req)
	if err != nil {
		return err
	}
	updates := 0
	var last healthpb.HealthCheckResponse_ServingStatus
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return notServing(service, last)
		}
		if err != nil {
			c.Notef("watch ended; status updates received: %d", updates)
			return err
		}
		updates++
		last = res.GetStatus()
		if err := printer.Print(res, last.String()); err != nil {
			return err
		}
	}
}

// notServing turns a status other than SERVING into exit status 4, so that
// "greetctl health" works as a readiness probe.
func notServing(service string, st healthpb.HealthCheckResponse_ServingStatus) error {
	if st == healthpb.HealthCheckResponse_SERVING {
		return nil
	}
	name := fmt.Sprintf("service %q", service)
	if service == "" {
		name = "server"
	}
	return exitcode.New(exitcode.Unavailable, fmt.Errorf("%s is %s", name, st))
}
