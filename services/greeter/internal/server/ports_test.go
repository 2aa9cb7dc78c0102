package server

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// TestWebHasNoSettingsOfItsOwn: package web declares no option, no
// default and no Option type: every setting of the HTTP port is the
// server's (web.Config), so that nothing can make the two ports disagree.
func TestWebHasNoSettingsOfItsOwn(t *testing.T) {
	files, err := filepath.Glob("../web/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no files of package web: %v", err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && strings.HasPrefix(d.Name.Name, "With") {
					t.Errorf("%s: web declares the option %s: make it a server option", fset.Position(d.Pos()), d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch sp := spec.(type) {
					case *ast.ValueSpec:
						for _, n := range sp.Names {
							if strings.HasPrefix(n.Name, "Default") {
								t.Errorf("%s: web declares the default %s: the server's options hold the defaults", fset.Position(n.Pos()), n.Name)
							}
						}
					case *ast.TypeSpec:
						if sp.Name.Name == "Option" {
							t.Errorf("%s: web declares a type Option: web.Config is filled by package server", fset.Position(sp.Pos()))
						}
					}
				}
			}
		}
	}
}

// TestPortsShareTransportSettings: both ports tell an HTTP/2 client the
// same limits (concurrent streams, stream and connection windows), and
// refuse a request message over the same size, for settings other than
// the defaults.
func TestPortsShareTransportSettings(t *testing.T) {
	const maxStreams, maxMsg = 7, 2048
	h := startWeb(t, withOptions(WithMaxConcurrentStreams(maxStreams), WithMaxRecvMsgSize(maxMsg)))

	grpcConn, err := h.lis.Dial()
	if err != nil {
		t.Fatal(err)
	}
	httpConn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	grpcPort, httpPort := handshake(t, grpcConn), handshake(t, httpConn)
	if grpcPort != httpPort {
		t.Errorf("the gRPC port announces %+v, the HTTP port %+v: want the same", grpcPort, httpPort)
	}
	want := announced{maxStreams: maxStreams, streamWindow: streamWindow, connWindow: uint32(connWindow(maxStreams))}
	if grpcPort != want {
		t.Errorf("the ports announce %+v, want %+v", grpcPort, want)
	}

	big := &greeterv1.SayHelloRequest{Name: strings.Repeat("a", maxMsg)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.greeter.SayHello(ctx, big); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("gRPC port, a %d-byte message: %v, want RESOURCE_EXHAUSTED", maxMsg+4, err)
	}
	c := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](httpClient(t, true, ""), h.base+sayHello)
	if _, err := c.CallUnary(ctx, connect.NewRequest(big)); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("HTTP port, a %d-byte message: %v, want resource_exhausted", maxMsg+4, err)
	}
}

// announced is what a server tells a new HTTP/2 connection of its limits.
type announced struct {
	maxStreams, streamWindow, connWindow uint32
}

// handshake opens an HTTP/2 connection on conn and reads the server's
// SETTINGS and the WINDOW_UPDATE that grows its connection window.
func handshake(t *testing.T, conn net.Conn) announced {
	t.Helper()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	a := announced{streamWindow: 65535, connWindow: 65535}
	var settings, window bool
	for !settings || !window {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's SETTINGS and WINDOW_UPDATE: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			settings = true
			if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
				a.maxStreams = v
			}
			if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
				a.streamWindow = v
			}
			fr.WriteSettingsAck()
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				window = true
				a.connWindow += f.Increment
			}
		}
	}
	return a
}
