package bench

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"
	"github.com/acme/greeter/test/bench/load"
)

// parseGreetload reads greetload -json's result.
func parseGreetload(out []byte) (run, error) {
	var res load.Result
	if err := json.Unmarshal(out, &res); err != nil {
		return run{}, fmt.Errorf("greetload's result: %w: %q", err, out)
	}
	if res.Failed() > 0 {
		return run{}, fmt.Errorf("%d RPCs failed: %v", res.Failed(), res.Errors)
	}
	return run{ops: res.Ops, elapsed: res.Elapsed, p50: res.P50, p99: res.P99}, nil
}

// ghzCall is how ghz calls one scenario: the method, its request as JSON
// and, for client and bidi streams, how many messages it sends.
type ghzCall struct {
	method string
	data   string
	sends  int
}

var ghzCalls = map[load.Scenario]ghzCall{
	load.Unary:           {method: "acme.greeter.v1.GreeterService/SayHello", data: `{"name":"ghz"}`},
	load.UnaryHelloworld: {method: "helloworld.Greeter/SayHello", data: `{"name":"ghz"}`},
	load.ServerStream:    {method: "acme.greeter.v1.GreeterService/SayHelloStream", data: fmt.Sprintf(`{"name":"ghz","count":%d}`, streamLength)},
	load.ClientStream:    {method: "acme.greeter.v1.GreeterService/SayHelloToAll", data: `{"name":"ghz"}`, sends: streamLength},
	load.Bidi:            {method: "acme.greeter.v1.GreeterService/SayHelloChat", data: `{"name":"ghz"}`, sends: streamLength},
}

// ghzArgs are ghz's flags for one run of d. Once d has passed, ghz starts
// no new call and waits for those in flight (--duration-stop wait), so
// every call that reached the server is complete and counted.
func ghzArgs(protoset, addr string, scenario load.Scenario, c int, d time.Duration, pinned bool) ([]string, error) {
	call, ok := ghzCalls[scenario]
	if !ok {
		return nil, fmt.Errorf("ghz: unknown scenario %q", scenario)
	}
	args := []string{
		"--insecure", "--protoset", protoset, "--call", call.method, "--data", call.data,
		"--concurrency", strconv.Itoa(c), "--connections", strconv.Itoa(connections(c)),
		"--duration", d.String(), "--duration-stop", "wait", "--timeout", "60s", "--format", "json",
	}
	if call.sends > 0 {
		args = append(args, "--stream-call-count", strconv.Itoa(call.sends))
	}
	if pinned {
		// ghz sizes its GOMAXPROCS from --cpus, not from the CPUs it may use.
		args = append(args, "--cpus", "1")
	}
	return append(args, addr), nil
}

// ghzReport is the part of ghz's JSON report read here.
type ghzReport struct {
	Total          time.Duration    `json:"total"`
	StatusCodes    map[string]int64 `json:"statusCodeDistribution"`
	Errors         map[string]int64 `json:"errorDistribution"`
	LatencyPercent []struct {
		Percentage int           `json:"percentage"`
		Latency    time.Duration `json:"latency"`
	} `json:"latencyDistribution"`
}

// parseGhz reads ghz's JSON report: one operation per unary call, and
// streamLength per streaming call (its latency is the call's).
func parseGhz(out []byte, scenario load.Scenario) (run, error) {
	var rep ghzReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return run{}, fmt.Errorf("ghz's report: %w: %.300q", err, out)
	}
	var failed int64
	for code, n := range rep.StatusCodes {
		if code != "OK" {
			failed += n
		}
	}
	if failed > 0 || rep.StatusCodes["OK"] == 0 {
		return run{}, fmt.Errorf("ghz: %d calls failed, %d succeeded: %v", failed, rep.StatusCodes["OK"], rep.Errors)
	}
	perCall := int64(1)
	if scenario != load.Unary && scenario != load.UnaryHelloworld {
		perCall = streamLength
	}
	r := run{ops: rep.StatusCodes["OK"] * perCall, elapsed: rep.Total}
	for _, l := range rep.LatencyPercent {
		switch l.Percentage {
		case 50:
			r.p50 = l.Latency
		case 99:
			r.p99 = l.Latency
		}
	}
	return r, nil
}

// writeProtoset writes both contracts, as compiled into the gen/go this
// module links, with every file they import, as a FileDescriptorSet for
// ghz: nothing to parse, nothing to find on disk.
func writeProtoset(dir string) (string, error) {
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(greeterv1.File_acme_greeter_v1_greeter_proto)
	add(helloworld.File_helloworld_helloworld_proto)
	b, err := proto.Marshal(set)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "contracts.protoset")
	return path, os.WriteFile(path, b, 0o644)
}

// moduleVersion is the version of module path that binary bin was built
// with, or "" when it cannot tell.
func moduleVersion(bin, path string) string {
	if bin == "" {
		return ""
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return ""
	}
	if info.Main.Path == path {
		return info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return ""
}

// commit names the commit the repository at root is at, with a note when
// its working tree has changes.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " with uncommitted changes"
	}
	return c
}
