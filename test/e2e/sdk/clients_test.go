package sdk_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// clientResult is what both client programs print: every RPC's answer
// and the validation errors, decoded.
type clientResult struct {
	SayHello       string     `json:"sayHello"`
	SayHelloAgain  string     `json:"sayHelloAgain"`
	SayHelloStream []greeting `json:"sayHelloStream"`
	SayHelloToAll  everyone   `json:"sayHelloToAll"`
	SayHelloChat   []greeting `json:"sayHelloChat"`
	Helloworld     string     `json:"helloworld"`
	InvalidUnary   rejection  `json:"invalidUnary"`
	InvalidStream  rejection  `json:"invalidStream"`
}

type greeting struct {
	Message  string `json:"message"`
	Sequence int64  `json:"sequence"`
}

type everyone struct {
	Message string `json:"message"`
	Count   int64  `json:"count"`
}

type rejection struct {
	Code       int         `json:"code"`
	Violations []violation `json:"violations"`
}

type violation struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// wantResult is what the real greeter answers the programs' calls: unary,
// server-, client- and bidi-streaming RPCs of acme.greeter.v1, the tutorial
// contract, and two names the rules reject, each INVALID_ARGUMENT with a
// BadRequest naming the field and the rule id.
var wantResult = clientResult{
	SayHello:      "Hello, Ada!",
	SayHelloAgain: "Hello again, Ada!",
	SayHelloStream: []greeting{
		{Message: "Hello, Ada!", Sequence: 1},
		{Message: "Hello, Ada!", Sequence: 2},
		{Message: "Hello, Ada!", Sequence: 3},
	},
	SayHelloToAll: everyone{Message: "Hello, Ada, Grace and Linus!", Count: 3},
	SayHelloChat: []greeting{
		{Message: "Hello, Ada!", Sequence: 1},
		{Message: "Hello, Grace!", Sequence: 2},
	},
	Helloworld: "Hello, Ada!",
	InvalidUnary: rejection{
		Code:       int(codes.InvalidArgument),
		Violations: []violation{{Field: "name", Reason: "name.not_blank"}},
	},
	InvalidStream: rejection{
		Code:       int(codes.InvalidArgument),
		Violations: []violation{{Field: "name", Reason: "name.no_control_characters"}},
	},
}

func checkResult(t *testing.T, out string) {
	t.Helper()
	var got clientResult
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("client output is not the result object: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, wantResult) {
		t.Errorf("client got\n%+v\nwant\n%+v", got, wantResult)
	}
}

// TestNodeClient installs the packed TypeScript SDK the way a Node team
// does (npm install of the tarball beside connect-es, from the committed
// lockfile; offline, from the npm cache `make npm-deps` filled) and runs
// its program against the real greeter.
func TestNodeClient(t *testing.T) {
	t.Parallel()
	need(t, "node", "npm")
	srv := startGreeter(t)
	dir := t.TempDir()
	copyFiles(t, filepath.Join(root, "test/e2e/sdk/node"), dir, "package.json", "package-lock.json", "client.mjs")
	npm := []string{"--offline", "--no-audit", "--no-fund", "--ignore-scripts"}
	if out, err := runNPM(dir, append([]string{"ci"}, npm...)...); err != nil {
		t.Fatalf("npm ci --offline of test/e2e/sdk/node (run `make npm-deps` first, which fills the npm cache): %v\n%s", err, out)
	}
	tgz := artifact(t, "npm/acme-greeter-api-*.tgz")
	if out, err := runNPM(dir, append([]string{"install", "--no-save", tgz}, npm...)...); err != nil {
		t.Fatalf("npm install %s: %v\n%s", tgz, err, out)
	}
	checkResult(t, runIn(t, dir, nil, "node", "client.mjs", srv.Addr, errorDetails))
}

func runNPM(dir string, args ...string) (string, error) {
	cmd := exec.Command("npm", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPythonClient installs the Python SDK's wheel with PyPA's installer
// (what pip runs underneath) into a private directory and runs its program
// on Debian's python3 and grpcio against the real greeter.
func TestPythonClient(t *testing.T) {
	t.Parallel()
	need(t, python)
	srv := startGreeter(t)
	dir := t.TempDir()
	wheel := artifact(t, "python/acme_greeter_api-*-py3-none-any.whl")
	runIn(t, dir, nil, python, "-m", "installer", "--destdir", filepath.Join(dir, "root"), "--no-compile-bytecode", wheel)
	purelib := strings.TrimSpace(runIn(t, dir, nil, python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"))
	site := filepath.Join(dir, "root", purelib)
	out := runIn(t, dir, []string{"PYTHONPATH=" + site, "PYTHONDONTWRITEBYTECODE=1"},
		python, filepath.Join(root, "test/e2e/sdk/python/client.py"), srv.Addr, errorDetails)
	checkResult(t, out)
	// The program ran the wheel's modules, not the checkout's.
	where := runIn(t, dir, []string{"PYTHONPATH=" + site}, python, "-c", "from acme.greeter.v1 import greeter_pb2; print(greeter_pb2.__file__)")
	if !strings.HasPrefix(where, site) {
		t.Errorf("greeter_pb2 came from %s, not from the installed wheel in %s", where, site)
	}
}

// python is Debian's interpreter, which python3-grpcio and python3-protobuf
// install into (a python3 earlier on PATH, pyenv's say, lacks them).
const python = "/usr/bin/python3"
