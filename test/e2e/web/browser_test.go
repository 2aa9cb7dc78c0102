package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/greeter/test/harness/metrics"
	"github.com/acme/greeter/test/harness/repo"
)

// browserReport is what page.mjs posts.
type browserReport struct {
	Fatal      string `json:"fatal"`
	Transports map[string]struct {
		Unary   string   `json:"unary"`
		Stream  []string `json:"stream"`
		Invalid verdict  `json:"invalid"`
		Error   string   `json:"error"`
	} `json:"transports"`
	ClientValidation map[string]struct {
		Kind       string   `json:"kind"`
		Violations []string `json:"violations"`
		Error      string   `json:"error"`
	} `json:"clientValidation"`
	ServerValidation map[string]verdict `json:"serverValidation"`
}

type verdict struct {
	Code       string   `json:"code"`
	Violations []string `json:"violations"`
}

// validationCases are the contract's cases the page validates itself and
// asks the server about, with the rule ids both must report: each rule of
// SayHelloRequest.name, alone and together.
var validationCases = map[string][]string{
	"":                       {"name/required"},
	"   ":                    {"name/name.not_blank"},
	"\u00a0\u2003\u3000":     {"name/name.not_blank"},
	strings.Repeat("a", 101): {"name/string.max_len"},
	strings.Repeat("名", 101): {"name/string.max_len"},
	"Ada\u0007":              {"name/name.no_control_characters"},
	"Grace\nHopper":          {"name/name.no_control_characters"},
	"\t":                     {"name/name.no_control_characters", "name/name.not_blank"},
	strings.Repeat(" ", 101): {"name/name.not_blank", "name/string.max_len"},
	"Ada Lovelace":           nil,
	"  Ada  ":                nil,
	"Zoë":                    nil,
	"🙂":                      nil,
	strings.Repeat("é", 100): nil,
}

