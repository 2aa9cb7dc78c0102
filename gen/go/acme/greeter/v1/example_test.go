package greeterv1_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// greeter is the smallest GreeterService: it answers SayHello only, and
// every other RPC with UNIMPLEMENTED through the embedded type, which keeps
// it compiling when the contract gains RPCs.
type greeter struct {
	greeterv1.UnimplementedGreeterServiceServer
}

func (greeter) SayHello(_ context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	return &greeterv1.SayHelloResponse{Message: "Hello, " + req.GetName() + "!"}, nil
}

// ExampleGreeterServiceClient calls GreeterService through the generated
// client, here against an in-memory server.
func ExampleGreeterServiceClient() {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(srv, greeter{})
	go srv.Serve(lis)
	defer srv.Stop()

	// grpc.NewClient resolves names with DNS by default; passthrough hands
	// the address to the dialer unchanged, which bufconn needs.
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	client := greeterv1.NewGreeterServiceClient(conn)
	resp, err := client.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetMessage())
	// Output: Hello, Ada!
}
