// Command bareserver serves the greeter contracts on plain grpc-go with no
// production features (package bare): the ceiling `make bench` compares the
// real server with. It takes the greeter's address flags so the same
// harness starts both; --metrics-addr and --http-addr are accepted and ignored.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	"github.com/acme/greeter/test/bench/bare"
)

func main() {
	addr := flag.String("grpc-addr", "127.0.0.1:50051", "`address` to listen on")
	flag.String("metrics-addr", "", "ignored: the bare server has no metrics")
	flag.String("http-addr", "", "ignored: the bare server has no HTTP port")
	flag.Parse()

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareserver:", err)
		os.Exit(2)
	}
	s := grpc.NewServer()
	bare.Register(s)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		s.GracefulStop()
	}()
	slog.Info("serving", "grpc_addr", lis.Addr().String())
	if err := s.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "bareserver:", err)
		os.Exit(1)
	}
}
