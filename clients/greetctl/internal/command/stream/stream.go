// Package stream implements "greetctl stream NAME": a server-streaming
// SayHelloStream call that prints each greeting as it arrives.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/durationpb"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/clients/greetctl/internal/app"
	"github.com/acme/greeter/clients/greetctl/internal/flagname"
)

// The names of the stream command's own flags.
const (
	countFlag    flagname.Name      = "count"
	countShort   flagname.Shorthand = "n"
	intervalFlag flagname.Name      = "interval"
)

// flags are the stream command's own flags.
type flags struct {
	Count    int32
	Interval time.Duration
}

// Bind registers the flags.
func (f *flags) Bind(fs *pflag.FlagSet) {
	fs.Int32VarP(&f.Count, string(countFlag), string(countShort), 3, "number of greetings, 1 to 10000")
	fs.DurationVar(&f.Interval, string(intervalFlag), 0, "pause between greetings, 0 to 10s, e.g. 250ms (default no pause)")
}

// NewCommand returns the stream command.
func NewCommand(c *app.Container) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "stream NAME",
		Short: "Greet NAME " + countFlag.String() + " times, as the greetings arrive (SayHelloStream)",
		Long: fmt.Sprintf(`Greet NAME %s times with acme.greeter.v1.GreeterService/SayHelloStream,
printing each greeting as it arrives.

%s is the deadline of the whole stream: raise it, or set it to 0, for
long streams. Ctrl-C cancels the call and reports how many greetings arrived.`, countFlag, flagname.Timeout),
		Example: `  greetctl stream Ada --count 5 --interval 1s
  greetctl stream Ada -n 10000 -o json | jq -r .message`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), c, f, args[0])
		},
	}
	f.Bind(cmd.Flags())
	return cmd
}

func run(ctx context.Context, c *app.Container, f *flags, name string) error {
	if err := c.RejectClassic("SayHelloStream"); err != nil {
		return err
	}
	call, err := c.StartCall(ctx, false)
	if err != nil {
		return err
	}
	defer call.Close()
	ctx, conn, printer := call.Ctx, call.Conn, call.Printer

	req := &greeterv1.SayHelloStreamRequest{Name: name, Count: f.Count}
	if f.Interval != 0 {
		req.Interval = durationpb.New(f.Interval)
	}
	stream, err := greeterv1.NewGreeterServiceClient(conn).SayHelloStream(ctx, req)
	if err != nil {
		return err
	}
	received := 0
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if received > 0 || ctx.Err() != nil {
				c.Notef("stream ended early: received %d of %d greetings", received, f.Count)
			}
			return err
		}
		received++
		if err := printer.Print(res, fmt.Sprintf("%d %s", res.GetSequence(), res.GetMessage())); err != nil {
			return err
		}
	}
}
