// Package chat implements "greetctl chat": a bidirectional SayHelloChat
// call that sends each line of standard input as a name and prints each
// greeting as it arrives.
package chat

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/clients/greetctl/internal/app"
	"github.com/acme/greeter/clients/greetctl/internal/flagname"
	"github.com/acme/greeter/clients/greetctl/internal/names"
)

// NewCommand returns the chat command.
func NewCommand(c *app.Container) *cobra.Command {
	return &cobra.Command{
		Use:   "chat",
		Short: "Greet each name typed on standard input as it arrives (SayHelloChat)",
		Long: fmt.Sprintf(`Open acme.greeter.v1.GreeterService/SayHelloChat, send each line of standard
input as a name and print each greeting as soon as it arrives, until end of
input (Ctrl-D) and the server's last answer. Empty lines are skipped.

The chat has no deadline unless %s is set explicitly. Ctrl-C cancels
the call and reports how many greetings arrived.`, flagname.Timeout),
		Example: `  greetctl chat
  printf 'Ada\nGrace\n' | greetctl chat -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), c)
		},
	}
}

func run(ctx context.Context, c *app.Container) error {
	if err := c.RejectClassic("SayHelloChat"); err != nil {
		return err
	}
	call, err := c.StartCall(ctx, true)
	if err != nil {
		return err
	}
	defer call.Close()
	ctx, conn, printer := call.Ctx, call.Conn, call.Printer

	if names.Interactive(c.Stdin) {
		c.Notef("type a name per line; Ctrl-D ends the chat")
	}
	stream, err := greeterv1.NewGreeterServiceClient(conn).SayHelloChat(ctx)
	if err != nil {
		return err
	}
	// Names are sent on their own goroutine so that greetings print as they
	// arrive, not after the next line is typed. A send error means the
	// stream is over; Recv below reports its status.
	sendErr := make(chan error, 1)
	go func() {
		err := send(ctx, c, stream)
		if err != nil {
			// The server would wait for names that will never come.
			call.Cancel()
		}
		sendErr <- err
	}()
	received := 0
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// Stop the sender, which may be waiting for input, and prefer
			// its error: a failed read of standard input is why the call
			// was canceled.
			call.Cancel()
			if serr := <-sendErr; serr != nil && !errors.Is(serr, context.Canceled) && !errors.Is(serr, context.DeadlineExceeded) {
				return serr
			}
			if received > 0 || ctx.Err() != nil {
				c.Notef("chat ended early; greetings received: %d", received)
			}
			return err
		}
		received++
		if err := printer.Print(res, res.GetMessage()); err != nil {
			call.Cancel()
			<-sendErr
			return err
		}
	}
	return <-sendErr
}

// send streams the lines of standard input, then half-closes.
func send(ctx context.Context, c *app.Container, stream greeterv1.GreeterService_SayHelloChatClient) error {
	for name, err := range names.Lines(ctx, c.Stdin) {
		if err != nil {
			return err
		}
		if err := stream.Send(&greeterv1.SayHelloChatRequest{Name: name}); err != nil {
			// io.EOF: the server ended the call, and Recv has its status.
			return nil
		}
	}
	return stream.CloseSend()
}
