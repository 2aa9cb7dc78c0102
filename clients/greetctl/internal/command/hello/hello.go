// Package hello implements "greetctl hello NAME": one SayHello call.
package hello

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"

	"github.com/acme/greeter/clients/greetctl/internal/app"
	"github.com/acme/greeter/clients/greetctl/internal/flagname"
)

// NewCommand returns the hello command.
func NewCommand(c *app.Container) *cobra.Command {
	return &cobra.Command{
		Use:   "hello NAME",
		Short: "Greet NAME once (SayHello)",
		Long: fmt.Sprintf(`Greet NAME once with acme.greeter.v1.GreeterService/SayHello, or with the
classic helloworld.Greeter/SayHello when %s is given.

SayHello is idempotent: it is retried after UNAVAILABLE unless %s.`, flagname.Classic, flagname.NoRetry),
		Example: `  greetctl hello Ada
  greetctl hello Ada -o json
  greetctl --classic hello Ada`,
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
		res, err := helloworld.NewGreeterClient(conn).SayHello(ctx, &helloworld.HelloRequest{Name: name})
		if err != nil {
			return err
		}
		return printer.Print(res, res.GetMessage())
	}
	res, err := greeterv1.NewGreeterServiceClient(conn).SayHello(ctx, &greeterv1.SayHelloRequest{Name: name})
	if err != nil {
		return err
	}
	return printer.Print(res, res.GetMessage())
}
