package majorversion_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/acme/greeter/tools/internal/contractdist"
	"github.com/acme/greeter/tools/internal/protocheck"
	"github.com/acme/greeter/tools/internal/repotest"
	"github.com/acme/greeter/tools/internal/sdktools"
)

const (
	v1Proto = "api/acme/greeter/v1/greeter.proto"
	v2Proto = "api/acme/greeter/v2/greeter.proto"
)

// breakingChange is a change no v1 client survives: SayHelloRequest.name
// renamed, SayHelloAgain removed with its messages. Each is old → new in
// greeter.proto.
var breakingChange = [][2]string{
	{"message SayHelloRequest {\n  // name is who to greet; see the package comment for its rules.\n  string name = 1 [",
		"message SayHelloRequest {\n  // full_name is who to greet; see the package comment for its rules.\n  string full_name = 1 ["},
	{"  // SayHelloAgain greets one person again: \"Hello again, <name>!\".\n  rpc SayHelloAgain(SayHelloAgainRequest) returns (SayHelloAgainResponse) {\n    option idempotency_level = NO_SIDE_EFFECTS;\n  }\n\n", ""},
	{"// SayHelloAgainRequest is the request of GreeterService.SayHelloAgain.\nmessage SayHelloAgainRequest {\n  // name is who to greet; see the package comment for its rules.\n  string name = 1 [\n    (buf.validate.field).required = true,\n    (buf.validate.field).string.max_len = 100,\n    (buf.validate.field).string.(acme.greeter.v1.person_name) = true\n  ];\n}\n\n" +
		"// SayHelloAgainResponse is the response of GreeterService.SayHelloAgain.\nmessage SayHelloAgainResponse {\n  // message is the greeting, e.g. \"Hello again, Ada!\".\n  string message = 1;\n}\n\n", ""},
}

