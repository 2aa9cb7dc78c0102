// Package app holds what every greetctl command runs with: standard I/O,
// the global flags and the connection they describe.
package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/acme/greeter/clients/greetctl/internal/dial"
	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/flagname"
	"github.com/acme/greeter/clients/greetctl/internal/header"
	"github.com/acme/greeter/clients/greetctl/internal/output"
	"github.com/acme/greeter/clients/greetctl/internal/tracing"
	"github.com/acme/greeter/clients/greetctl/internal/verbose"
	"github.com/acme/greeter/clients/greetctl/internal/version"
)

// DefaultTimeout is the default of --timeout.
const DefaultTimeout = 10 * time.Second

// Globals are the flags every command accepts.
type Globals struct {
	Config             string
	Addr               string
	Timeout            time.Duration
	Headers            []string
	UserAgent          string
	NoRetry            bool
	WaitForReady       bool
	Plaintext          bool
	TLS                bool
	CA                 string
	Cert               string
	Key                string
	ServerName         string
	InsecureSkipVerify bool
	Output             string
	Verbose            bool
	Classic            bool
	Traceparent        string
}

// Bind registers the global flags on flags, the root's persistent flags.
func (g *Globals) Bind(flags *pflag.FlagSet) {
	flags.StringVar(&g.Config, string(flagname.Config), "", "YAML config file whose keys are long flag names (default $XDG_CONFIG_HOME/greetctl/config.yaml, if it exists)")
	flags.StringVar(&g.Addr, string(flagname.Addr), "localhost:50051", "server address: "+dial.AddrFormats+"; always load-balanced round_robin")
	flags.DurationVar(&g.Timeout, string(flagname.Timeout), DefaultTimeout, "deadline of each call, e.g. 500ms, 30s, 2m; for streams the deadline of the whole stream; 0 means none.\n"+
		"chat and health --watch run until EOF or Ctrl-C unless "+flagname.Timeout.String()+" is set explicitly")
	flags.StringArrayVarP(&g.Headers, string(flagname.Header), string(flagname.HeaderShort), nil, "request metadata "+header.Format+"; repeatable")
	flags.StringVar(&g.UserAgent, string(flagname.UserAgent), "", `user agent sent to the server (default "greetctl/<version>")`)
	flags.BoolVar(&g.NoRetry, string(flagname.NoRetry), false, "do not retry SayHello, SayHelloAgain and health Check after UNAVAILABLE (by default up to 4 attempts)")
	flags.BoolVar(&g.WaitForReady, string(flagname.WaitForReady), false, "when the server cannot be reached, wait for it (up to "+flagname.Timeout.String()+") instead of failing at once with UNAVAILABLE, e.g. while it restarts")
	flags.BoolVar(&g.Plaintext, string(flagname.Plaintext), false, "send in clear text, without TLS (the default only for localhost, 127.0.0.0/8, ::1 and unix sockets)")
	flags.BoolVar(&g.TLS, string(flagname.TLS), false, fmt.Sprintf("use TLS even for a loopback address (implied by %s, %s, %s, %s, %s)",
		flagname.CA, flagname.Cert, flagname.Key, flagname.ServerName, flagname.InsecureSkipVerify))
	flags.StringVar(&g.CA, string(flagname.CA), "", "PEM file of the certificate authorities that verify the server (default the system roots)")
	flags.StringVar(&g.Cert, string(flagname.Cert), "", "PEM client certificate for mutual TLS; needs "+flagname.Key.String())
	flags.StringVar(&g.Key, string(flagname.Key), "", "PEM private key of "+flagname.Cert.String())
	flags.StringVar(&g.ServerName, string(flagname.ServerName), "", "name to verify the server certificate against (default the host of "+flagname.Addr.String()+")")
	flags.BoolVar(&g.InsecureSkipVerify, string(flagname.InsecureSkipVerify), false, "accept any server certificate: INSECURE, for testing only")
	flags.StringVarP(&g.Output, string(flagname.Output), string(flagname.OutputShort), string(output.Text), "output format: "+output.Formats+" (json: one protojson object per line)")
	flags.BoolVarP(&g.Verbose, string(flagname.Verbose), string(flagname.VerboseShort), false, "report headers, trailers, status and timing of each call on standard error")
	flags.BoolVar(&g.Classic, string(flagname.Classic), false, "hello and hello-again call the classic helloworld.Greeter instead of acme.greeter.v1.GreeterService")
	flags.StringVar(&g.Traceparent, string(flagname.Traceparent), "", "continue the caller's trace, given as a W3C traceparent (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>); "+
		"the same as "+flagname.HeaderShort.String()+" 'traceparent: ...'. Sent to the server even when OTEL_* does not turn tracing on")
}

