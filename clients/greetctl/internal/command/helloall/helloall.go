// Package helloall implements "greetctl hello-all [NAME...]": a
// client-streaming SayHelloToAll call that sends each name, from the
// arguments or standard input, and prints the one reply.
package helloall

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/clients/greetctl/internal/app"
	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/names"
)

// NewCommand returns the hello-all command.
func NewCommand(c *app.Container) *cobra.Command {
	return &cobra.Command{
		Use:   "hello-all [NAME...|-]",
		Short: "Greet every NAME in one reply (SayHelloToAll)",
		Long: fmt.Sprintf(`Send each NAME to acme.greeter.v1.GreeterService/SayHelloToAll and print the
one greeting the server answers with.

With no NAME, or with the single NAME "-", names are read from standard input,
one per line, and sent as they are read; empty lines are skipped. A call with
no names at all is rejected by the server (exit status %d).`, exitcode.Rejected),
		Example: `  greetctl hello-all Ada Grace Linus
  printf 'Ada\nGrace\n' | greetctl hello-all
  greetctl hello-all - < names.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), c, args)
		},
	}
}

func run(ctx context.Context, c *app.Container, args []string) error {
	if err := c.RejectClassic("SayHelloToAll"); err != nil {
		return err
	}
	call, err := c.StartCall(ctx, false)
	if err != nil {
		return err
	}
	defer call.Close()
	ctx, conn, printer := call.Ctx, call.Conn, call.Printer

	stream, err := greeterv1.NewGreeterServiceClient(conn).SayHelloToAll(ctx)
	if err != nil {
		return err
	}
	if names.ReadsStdin(args) && names.Interactive(c.Stdin) {
		c.Notef("reading names, one per line; end with Ctrl-D")
	}
	sent := 0
	for name, err := range names.FromArgs(ctx, args, c.Stdin) {
		if err != nil {
			return err
		}
		if err := stream.Send(&greeterv1.SayHelloToAllRequest{Name: name}); err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the call; its status says why.
				break
			}
			if sent > 0 || ctx.Err() != nil {
				c.Notef("hello-all failed; names sent: %d", sent)
			}
			return err
		}
		sent++
	}
	res, err := stream.CloseAndRecv()
	if err != nil {
		if sent > 0 || ctx.Err() != nil {
			c.Notef("hello-all failed; names sent: %d", sent)
		}
		return err
	}
	unit := "names"
	if res.GetCount() == 1 {
		unit = "name"
	}
	return printer.Print(res, fmt.Sprintf("%s (%d %s)", res.GetMessage(), res.GetCount(), unit))
}
