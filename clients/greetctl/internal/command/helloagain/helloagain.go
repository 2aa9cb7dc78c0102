// Package helloagain implements "greetctl hello-again NAME": one SayHelloAgain
// call.
package helloagain

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"

	"github.com/acme/greeter/clients/greetctl/internal/app"
	"github.com/acme/greeter/clients/greetctl/internal/flagname"
)

// NewCommand returns the hello-again command.
func NewCommand(c *app.Container) *cobra.Command {
	return &cobra.Command{
		Use:   "hello-again NAME",
		Short: "Greet NAME again (SayHelloAgain)",
		Long: fmt.Sprintf(`Greet NAME again with acme.greeter.v1.GreeterService/SayHelloAgain, or with the
classic helloworld.Greeter/SayHelloAgain when %s is given.

SayHelloAgain is idempotent: it is retried after UNAVAILABLE unless %s.`, flagname.Classic, flagname.NoRetry),
		Example: `  greetctl hello-again Ada
  greetctl hello-again Ada -o json
  greetctl --classic hello-again Ada`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), c, args[0])
		},
	}
}

func run(ctx context.Context, c *app.Container, name string) error {
	call, err := c.StartCall(ctx, false)
	if err != nil {
		return err
	}
	defer call.Close()
	ctx, conn, printer := call.Ctx, call.Conn, call.Printer
	if c.Globals.Classic {
		res, err := helloworld.NewGreeterClient(conn).SayHelloAgain(ctx, &helloworld.HelloRequest{Name: name})
		if err != nil {
			return err
		}
		return printer.Print(res, res.GetMessage())
	}
	res, err := greeterv1.NewGreeterServiceClient(conn).SayHelloAgain(ctx, &greeterv1.SayHelloAgainRequest{Name: name})
	if err != nil {
		return err
	}
	return printer.Print(res, res.GetMessage())
}