// Container is what a command runs with.
type Container struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Globals        Globals
	// TimeoutSet reports that --timeout was given (flag, environment or
	// config file) rather than defaulted.
	TimeoutSet bool
	// Build is this binary's version.
	Build version.Info
	// DialOptions are added to every connection; tests use it for
	// in-memory listeners.
	DialOptions []grpc.DialOption
	// SpanExporter, if set, turns tracing on with it instead of the
	// exporter the OTEL_* environment describes; for tests.
	SpanExporter sdktrace.SpanExporter
	// LookupEnv reads the environment that decides whether tracing is on.
	LookupEnv func(string) (string, bool)

	tracing *tracing.Tracing
	// -H's metadata, parsed once (headers).
	headersParsed bool
	parsedHeaders metadata.MD
	headersErr    error
}

// Printer returns a printer of -o to standard output.
func (c *Container) Printer() (*output.Printer, error) {
	format, err := output.ParseFormat(c.Globals.Output)
	if err != nil {
		return nil, exitcode.Usagef("%s: %w", flagname.OutputShort, err)
	}
	return output.New(c.Stdout, format), nil
}

// Dial opens the connection the global flags describe.
func (c *Container) Dial() (*grpc.ClientConn, error) {
	g := c.Globals
	ua := g.UserAgent
	if ua == "" {
		ua = c.Build.UserAgent()
	}
	opts := append([]grpc.DialOption(nil), c.DialOptions...)
	opts = append(opts, c.tracing.DialOptions()...)
	if g.Verbose {
		opts = append(opts, verbose.New(c.Stderr).DialOptions()...)
	}
	return dial.New(dial.Options{
		Addr:               g.Addr,
		Plaintext:          g.Plaintext,
		TLS:                g.TLS,
		CA:                 g.CA,
		Cert:               g.Cert,
		Key:                g.Key,
		ServerName:         g.ServerName,
		InsecureSkipVerify: g.InsecureSkipVerify,
		UserAgent:          ua,
		NoRetry:            g.NoRetry,
		WaitForReady:       g.WaitForReady,
		Warnings:           c.Stderr,
		DialOptions:        opts,
	})
}