// TestBrowser runs the TypeScript SDK in headless Chromium, on a page
// served from another origin than the API, over Connect JSON, Connect
// binary, Connect GET and gRPC-Web; checks the server's validation errors
// as the page reads them, and that protovalidate-es on the page finds the
// same rule ids as the server for every case of the contract.
func TestBrowser(t *testing.T) {
	chromium := need(t, "chromium", "node", "npm")
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bundle := buildPage(t, root, dir)

	results := make(chan browserReport, 1)
	page := http.NewServeMux()
	page.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><meta charset="utf-8"><title>greeter</title><script type="module" src="/bundle.js"></script>`)
	})
	page.HandleFunc("GET /bundle.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, bundle)
	})
	page.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var rep browserReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			rep.Fatal = "undecodable report: " + err.Error()
		}
		select {
		case results <- rep:
		default:
		}
	})
	pageSrv := httptest.NewServer(page)
	defer pageSrv.Close()

	// The page's origin, and it alone, may call the API.
	srv := startGreeter(t, "--cors-allowed-origins", pageSrv.URL)
	cases := make([]string, 0, len(validationCases))
	for name := range validationCases {
		cases = append(cases, name)
	}
	slices.Sort(cases)
	casesJSON, _ := json.Marshal(cases)
	pageURL := pageSrv.URL + "/?" + url.Values{"api": {"http://" + srv.HTTPAddr}, "cases": {string(casesJSON)}}.Encode()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	browser := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--user-data-dir="+filepath.Join(dir, "profile"), pageURL)
	var browserLog strings.Builder
	browser.Stdout, browser.Stderr = &browserLog, &browserLog
	if err := browser.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		browser.Process.Kill()
		browser.Wait()
	}()

	var rep browserReport
	select {
	case rep = <-results:
	case <-ctx.Done():
		t.Fatalf("the page reported nothing within 90s; chromium said:\n%s", browserLog.String())
	}
	if rep.Fatal != "" {
		t.Fatalf("the page failed: %s", rep.Fatal)
	}
	if data, err := json.MarshalIndent(rep, "", "  "); err == nil {
		t.Logf("the page reported:\n%s", data)
	}
	for _, name := range []string{"connect-json", "connect-binary", "connect-get", "grpc-web"} {
		r, ok := rep.Transports[name]
		wantStream := []string{"1:Hello, Grace!", "2:Hello, Grace!", "3:Hello, Grace!"}
		switch {
		case !ok:
			t.Errorf("%s: not reported", name)
		case r.Error != "":
			t.Errorf("%s: %s", name, r.Error)
		case r.Unary != "Hello, Ada!" || !reflect.DeepEqual(r.Stream, wantStream):
			t.Errorf("%s: unary %q, stream %q", name, r.Unary, r.Stream)
		case r.Invalid.Code != "InvalidArgument" || !reflect.DeepEqual(r.Invalid.Violations, []string{"name/required"}):
			t.Errorf("%s: an empty name got %+v, want InvalidArgument with name/required", name, r.Invalid)
		}
	}
	for _, name := range cases {
		want := validationCases[name]
		client, server := rep.ClientValidation[name], rep.ServerValidation[name]
		wantKind, wantCode := "valid", "ok"
		if len(want) > 0 {
			wantKind, wantCode = "invalid", "InvalidArgument"
		}
		if client.Kind != wantKind || !equalRules(client.Violations, want) {
			t.Errorf("%q: protovalidate-es in the browser: %s %q %s, want %s %q", name, client.Kind, client.Violations, client.Error, wantKind, want)
		}
		if server.Code != wantCode || !equalRules(server.Violations, want) {
			t.Errorf("%q: the server: %s %q, want %s %q", name, server.Code, server.Violations, wantCode, want)
		}
	}

	snap, err := metrics.Scrape(context.Background(), srv.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"connect", "connect-get", "grpc-web", "preflight"} {
		if n := snap.Sum("greeter_http_requests_total", map[string]string{"protocol": p}); n == 0 {
			t.Errorf("greeter_http_requests_total{protocol=%q} is 0: the browser did not use it", p)
		}
	}
}

func equalRules(got, want []string) bool {
	return len(got) == len(want) && (len(got) == 0 || reflect.DeepEqual(got, want))
}

// buildPage installs browser/'s pinned dependencies offline (from the npm
// cache `make npm-deps` fills) with the SDK's tarball as `make dist` packs
// it, and bundles page.mjs with esbuild; it returns the bundle's path.
func buildPage(t *testing.T, root, dir string) string {
	t.Helper()
	dist := filepath.Join(dir, "dist")
	build, err := repo.ToolCommand(context.Background(), root, "contractdist", "-out", dist)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the contract's artifacts (go tool contractdist): %v\n%s", err, out)
	}
	tarballs, _ := filepath.Glob(filepath.Join(dist, "npm", "acme-greeter-api-*.tgz"))
	if len(tarballs) != 1 {
		t.Fatalf("want one SDK tarball in %s/npm, got %q", dist, tarballs)
	}
	work := filepath.Join(dir, "page")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"package.json", "package-lock.json", "page.mjs"} {
		data, err := os.ReadFile(filepath.Join(root, "test/e2e/web/browser", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	npm := []string{"--offline", "--no-audit", "--no-fund", "--ignore-scripts"}
	run(t, work, "npm ci (run `make npm-deps` first, which fills the npm cache)", "npm", append([]string{"ci"}, npm...)...)
	run(t, work, "npm install of the SDK tarball", "npm", append([]string{"install", "--no-save", tarballs[0]}, npm...)...)
	bundle := filepath.Join(dir, "bundle.js")
	run(t, work, "esbuild", filepath.Join(work, "node_modules", ".bin", "esbuild"), "page.mjs", "--bundle", "--format=esm",
		"--target=chrome120", "--outfile="+bundle)
	return bundle
}

func run(t *testing.T, dir, what, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, out)
	}
}

// need fails the test, naming what to install, when a program is missing;
// it returns the first one's path. These tests never skip: .ci/run
// installs everything (.ci/apt-packages).
func need(t *testing.T, programs ...string) string {
	t.Helper()
	var first string
	for i, p := range programs {
		path, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("%s is missing: install Node.js 20 with npm, and on Debian `sudo apt-get install -y --no-install-recommends chromium` (.ci/run installs .ci/apt-packages)", p)
		}
		if i == 0 {
			first = path
		}
	}
	return first
}
