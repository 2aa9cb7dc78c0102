// Command bareserver serves the greeter contracts on plain grpc-go with no
// production features (package bare): the ceiling `make bench` compares the
// real server with. It takes the greeter's address flags so the same
// harness starts both; --metrics-addr is accepted and ignored. --http-addr
// serves the bare connect-go ceiling of the greeter's HTTP port
// (bare.ConnectHandler).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	"github.com/acme/greeter/test/bench/bare"
)

func main() {
	addr := flag.String("grpc-addr", "127.0.0.1:50051", "`address` to listen on")
	flag.String("metrics-addr", "", "ignored: the bare server has no metrics")
	httpAddr := flag.String("http-addr", "", "`address` of a bare connect-go server of the HTTP port's benchmark methods (HTTP/1.1 and h2c); empty for none")
	pprofAddr := flag.String("pprof-addr", "", "`address` to serve Go profiles on (/debug/pprof/), to compare the ceiling's profile with the greeter's; empty for none")
	flag.Parse()
	if *pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go func() { _ = http.ListenAndServe(*pprofAddr, mux) }()
	}

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareserver:", err)
		os.Exit(2)
	}
	s := grpc.NewServer()
	bare.Register(s)
	var web *http.Server
	httpBound := ""
	if *httpAddr != "" {
		httpLis, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bareserver:", err)
			os.Exit(2)
		}
		httpBound = httpLis.Addr().String()
		web = &http.Server{Handler: bare.ConnectHandler(), Protocols: new(http.Protocols)}
		web.Protocols.SetHTTP1(true)
		web.Protocols.SetUnencryptedHTTP2(true)
		go web.Serve(httpLis)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		if web != nil {
			web.Shutdown(context.Background())
		}
		s.GracefulStop()
	}()
	slog.Info("serving", "grpc_addr", lis.Addr().String(), "http_addr", httpBound)
	if err := s.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "bareserver:", err)
		os.Exit(1)
	}
}
