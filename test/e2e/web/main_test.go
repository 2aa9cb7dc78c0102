package web_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/process"
)

var greeterBin string

func TestMain(m *testing.M) {
	os.Exit(binaries.Main(m, func(paths []string) error {
		greeterBin = paths[0]
		return nil
	}, binaries.Greeter))
}

// startGreeter runs the real greeter with its HTTP port on loopback.
func startGreeter(t *testing.T, args ...string) *process.Server {
	t.Helper()
	srv, err := process.Start(context.Background(), greeterBin,
		append([]string{"--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-srv.Done():
			return
		default:
		}
		if err := srv.Stop(20 * time.Second); err != nil {
			t.Errorf("greeter did not drain cleanly: %v\n%s", err, srv.Log())
		}
	})
	if srv.HTTPAddr == "" {
		t.Fatalf("the greeter logged no http_addr:\n%s", srv.Log())
	}
	return srv
}
