package version_test

import (
	"testing"

	"github.com/acme/greeter/clients/greetctl/internal/version"
)

func TestInfo(t *testing.T) {
	tests := []struct {
		info     version.Info
		want, ua string
	}{
		{version.Info{Version: "v1.2.3", Revision: "abc"}, "v1.2.3 (abc)", "greetctl/v1.2.3"},
		{version.Info{Version: "(devel)", Revision: "abc", Modified: true}, "(devel) (abc, modified)", "greetctl/(devel)"},
	}
	for _, tt := range tests {
		if got := tt.info.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if got := tt.info.UserAgent(); got != tt.ua {
			t.Errorf("UserAgent() = %q, want %q", got, tt.ua)
		}
	}
}

func TestRead(t *testing.T) {
	// A test binary has build info but, under -buildvcs=false or go test,
	// maybe no VCS settings: Read must still fill both fields.
	info := version.Read()
	if info.Version == "" || info.Revision == "" {
		t.Errorf("Read() = %+v, want both fields set", info)
	}
}
