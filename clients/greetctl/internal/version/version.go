// Package version identifies the greetctl build and names the header the
// server reports its own version in.
package version

import (
	"fmt"
	"runtime/debug"
)

// ServerHeader is the response header the greeter server sets on
// grpc.health.v1.Health/Check responses: "<version> (<revision>)".
const ServerHeader = "greeter-server-version"

// Info describes a greetctl build.
type Info struct {
	// Version is the module version, e.g. "v1.2.0", or "(devel)" for a
	// build from a working tree.
	Version string `json:"version"`
	// Revision is the VCS revision the binary was built from, or "unknown"
	// when the build carried no VCS information (-buildvcs=false, go run).
	Revision string `json:"revision"`
	// Modified reports uncommitted changes in the working tree at build
	// time.
	Modified bool `json:"modified,omitempty"`
}

// String formats the build as "v1.2.0 (0123abcd)".
func (i Info) String() string {
	rev := i.Revision
	if i.Modified {
		rev += ", modified"
	}
	return fmt.Sprintf("%s (%s)", i.Version, rev)
}

// Read returns the running binary's build information.
func Read() Info {
	info := Info{Version: "(devel)", Revision: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if v := bi.Main.Version; v != "" {
		info.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// UserAgent is the default user agent: "greetctl/<version>". gRPC appends
// its own "grpc-go/<version>".
func (i Info) UserAgent() string {
	return "greetctl/" + i.Version
}
