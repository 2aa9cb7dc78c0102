// Package cli assembles the greetctl commands and runs one command line.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"github.com/acme/greeter/clients/greetctl/internal/app"
	"github.com/acme/greeter/clients/greetctl/internal/command/chat"
	"github.com/acme/greeter/clients/greetctl/internal/command/health"
	"github.com/acme/greeter/clients/greetctl/internal/command/hello"
	"github.com/acme/greeter/clients/greetctl/internal/command/helloagain"
	"github.com/acme/greeter/clients/greetctl/internal/command/helloall"
	"github.com/acme/greeter/clients/greetctl/internal/command/stream"
	versioncmd "github.com/acme/greeter/clients/greetctl/internal/command/version"
	"github.com/acme/greeter/clients/greetctl/internal/config"
	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/flagname"
	"github.com/acme/greeter/clients/greetctl/internal/rpcerror"
	"github.com/acme/greeter/clients/greetctl/internal/version"
)

// Option changes how Main runs, for tests.
type Option func(*settings)

type settings struct {
	lookupEnv    func(string) (string, bool)
	build        version.Info
	dialOptions  []grpc.DialOption
	spanExporter sdktrace.SpanExporter
}

// WithEnv replaces the process environment with env.
func WithEnv(env map[string]string) Option {
	return func(s *settings) {
		s.lookupEnv = func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		}
	}
}

// WithBuild replaces the build information of the running binary.
func WithBuild(info version.Info) Option {
	return func(s *settings) { s.build = info }
}

// WithDialOptions adds options to every connection, e.g. a dialer for an
// in-memory listener.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOptions = append(s.dialOptions, opts...) }
}

// WithSpanExporter turns tracing on, exporting to e, whatever the OTEL_*
// environment says.
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(s *settings) { s.spanExporter = e }
}

// traceFlushTimeout bounds how long greetctl waits, once its command has
// finished, for its spans to be exported.
const traceFlushTimeout = 2 * time.Second

// Main runs greetctl with args (without the program name) and returns its
// exit status. Canceling ctx, as Ctrl-C does, cancels the running call.
// Errors go to stderr as one or a few lines, never as a stack trace.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, opts ...Option) (code int) {
	defer func() {
		// A bug must not greet the user with a goroutine dump.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "greetctl: internal error: %v\nPlease report it with the command line that caused it.\n", r)
			code = exitcode.Failure
		}
	}()
	s := settings{lookupEnv: os.LookupEnv, build: version.Read()}
	for _, o := range opts {
		o(&s)
	}
	c := &app.Container{
		Stdin:        stdin,
		Stdout:       stdout,
		Stderr:       stderr,
		Build:        s.build,
		DialOptions:  s.dialOptions,
		SpanExporter: s.spanExporter,
		LookupEnv:    s.lookupEnv,
	}
	defer c.FlushTraces(traceFlushTimeout)
	root := newRoot(c, s.lookupEnv)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitcode.OK
	}
	var ran *runError
	if errors.As(err, &ran) {
		err = ran.err
	} else {
		// Cobra failed before running the command: unknown command or
		// flag, wrong number of arguments.
		err = exitcode.New(exitcode.Usage, err)
	}
	return report(ctx, stderr, cmd, err)
}

// report prints err for people and returns the exit status.
func report(ctx context.Context, stderr io.Writer, cmd *cobra.Command, err error) int {
	prefix := "greetctl"
	if cmd != nil {
		prefix = cmd.CommandPath()
	}
	if ctx.Err() != nil {
		// Ctrl-C: whatever failed, failed because the user asked.
		fmt.Fprintf(stderr, "%s: interrupted\n", prefix)
		return exitcode.Interrupted
	}
	if st := rpcerror.Status(err); st != nil {
		if werr := rpcerror.Write(stderr, prefix, st); werr != nil {
			return exitcode.Failure
		}
		return exitcode.FromError(err)
	}
	fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
	code := exitcode.FromError(err)
	if code == exitcode.Usage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// runError marks errors returned by a command's RunE, to tell them from
// cobra's own usage errors.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

func newRoot(c *app.Container, lookupEnv func(string) (string, bool)) *cobra.Command {
	root := &cobra.Command{
		Use:   "greetctl",
		Short: "Command-line client of the greeter service",
		Long: fmt.Sprintf(`greetctl calls the greeter service, acme.greeter.v1.GreeterService, or with
%s the classic helloworld.Greeter.

Every flag can also be set with a %s<FLAG> environment variable
(%s, %s, ...) or a key of the YAML config file
(%s, default $XDG_CONFIG_HOME/greetctl/config.yaml if it exists). A flag
wins over the environment, the environment over the config file.

Tracing (OpenTelemetry) is off unless OTEL_TRACES_EXPORTER (otlp, console) or
OTEL_EXPORTER_OTLP_ENDPOINT is set; then each command is a span, every call a
child span, and the server continues the trace. %s (or -H
traceparent) continues a caller's trace.

`, flagname.Classic, config.EnvPrefix, config.EnvName(string(flagname.Addr)), config.EnvName(string(flagname.UserAgent)),
			flagname.Config, flagname.Traceparent) + exitcode.Help(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return mark(configure(cmd, c, lookupEnv))
		},
	}
	c.Globals.Bind(root.PersistentFlags())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return exitcode.New(exitcode.Usage, err)
	})
	for _, sub := range []*cobra.Command{
		hello.NewCommand(c),
		helloagain.NewCommand(c),
		stream.NewCommand(c),
		helloall.NewCommand(c),
		chat.NewCommand(c),
		health.NewCommand(c),
		versioncmd.NewCommand(c),
	} {
		sub.Long += fmt.Sprintf("\n\nExit status: %d on success, %d for usage errors, %d to %d by gRPC status\n"+
			"class, %d when interrupted; see \"greetctl --help\".",
			exitcode.OK, exitcode.Usage, exitcode.Rejected, exitcode.ServerError, exitcode.Interrupted)
		run := sub.RunE
		sub.RunE = func(cmd *cobra.Command, args []string) error {
			ctx, end, err := c.StartTrace(cmd.Context(), cmd.CommandPath())
			if err != nil {
				return mark(err)
			}
			cmd.SetContext(ctx)
			err = run(cmd, args)
			end(err)
			return mark(err)
		}
		root.AddCommand(sub)
	}
	return root
}

func mark(err error) error {
	if err == nil {
		return nil
	}
	return &runError{err: err}
}

// configure layers the environment and config file under the flags given.
func configure(cmd *cobra.Command, c *app.Container, lookupEnv func(string) (string, bool)) error {
	flags := cmd.Flags()
	src := config.Source{
		LookupEnv: lookupEnv,
		Path:      c.Globals.Config,
		Required:  c.Globals.Config != "",
		Known:     knownFlags(cmd.Root()),
	}
	if !src.Required {
		if p, ok := lookupEnv(config.EnvName(string(flagname.Config))); ok && p != "" {
			src.Path, src.Required = p, true
		} else {
			src.Path = config.DefaultPath(lookupEnv)
		}
	}
	if err := config.Apply(flags, src); err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	c.TimeoutSet = flags.Changed(string(flagname.Timeout))
	return nil
}

// knownFlags reports whether name is a long flag of any command; config
// file keys must be.
func knownFlags(root *cobra.Command) func(string) bool {
	known := map[string]bool{}
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		add := func(f *pflag.Flag) { known[f.Name] = true }
		cmd.PersistentFlags().VisitAll(add)
		cmd.LocalNonPersistentFlags().VisitAll(add)
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
	delete(known, string(flagname.Config))
	delete(known, "help")
	return func(name string) bool { return known[name] }
}
