// Package version implements "greetctl version": the client's build and,
// with --server, the version the server reports.
package version

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/acme/greeter/clients/greetctl/internal/app"
	"github.com/acme/greeter/clients/greetctl/internal/flagname"
	"github.com/acme/greeter/clients/greetctl/internal/version"
)

// serverFlag is the name of the version command's own flag.
const serverFlag flagname.Name = "server"

// flags are the version command's own flags.
type flags struct {
	Server bool
}

// Bind registers the flags.
func (f *flags) Bind(fs *pflag.FlagSet) {
	fs.BoolVar(&f.Server, string(serverFlag), false, "also ask the server for its version (the "+version.ServerHeader+" header of a health Check)")
}

// report is the output of the version command in JSON and YAML.
type report struct {
	Client version.Info `json:"client"`
	// Server is the greeter-server-version header, "<version> (<revision>)".
	Server string `json:"server,omitempty"`
}

// NewCommand returns the version command.
func NewCommand(c *app.Container) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of greetctl and, with " + serverFlag.String() + ", of the server",
		Long: fmt.Sprintf(`Print greetctl's module version and the VCS revision it was built from.

With %s, also make a grpc.health.v1 Check and print the server's
%s response header.`, serverFlag, version.ServerHeader),
		Example: `  greetctl version
  greetctl version --server -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), c, f)
		},
	}
	f.Bind(cmd.Flags())
	return cmd
}

func run(ctx context.Context, c *app.Container, f *flags) error {
	printer, err := c.Printer()
	if err != nil {
		return err
	}
	r := report{Client: c.Build}
	text := "client: greetctl " + c.Build.String()
	if f.Server {
		if r.Server, err = serverVersion(ctx, c); err != nil {
			return err
		}
		text += "\nserver: " + r.Server
	}
	return printer.Print(r, text)
}

func serverVersion(ctx context.Context, c *app.Container) (string, error) {
	ctx, cancel, err := c.CallContext(ctx, false)
	if err != nil {
		return "", err
	}
	defer cancel()
	conn, err := c.Dial()
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var header metadata.MD
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header)); err != nil {
		return "", err
	}
	v := header.Get(version.ServerHeader)
	if len(v) == 0 {
		return "unknown (the server sent no " + version.ServerHeader + " header)", nil
	}
	return v[0], nil
}
