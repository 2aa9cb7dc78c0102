// Package version reports which build of the greeter is running, from the
// module and VCS information the Go toolchain embeds in every binary.
package version

import (
	"runtime/debug"
	"sync"
)

// Info is what a build knows about itself.
type Info struct {
	// Module is the main module's version, "(devel)" for a build from a
	// work tree rather than from a tagged module.
	Module string
	// Revision is the VCS revision, suffixed "-dirty" when the work tree had
	// uncommitted changes; "unknown" when the build carries no VCS stamp
	// (go test, go run, -buildvcs=false).
	Revision string
}

// String renders the build as "<module version> (<revision>)", the format
// greetctl's `version --server` shows.
func (i Info) String() string {
	return i.Module + " (" + i.Revision + ")"
}

// Get returns the running binary's build information. It is computed once:
// debug.ReadBuildInfo parses a string each call.
var Get = sync.OnceValue(func() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Module: "unknown", Revision: "unknown"}
	}
	return fromBuildInfo(bi)
})

func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Module: bi.Main.Version, Revision: "unknown"}
	if info.Module == "" {
		info.Module = "(devel)"
	}
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && info.Revision != "unknown" {
		info.Revision += "-dirty"
	}
	return info
}