// CallContext returns the context of one call: ctx with the -H metadata
// and the --timeout deadline. OpenEnded calls (chat, health --watch) only
// get a deadline if the user asked for one.
func (c *Container) CallContext(ctx context.Context, openEnded bool) (context.Context, context.CancelFunc, error) {
	md, err := c.headers()
	if err != nil {
		return nil, nil, err
	}
	md = md.Copy()
	c.tracing.Outgoing(md, c.Globals.Traceparent)
	if len(md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	timeout := c.Globals.Timeout
	if timeout < 0 {
		return nil, nil, exitcode.Usagef("%s %s: must not be negative", flagname.Timeout, timeout)
	}
	if timeout == 0 || (openEnded && !c.TimeoutSet) {
		ctx, cancel := context.WithCancel(ctx)
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return ctx, cancel, nil
}

// StartTrace starts the span of the command called name (its command
// path, "greetctl hello") when the OTEL_* environment configures tracing,
// child of the caller's span given by --traceparent or -H traceparent. It
// checks both, and the OTEL_* settings, before any call is made: a
// malformed traceparent, or both at once, is a usage error. With -v it
// prints the trace id. end records the command's outcome on the span and
// ends it.
func (c *Container) StartTrace(ctx context.Context, name string) (_ context.Context, end func(error), err error) {
	md, err := c.headers()
	if err != nil {
		return nil, nil, err
	}
	parent, err := tracing.Parent(c.Globals.Traceparent, md)
	if err != nil {
		return nil, nil, err
	}
	if c.tracing == nil {
		c.tracing, err = tracing.New(ctx, tracing.WithLookupEnv(c.LookupEnv), tracing.WithWarnings(c.Stderr),
			tracing.WithServiceVersion(c.Build.Version), tracing.WithSpanExporter(c.SpanExporter))
		if err != nil {
			return nil, nil, exitcode.New(exitcode.Usage, err)
		}
	}
	ctx, span := c.tracing.Start(ctx, name, parent)
	if sc := span.SpanContext(); c.Globals.Verbose && sc.IsValid() {
		verbose.Trace(c.Stderr, sc.TraceID().String())
	}
	return ctx, func(err error) { tracing.End(span, err) }, nil
}

// headers is -H's metadata, parsed once: the trace parent and every call
// read it. Callers that change it change a copy.
func (c *Container) headers() (metadata.MD, error) {
	if !c.headersParsed {
		c.headersParsed = true
		c.parsedHeaders, c.headersErr = header.Parse(c.Globals.Headers)
		if c.headersErr != nil {
			c.headersErr = exitcode.Usagef("%s: %w", flagname.HeaderShort, c.headersErr)
		}
	}
	return c.parsedHeaders, c.headersErr
}

// FlushTraces exports the spans of the command, waiting at most timeout:
// the command has finished, and a collector that is down must not hold
// the terminal for long.
func (c *Container) FlushTraces(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c.tracing.Shutdown(ctx)
}

// Call is what every RPC command starts from: its printer, its call
// context and its connection.
type Call struct {
	// Ctx carries the -H metadata and the --timeout deadline.
	Ctx context.Context
	// Conn is the connection the global flags describe.
	Conn *grpc.ClientConn
	// Printer prints -o to standard output.
	Printer *output.Printer

	cancel context.CancelFunc
}

// Cancel cancels the call context, ending the call's RPCs.
func (c *Call) Cancel() { c.cancel() }

// Close cancels the call context and closes the connection.
func (c *Call) Close() {
	c.cancel()
	c.Conn.Close()
}

// StartCall checks -o, -H and --timeout, then dials; openEnded is as for
// CallContext. Usage errors come before any connection is made.
func (c *Container) StartCall(ctx context.Context, openEnded bool) (*Call, error) {
	printer, err := c.Printer()
	if err != nil {
		return nil, err
	}
	ctx, cancel, err := c.CallContext(ctx, openEnded)
	if err != nil {
		return nil, err
	}
	conn, err := c.Dial()
	if err != nil {
		cancel()
		return nil, err
	}
	return &Call{Ctx: ctx, Conn: conn, Printer: printer, cancel: cancel}, nil
}

// Notef writes a note for the user to standard error, e.g. how many
// messages a stream delivered before it failed.
func (c *Container) Notef(format string, args ...any) {
	fmt.Fprintf(c.Stderr, "greetctl: "+format+"\n", args...)
}

// RejectClassic fails a streaming command under --classic: the frozen
// helloworld.Greeter contract has only the unary SayHello and SayHelloAgain.
func (c *Container) RejectClassic(method string) error {
	if !c.Globals.Classic {
		return nil
	}
	return exitcode.Usagef("%s: the classic helloworld.Greeter has no streaming methods, only SayHello and SayHelloAgain; "+
		"drop %s to call acme.greeter.v1.GreeterService/%s", flagname.Classic, flagname.Classic, method)
}