// TestNewMajorVersion proves the path README.md's "How to change the
// contract" gives a break: in a copy of the repository, the breaking change
// made as a new package acme.greeter.v2 (v1 untouched) passes every contract
// check and flows to every artifact, and the server serves v2 beside v1;
// the same change made inside v1 fails buf breaking, naming file and line.
func TestNewMajorVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	main := repotest.Copy(t)

	t.Run("inside v1 it breaks", func(t *testing.T) {
		t.Parallel()
		dir := repotest.Copy(t)
		for _, c := range breakingChange {
			repotest.Replace(t, dir, v1Proto, c[0], c[1])
		}
		err := protocheck.Breaking(ctx, dir, main)
		var checkErr *protocheck.Error
		if !errors.As(err, &checkErr) {
			t.Fatalf("the change inside v1 must fail buf breaking, got %v", err)
		}
		changed := repotest.ReadFile(t, dir, v1Proto)
		for _, want := range []struct{ rule, line string }{
			{"FIELD_SAME_NAME", "  string full_name = 1 ["},
			{"RPC_NO_DELETE", "service GreeterService {"},
			{"MESSAGE_NO_DELETE", "// SayHelloRequest is the request"}, // the file's messages: reported at the top
		} {
			at := lineOf(t, changed, want.line)
			found := slices.ContainsFunc(checkErr.Findings, func(f protocheck.Finding) bool {
				return f.Path == v1Proto && f.Type == want.rule && (want.rule == "MESSAGE_NO_DELETE" || f.StartLine == at)
			})
			if !found {
				t.Errorf("no %s finding at %s:%d; findings:\n%s", want.rule, v1Proto, at, checkErr.Output)
			}
		}
		if at := lineOf(t, changed, "  string full_name = 1 ["); !strings.Contains(checkErr.Output, v1Proto+":"+strconv.Itoa(at)+":") {
			t.Errorf("the output does not name %s:%d:\n%s", v1Proto, at, checkErr.Output)
		}
	})

	dir := repotest.Copy(t)
	v2 := repotest.ReadFile(t, dir, v1Proto)
	for _, c := range [][2]string{
		{"// Package acme.greeter.v1 is the stable greeting contract.", "// Package acme.greeter.v2 is the next major version of the greeting\n// contract: a request names its person by full_name, and greeting again\n// is gone."},
		{"package acme.greeter.v1;", "package acme.greeter.v2;"},
	} {
		v2 = replace(t, v2, c[0], c[1])
	}
	for _, c := range breakingChange {
		v2 = replace(t, v2, c[0], c[1])
	}
	repotest.WriteFile(t, dir, v2Proto, v2)

	if err := protocheck.FormatCheck(ctx, dir); err != nil {
		t.Errorf("buf format: %v", err)
	}
	if err := protocheck.Lint(ctx, dir); err != nil {
		t.Errorf("buf lint: %v", err)
	}
	if err := protocheck.Breaking(ctx, dir, main); err != nil {
		t.Errorf("a new package must not break main: %v", err)
	}
	if err := protocheck.Generate(ctx, dir); err != nil {
		t.Fatalf("make generate: %v", err)
	}
	for _, rel := range []string{
		"gen/go/acme/greeter/v2/greeter.pb.go",
		"gen/go/acme/greeter/v2/greeter_grpc.pb.go",
		"sdk/ts/gen/acme/greeter/v2/greeter_pb.js",
		"sdk/ts/gen/acme/greeter/v2/greeter_pb.d.ts",
		"sdk/python/src/acme/greeter/v2/greeter_pb2.py",
		"sdk/python/src/acme/greeter/v2/greeter_pb2.pyi",
		"sdk/python/src/acme/greeter/v2/greeter_pb2_grpc.py",
		"docs/api/acme.greeter.v2.md",
		// v1 stays generated as it was.
		"gen/go/acme/greeter/v1/greeter.pb.go",
		"docs/api/acme.greeter.v1.md",
	} {
		if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
			t.Errorf("make generate did not write %s: %v", rel, err)
		}
	}
	if docs := repotest.ReadFile(t, dir, "docs/api/acme.greeter.v2.md"); !strings.Contains(docs, "`full_name`") || strings.Contains(docs, "SayHelloAgain") {
		t.Errorf("docs/api/acme.greeter.v2.md does not describe v2:\n%s", docs)
	}
	if index := repotest.ReadFile(t, dir, "docs/api/README.md"); !strings.Contains(index, "[acme.greeter.v2](acme.greeter.v2.md)") {
		t.Errorf("the API reference's index does not list v2:\n%s", index)
	}

	t.Run("TypeScript SDK", func(t *testing.T) {
		t.Parallel()
		// What a consumer of @acme/greeter-api/gen/acme/greeter/v2/greeter_pb
		// sees: the service's methods and the request's fields.
		script := `const v2 = await import(process.argv[1]);
console.log(JSON.stringify({
  methods: Object.keys(v2.GreeterService.method),
  fields: v2.SayHelloRequestSchema.fields.map((f) => f.name),
}));`
		out := run(t, dir, "node", "--input-type=module", "-e", script, "--", filepath.Join(dir, "sdk/ts/gen/acme/greeter/v2/greeter_pb.js"))
		var got struct{ Methods, Fields []string }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if !slices.Contains(got.Methods, "sayHello") || slices.Contains(got.Methods, "sayHelloAgain") || !slices.Equal(got.Fields, []string{"full_name"}) {
			t.Errorf("the v2 module has methods %q and SayHelloRequest fields %q", got.Methods, got.Fields)
		}
	})

	t.Run("Python SDK", func(t *testing.T) {
		t.Parallel()
		script := `import json
from acme.greeter.v2 import greeter_pb2, greeter_pb2_grpc
service = greeter_pb2.DESCRIPTOR.services_by_name["GreeterService"]
print(json.dumps({
    "methods": [m.name for m in service.methods],
    "fields": [f.name for f in greeter_pb2.SayHelloRequest.DESCRIPTOR.fields],
    "stub": hasattr(greeter_pb2_grpc, "GreeterServiceStub"),
}))`
		cmd := exec.Command(sdktools.Python, "-c", script)
		cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(dir, "sdk/python/src"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("import acme.greeter.v2: %v\n%s", err, out)
		}
		var got struct {
			Methods, Fields []string
			Stub            bool
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if !slices.Contains(got.Methods, "SayHello") || slices.Contains(got.Methods, "SayHelloAgain") || !slices.Equal(got.Fields, []string{"full_name"}) || !got.Stub {
			t.Errorf("the v2 module has methods %q, SayHelloRequest fields %q, a stub: %v", got.Methods, got.Fields, got.Stub)
		}
	})

	t.Run("make dist", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "dist")
		if _, err := contractdist.Build(ctx, dir, out, contractdist.Dev, contractdist.DefaultEpoch); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(out, contractdist.Image))
		if err != nil {
			t.Fatal(err)
		}
		set := &descriptorpb.FileDescriptorSet{}
		if err := proto.Unmarshal(data, set); err != nil {
			t.Fatal(err)
		}
		var image []string
		for _, f := range set.GetFile() {
			image = append(image, f.GetName())
		}
		for artifact, want := range map[string][]string{
			contractdist.Image:                                    {"acme/greeter/v1/greeter.proto", "acme/greeter/v2/greeter.proto"},
			contractdist.Protos:                                   {"acme/greeter/v1/greeter.proto", "acme/greeter/v2/greeter.proto"},
			contractdist.Docs:                                     {"api/acme.greeter.v1.md", "api/acme.greeter.v2.md"},
			"npm/acme-greeter-api-0.0.0-dev.tgz":                  {"package/gen/acme/greeter/v1/greeter_pb.js", "package/gen/acme/greeter/v2/greeter_pb.js"},
			"python/acme_greeter_api-0.0.0.dev0-py3-none-any.whl": {"acme/greeter/v1/greeter_pb2_grpc.py", "acme/greeter/v2/greeter_pb2_grpc.py"},
		} {
			names := image
			if artifact != contractdist.Image {
				if names, err = contractdist.List(filepath.Join(out, artifact)); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range want {
				if !slices.Contains(names, name) {
					t.Errorf("%s lacks %s", artifact, name)
				}
			}
		}
	})

	t.Run("server serves v2 beside v1", func(t *testing.T) {
		t.Parallel()
		server := "services/greeter/internal/server/"
		repotest.Replace(t, dir, server+"server.go",
			"\tgreeterv1.RegisterGreeterServiceServer(both, service.NewGreeter())\n",
			"\tgreeterv1.RegisterGreeterServiceServer(both, service.NewGreeter())\n\tgreeterv2.RegisterGreeterServiceServer(both, greeterV2{})\n")
		repotest.Replace(t, dir, server+"server.go",
			"\tgreeterv1.GreeterService_ServiceDesc.ServiceName,\n",
			"\tgreeterv1.GreeterService_ServiceDesc.ServiceName,\n\tgreeterv2.GreeterService_ServiceDesc.ServiceName,\n")
		repotest.Replace(t, dir, server+"server.go",
			"\tgreeterv1 \"github.com/acme/greeter/gen/go/acme/greeter/v1\"\n",
			"\tgreeterv1 \"github.com/acme/greeter/gen/go/acme/greeter/v1\"\n\tgreeterv2 \"github.com/acme/greeter/gen/go/acme/greeter/v2\"\n")
		repotest.WriteFile(t, dir, server+"v2.go", v2Service)
		repotest.WriteFile(t, dir, server+"v2_test.go", v2Test)
		run(t, filepath.Join(dir, "services/greeter"), "go", "vet", "./...")
		run(t, filepath.Join(dir, "services/greeter"), "go", "test", "-count=1", "-run", "^TestV2BesideV1$", "./internal/server")
	})
}

// v2Service is the v2 implementation a team would write first, in the
// server package of the copy.
const v2Service = `package server

import (
	"context"

	greeterv2 "github.com/acme/greeter/gen/go/acme/greeter/v2"
)

// greeterV2 serves acme.greeter.v2 beside v1.
type greeterV2 struct {
	greeterv2.UnimplementedGreeterServiceServer
}

func (greeterV2) SayHello(_ context.Context, req *greeterv2.SayHelloRequest) (*greeterv2.SayHelloResponse, error) {
	return &greeterv2.SayHelloResponse{Message: "Hello, " + req.GetFullName() + "!"}, nil
}
`

// v2Test calls both versions on one server, through the server's own test
// harness: v2's requests are validated like v1's, and health knows v2.
const v2Test = `package server

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	greeterv2 "github.com/acme/greeter/gen/go/acme/greeter/v2"
)

func TestV2BesideV1(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	v1, err := h.greeter.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"})
	if err != nil || v1.GetMessage() != "Hello, Ada!" {
		t.Fatalf("v1: %v, %v", v1, err)
	}
	client := greeterv2.NewGreeterServiceClient(h.conn)
	v2, err := client.SayHello(ctx, &greeterv2.SayHelloRequest{FullName: "Ada Lovelace"})
	if err != nil || v2.GetMessage() != "Hello, Ada Lovelace!" {
		t.Fatalf("v2: %v, %v", v2, err)
	}
	if _, err := client.SayHello(ctx, &greeterv2.SayHelloRequest{FullName: "\x07"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("v2 with a control character: %v, want InvalidArgument", err)
	}
	resp, err := h.health.Check(ctx, &healthpb.HealthCheckRequest{Service: greeterv2.GreeterService_ServiceDesc.ServiceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health of v2: %v, %v", resp, err)
	}
}
`

// replace is repotest.Replace on a string.
func replace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("greeter.proto does not contain %q: the test is out of date with the contract", old)
	}
	return strings.Replace(s, old, new, 1)
}

// lineOf is the line number of the first line of text that starts with
// prefix.
func lineOf(t *testing.T, text, prefix string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	t.Fatalf("no line starts with %q", prefix)
	return 0
}

// run runs a command in dir and returns its standard output; it fails t
// with everything the command printed when the command fails.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}
