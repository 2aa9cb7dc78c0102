package deploycheck_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/greeter/test/deploycheck"
	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/repo"
)

// greeter is the server binary built once for the package's tests, and
// help its `--help` output.
var greeter, help string

func TestMain(m *testing.M) {
	os.Exit(binaries.Main(m, func(paths []string) error {
		greeter = paths[0]
		out, err := exec.Command(greeter, "--help").CombinedOutput()
		if err != nil {
			return fmt.Errorf("greeter --help: %w\n%s", err, out)
		}
		help = string(out)
		return nil
	}, binaries.Greeter))
}

// repoRoot is the root of the checkout holding the working directory.
func repoRoot() string {
	root, err := repo.Root()
	if err != nil {
		panic(err)
	}
	return root
}

// TestManifests is the check itself: every kustomization and the
// Dockerfile against the real binary's flags.
func TestManifests(t *testing.T) {
	errs := deploycheck.Check(repoRoot(), help)
	for _, err := range errs {
		t.Error(err)
	}
	dirs, err := deploycheck.FindKustomizations(filepath.Join(repoRoot(), deploycheck.KubernetesDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checked kustomizations %q and %s", dirs, deploycheck.Dockerfile)
	for _, want := range []string{"base", "overlays/example"} {
		found := false
		for _, d := range dirs {
			found = found || d == want
		}
		if !found {
			t.Errorf("no kustomization in %s/%s", deploycheck.KubernetesDir, want)
		}
	}
}

// TestBinaryAcceptsContainerArgs runs the real server with each rendered
// container's args and GREETER_ environment, plus --version: the flag
// parser rejects an unknown flag or a malformed value (exit status 2)
// before --version prints and exits 0.
func TestBinaryAcceptsContainerArgs(t *testing.T) {
	containers, err := deploycheck.GreeterContainers(repoRoot())
	if err != nil {
		t.Fatal(err)
	}
	for dir, c := range containers {
		t.Run(dir, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, greeter, append(append([]string{}, c.Args...), "--version")...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "GREETER_") && e.ValueFrom == nil {
					cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
				}
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("greeter %s --version: %v\n%s\nfix the container args of %s", strings.Join(c.Args, " "), err, out, dir)
			}
			if !strings.HasPrefix(string(out), "greeter ") {
				t.Fatalf("greeter --version printed %q", out)
			}
			t.Logf("%s: greeter accepts %q", dir, c.Args)
		})
	}
}

func TestParseHelp(t *testing.T) {
	flags, err := deploycheck.ParseHelp(help)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]deploycheck.Flag{
		"drain-timeout": {Name: "drain-timeout", Env: "GREETER_DRAIN_TIMEOUT", Default: "20s"},
		"grpc-addr":     {Name: "grpc-addr", Env: "GREETER_GRPC_ADDR", Default: ":50051"},
		"metrics-addr":  {Name: "metrics-addr", Env: "GREETER_METRICS_ADDR", Default: ":9090"},
		"reflection":    {Name: "reflection", Env: "GREETER_REFLECTION", Default: "true", Bool: true},
		"tls-cert":      {Name: "tls-cert", Env: "GREETER_TLS_CERT", Default: ""},
	} {
		if got := flags[name]; got != want {
			t.Errorf("flag %s: got %+v, want %+v", name, got, want)
		}
	}
	if _, err := deploycheck.ParseHelp("Usage: something else\n  --foo int\n"); err == nil {
		t.Error("a help text without the greeter's flags must be rejected")
	}
}

// copyTree copies the parts of the repository Check reads into a
// temporary root.
func copyTree(t *testing.T) string {
	t.Helper()
	src, dst := repoRoot(), t.TempDir()
	if err := os.CopyFS(filepath.Join(dst, "deploy"), os.DirFS(filepath.Join(src, "deploy"))); err != nil {
		t.Fatal(err)
	}
	// What the checks read besides deploy/: the server's go.mod (its go
	// directive) and the root go.work (what the image's builder must copy).
	for _, name := range []string{"services/greeter/go.mod", "go.work"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// edit replaces old by new in root/file, which must contain old.
func edit(t *testing.T, root, file, old, new string) {
	t.Helper()
	path := filepath.Join(root, file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q: the fault-planting test is out of date", file, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	deployment = "deploy/kubernetes/base/deployment.yaml"
	headless   = "deploy/kubernetes/base/service-headless.yaml"
	service    = "deploy/kubernetes/base/service.yaml"
	pdb        = "deploy/kubernetes/base/pdb.yaml"
	baseKust   = "deploy/kubernetes/base/kustomization.yaml"
	overlay    = "deploy/kubernetes/overlays/example/kustomization.yaml"
	tlsPatch   = "deploy/kubernetes/overlays/example/patch-tls.yaml"
	resPatch   = "deploy/kubernetes/overlays/example/patch-resources.yaml"
	dockerfile = "deploy/docker/greeter.Dockerfile"
)

// TestCheckCatchesFaults plants one fault at a time into a copy of the
// deploy files and requires Check to report it, with a message that names
// the fix.
func TestCheckCatchesFaults(t *testing.T) {
	type change struct{ file, old, new string }
	for _, tc := range []struct {
		name    string
		changes []change
		want    string // in one of the errors
	}{
		{"grace period shorter than the drain",
			[]change{{deployment, "terminationGracePeriodSeconds: 35", "terminationGracePeriodSeconds: 20"}},
			"set terminationGracePeriodSeconds above 30"},
		{"grace period without room for the admin shutdown",
			[]change{{deployment, "terminationGracePeriodSeconds: 35", "terminationGracePeriodSeconds: 26"}},
			"terminationGracePeriodSeconds is 26"},
		{"longer drain timeout, same grace period",
			[]change{{deployment, "--drain-timeout=20s", "--drain-timeout=40s"}},
			"drain-delay + drain-timeout (45s)"},
		{"drain timeout left to the default",
			[]change{{deployment, "            - --drain-timeout=20s\n", ""}},
			"does not set --drain-timeout"},
		{"misspelt flag",
			[]change{{deployment, "--drain-delay=5s", "--drain-dealy=5s"}},
			"greeter has no flag --drain-dealy"},
		{"flag without its value",
			[]change{{deployment, "            - --send-stall-timeout=30s\n", "            - --send-stall-timeout\n"}},
			"needs a value"},
		{"unknown GREETER_ variable",
			[]change{{deployment, "          ports:\n            - name: grpc\n", "          env:\n            - name: GREETER_DRAIN_TIMOUT\n              value: 10s\n          ports:\n            - name: grpc\n"}},
			"env GREETER_DRAIN_TIMOUT is not the variable of any greeter flag"},
		{"text logs",
			[]change{{deployment, "--log-format=json", "--log-format=text"}},
			"set --log-format=json"},
		{"unknown field",
			[]change{{deployment, "  revisionHistoryLimit: 5", "  revisionHistoryLimit: 5\n  replica: 3"}},
			`unknown field "spec.replica"`},
		{"miscased field",
			[]change{{deployment, "containerPort: 9090", "ContainerPort: 9090"}},
			"ContainerPort"},
		{"duplicate field",
			[]change{{pdb, "  maxUnavailable: 1", "  maxUnavailable: 1\n  maxUnavailable: 2"}},
			"maxUnavailable"},
		{"too few replicas",
			[]change{{deployment, "replicas: 3", "replicas: 2"}},
			"set spec.replicas to at least 3"},
		{"rollout may go below the desired count",
			[]change{{deployment, "maxUnavailable: 0", "maxUnavailable: 1"}},
			"set it to 0"},
		{"readiness probes the wrong port",
			[]change{{deployment, "          readinessProbe:\n            grpc:\n              port: 50051", "          readinessProbe:\n            grpc:\n              port: 50052"}},
			"readinessProbe probes gRPC port 50052 but the server listens on 50051"},
		{"server listens elsewhere than the probes",
			[]change{{deployment, "--grpc-addr=:50051", "--grpc-addr=:8443"}},
			"container port \"grpc\" is 50051 but --grpc-addr listens on 8443"},
		{"probe asks an unknown health service",
			[]change{{deployment, `              service: ""`, `              service: "greeter"`}},
			`asks health service "greeter"`},
		{"liveness kills a draining pod",
			[]change{{deployment, "            failureThreshold: 4", "            failureThreshold: 2"}},
			"raise periodSeconds x (failureThreshold - 1)"},
		{"no readiness probe",
			[]change{{deployment, "          readinessProbe:\n            grpc:\n              port: 50051\n              service: \"\"\n            periodSeconds: 2\n            timeoutSeconds: 1\n            failureThreshold: 1\n            successThreshold: 1\n", ""}},
			"has no readinessProbe"},
		{"metrics port differs from the flag",
			[]change{{deployment, "containerPort: 9090", "containerPort: 9091"}},
			"container port \"metrics\" is 9091 but --metrics-addr listens on 9090"},
		{"HTTP port differs from the flag",
			[]change{{deployment, "containerPort: 8080", "containerPort: 8081"}},
			"container port \"http\" is 8081 but --http-addr listens on 8080"},
		{"HTTP port not declared",
			[]change{{deployment, "            - name: http\n              containerPort: 8080\n              protocol: TCP\n", ""}},
			"declares no port named \"http\""},
		{"Service without the HTTP port",
			[]change{{service, "    - name: http\n      port: 8080\n      targetPort: http\n      protocol: TCP\n      appProtocol: http\n", ""}},
			`Service "greeter" has no port named http`},
		{"scrape annotation on the wrong port",
			[]change{{deployment, `prometheus.io/port: "9090"`, `prometheus.io/port: "8080"`}},
			"annotation prometheus.io/port"},
		{"headless Service selects other pods",
			[]change{{headless, "    app.kubernetes.io/component: server", "    app.kubernetes.io/component: client"}},
			`Service "greeter-headless" selects`},
		{"headless Service on another port",
			[]change{{headless, "      port: 50051", "      port: 443"}},
			"clients dial pod IPs with the Service port"},
		{"headless Service publishes not-ready pods",
			[]change{{headless, "publishNotReadyAddresses: false", "publishNotReadyAddresses: true"}},
			"set publishNotReadyAddresses: false"},
		{"no headless Service",
			[]change{{baseKust, "  - service-headless.yaml\n", ""}},
			"no headless Service"},
		{"PDB selects other pods",
			[]change{{pdb, "      app.kubernetes.io/name: greeter", "      app.kubernetes.io/name: greeter-v2"}},
			`PodDisruptionBudget "greeter" selector does not select the pods`},
		{"PDB blocks every drain",
			[]change{{pdb, "  maxUnavailable: 1", "  minAvailable: 3"}},
			"allows no eviction"},
		{"root user",
			[]change{{deployment, "            runAsUser: 65532", "            runAsUser: 0"}},
			"runAsUser is not 65532"},
		{"writable root filesystem",
			[]change{{deployment, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"}},
			"readOnlyRootFilesystem: true"},
		{"capabilities kept",
			[]change{{deployment, "                - ALL", "                - NET_RAW"}},
			"capabilities.drop: [ALL]"},
		{"no memory limit",
			[]change{{deployment, "            limits:\n              cpu: \"1\"\n              memory: 256Mi\n", "            limits:\n              cpu: \"1\"\n"}},
			"no resources.limits.memory"},
		// kustomize's JSON 6902 replace adds a missing field; strict decoding catches it.
		{"JSON 6902 replace of a misspelt field",
			[]change{{tlsPatch, "path: /spec/template/spec/containers/0/startupProbe", "path: /spec/template/spec/containers/0/startupProbes"}},
			`overlays/example: rendered Deployment "greeter": strict decoding: unknown field "spec.template.spec.containers[0].startupProbes"`},
		{"strategic-merge patch with a misspelt field",
			[]change{{resPatch, "          resources:", "          resource:"}},
			`unknown field "spec.template.spec.containers[0].resource"`},
		{"memory limit lowered under the overload limits",
			[]change{{deployment, "              memory: 256Mi\n", "              memory: 160Mi\n"}},
			"the overload limits may commit 227 MiB"},
		{"RPC budget raised past the memory limit",
			[]change{{deployment, "--max-rpc-memory=161061273", "--max-rpc-memory=268435456"}},
			"lower --max-rpc-memory, or raise"},
		{"RPC budget left to the derived default",
			[]change{{deployment, "            - --max-rpc-memory=161061273\n", ""}},
			"does not set --max-rpc-memory"},
		{"GOMEMLIMIT at the whole memory limit",
			[]change{{deployment, "          ports:\n            - name: grpc\n", "          env:\n            - name: GOMEMLIMIT\n              valueFrom:\n                resourceFieldRef:\n                  resource: limits.memory\n          ports:\n            - name: grpc\n"}},
			"GOMEMLIMIT = limits.memory leaves none"},
		{"memory-limit flag above the container's",
			[]change{{deployment, "--max-connections=2048", "--max-connections=2048\n            - --memory-limit=536870912"}},
			"--memory-limit 536870912 exceeds resources.limits.memory"},
		{"overlay scales below the minimum",
			[]change{{overlay, "    count: 4", "    count: 2"}},
			"replicas is 2"},
		{"TLS with gRPC probes",
			[]change{{tlsPatch, "- op: replace\n  path: /spec/template/spec/containers/0/readinessProbe\n  value:\n    httpGet:\n      path: /readyz\n      port: metrics\n    periodSeconds: 2\n    timeoutSeconds: 1\n    failureThreshold: 1\n    successThreshold: 1\n", ""}},
			"the kubelet's gRPC probe speaks plaintext only"},
		{"TLS files not mounted",
			[]change{{tlsPatch, "mountPath: /etc/greeter/tls", "mountPath: /etc/tls"}},
			"--tls-cert=/etc/greeter/tls/tls.crt is under no volumeMount"},
		{"TLS key unreadable by the user",
			[]change{{deployment, "        fsGroup: 65532\n", ""}},
			"cannot read --tls-cert"},
		{"overlay image not pinned",
			[]change{{overlay, "    newTag: v1.0.0\n", ""}},
			"must pin a tag or digest"},
		{"Dockerfile runs as root",
			[]change{{dockerfile, "USER 65532:65532", "USER root"}},
			`runs as USER "root"`},
		{"Dockerfile exposes other ports",
			[]change{{dockerfile, "EXPOSE 50051 9090 8080", "EXPOSE 50051 8080"}},
			"EXPOSE 50051 8080 differs from the manifests' container ports 50051 8080 9090"},
		{"Dockerfile builds with cgo",
			[]change{{dockerfile, "ENV CGO_ENABLED=0 ", "ENV "}},
			"CGO_ENABLED=0"},
		{"Dockerfile without -trimpath",
			[]change{{dockerfile, "go build -trimpath ", "go build "}},
			"lacks -trimpath"},
		{"Dockerfile outside the workspace",
			[]change{{dockerfile, "GOTOOLCHAIN=local", "GOTOOLCHAIN=local GOWORK=off"}},
			"sets GOWORK=off"},
		{"Dockerfile without a workspace module's go.mod",
			[]change{{dockerfile, "COPY clients/greetctl/go.mod clients/greetctl/go.sum /src/clients/greetctl/\n", ""}},
			"copies no clients/greetctl/go.mod"},
		{"Dockerfile without go.work",
			[]change{{dockerfile, "COPY go.work go.work.sum /src/\n", ""}},
			"copies no go.work"},
		{"Dockerfile on a full base image",
			[]change{{dockerfile, "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12"}},
			`final image "debian:12"`},
		{"Dockerfile shell-form entrypoint",
			[]change{{dockerfile, `ENTRYPOINT ["/greeter"]`, `ENTRYPOINT /greeter`}},
			"use the exec form"},
		{"Dockerfile with a misspelt instruction",
			[]change{{dockerfile, "EXPOSE 50051 9090 8080", "EXPOS 50051 9090 8080"}},
			"unknown instruction: EXPOS"},
		{"Dockerfile with an old Go",
			[]change{{dockerfile, "ARG GO_VERSION=1.26", "ARG GO_VERSION=1.24"}},
			"older than services/greeter/go.mod's go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := copyTree(t)
			for _, c := range tc.changes {
				edit(t, root, c.file, c.old, c.new)
			}
			errs := deploycheck.Check(root, help)
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.want) {
					t.Logf("reported: %v", err)
					return
				}
			}
			t.Errorf("Check did not report %q; it reported:\n%v", tc.want, errors.Join(errs...))
		})
	}
}

// TestKustomizeErrors plants faults that kustomize itself rejects: Check
// reports kustomize's error, naming the kustomization directory, and no
// error follows from a bundle that did not render (such as the Dockerfile's
// ports differing from none).
func TestKustomizeErrors(t *testing.T) {
	type change struct{ file, old, new string }
	for _, tc := range []struct {
		name    string
		changes []change
		dir     string // the kustomization that fails to build
		want    string // in its error
	}{
		{"missing resource file",
			[]change{{baseKust, "  - pdb.yaml", "  - pdb.yaml\n  - hpa.yaml"}},
			"base", "accumulating resources from 'hpa.yaml'"},
		{"missing patch file",
			[]change{{overlay, "path: patch-tls.yaml", "path: patch-tls2.yaml"}},
			"overlays/example", "patch-tls2.yaml"},
		{"misspelt kustomization field",
			[]change{{overlay, "namespace: greeter", "namespaces: greeter"}},
			"overlays/example", `unknown field "namespaces"`},
		{"JSON 6902 patch into a list that does not exist",
			[]change{{tlsPatch, "path: /spec/template/spec/containers/0/volumeMounts", "path: /spec/template/spec/containrs/0/volumeMounts"}},
			"overlays/example", "containrs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := copyTree(t)
			for _, c := range tc.changes {
				edit(t, root, c.file, c.old, c.new)
			}
			prefix := deploycheck.KubernetesDir + "/" + tc.dir + ": kustomize build: "
			errs := deploycheck.Check(root, help)
			found := false
			for _, err := range errs {
				if strings.HasPrefix(err.Error(), prefix) && strings.Contains(err.Error(), tc.want) {
					t.Logf("reported: %v", err)
					found = true
				} else if !strings.Contains(err.Error(), ": kustomize build: ") {
					t.Errorf("an error that is not kustomize's: %v", err)
				}
			}
			if !found {
				t.Errorf("Check did not report %q with %q; it reported:\n%v", prefix, tc.want, errors.Join(errs...))
			}
		})
	}
}

// TestCheckCopyIsClean makes sure the fault-planting tests start from a
// copy that passes, so each failure above is the planted fault's.
func TestCheckCopyIsClean(t *testing.T) {
	root := copyTree(t)
	if errs := deploycheck.Check(root, help); len(errs) > 0 {
		t.Fatalf("the unmodified copy fails:\n%v", errors.Join(errs...))
	}
	n := 0
	_ = filepath.WalkDir(filepath.Join(root, "deploy"), func(_ string, d fs.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			n++
		}
		return nil
	})
	if n == 0 {
		t.Fatal("copied no file")
	}
}

func TestMultiDocumentFiles(t *testing.T) {
	root := copyTree(t)
	base := filepath.Join(root, "deploy", "kubernetes", "base")
	// Move both Services into one multi-document file.
	svc, err := os.ReadFile(filepath.Join(base, "service.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hl, err := os.ReadFile(filepath.Join(base, "service-headless.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "services.yaml"), []byte("---\n"+string(svc)+"---\n# the headless one\n"+string(hl)+"---\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	edit(t, root, baseKust, "  - service.yaml\n  - service-headless.yaml\n", "  - services.yaml\n")
	if errs := deploycheck.Check(root, help); len(errs) > 0 {
		t.Fatalf("multi-document services.yaml: %v", errors.Join(errs...))
	}
	b, errs := deploycheck.Render(filepath.Join(root, deploycheck.KubernetesDir), "overlays/example")
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	if len(b.Services) != 2 {
		t.Fatalf("rendered %d Services, want 2", len(b.Services))
	}
	for _, s := range b.Services {
		if s.Namespace != "greeter" {
			t.Errorf("Service %s: namespace %q, want the overlay's greeter", s.Name, s.Namespace)
		}
	}
	// A broken second document is reported with the object it renders.
	edit(t, root, "deploy/kubernetes/base/services.yaml", "clusterIP: None", "clusterIP: None\n  clusterIPs: none")
	errs = deploycheck.Check(root, help)
	want := `deploy/kubernetes/base: rendered Service "greeter-headless": json: cannot unmarshal string into Go struct field ServiceSpec.spec.clusterIPs`
	if len(errs) == 0 || !strings.Contains(errors.Join(errs...).Error(), want) {
		t.Fatalf("want an error %q, got %v", want, errors.Join(errs...))
	}
}

func TestRenderOverlay(t *testing.T) {
	b, errs := deploycheck.Render(filepath.Join(repoRoot(), deploycheck.KubernetesDir), "overlays/example")
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	if len(b.Deployments) != 1 {
		t.Fatalf("%d Deployments", len(b.Deployments))
	}
	d := b.Deployments[0]
	c := d.Spec.Template.Spec.Containers[0]
	if d.Namespace != "greeter" || *d.Spec.Replicas != 4 || c.Image != "registry.example.com/acme/greeter:v1.0.0" {
		t.Errorf("overlay rendered namespace %q, replicas %d, image %q", d.Namespace, *d.Spec.Replicas, c.Image)
	}
	if got := c.Args[len(c.Args)-2:]; got[0] != "--tls-cert=/etc/greeter/tls/tls.crt" || got[1] != "--tls-key=/etc/greeter/tls/tls.key" {
		t.Errorf("TLS args not appended: %q", c.Args)
	}
	if c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("TLS overlay readiness probe: %+v", c.ReadinessProbe)
	}
	if mem := c.Resources.Limits.Memory().String(); mem != "512Mi" {
		t.Errorf("memory limit %s, want the overlay's 512Mi", mem)
	}
}

// stagingOverlay is an overlay written with kustomize features that the
// example overlay does not use: a name prefix, labels that reach the
// selectors, a digest, replicas, a ConfigMap generator whose hashed name
// kustomize writes into the Deployment, and inline strategic-merge patches.
const stagingOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: greeter-staging
namePrefix: staging-
resources:
  - ../../base
labels:
  - pairs:
      environment: staging
    includeSelectors: true
    includeTemplates: true
commonAnnotations:
  owner: greeter-team
images:
  - name: greeter
    newName: registry.example.com/acme/greeter
    digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
replicas:
  - name: greeter
    count: 5
configMapGenerator:
  - name: greeter-motd
    literals:
      - motd=hello from staging
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: greeter
      spec:
        template:
          spec:
            terminationGracePeriodSeconds: 45
            volumes:
              - name: motd
                configMap:
                  name: greeter-motd
            containers:
              - name: greeter
                volumeMounts:
                  - name: motd
                    mountPath: /etc/greeter/motd
                    readOnly: true
  - patch: |-
      apiVersion: v1
      kind: Service
      metadata:
        name: greeter-headless
      spec:
        publishNotReadyAddresses: false
`

// TestOverlayWithAnyKustomizeFeature renders and checks an overlay that
// uses kustomize features beyond the example's: deploycheck renders with
// kustomize itself, so it dictates nothing about how overlays are written,
// and its checks apply to what those features produce.
func TestOverlayWithAnyKustomizeFeature(t *testing.T) {
	const dir = "overlays/staging"
	const kust = "deploy/kubernetes/" + dir + "/kustomization.yaml"
	newOverlay := func(t *testing.T) string {
		root := copyTree(t)
		path := filepath.Join(root, kust)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(stagingOverlay), 0o644); err != nil {
			t.Fatal(err)
		}
		return root
	}

	root := newOverlay(t)
	if errs := deploycheck.Check(root, help); len(errs) > 0 {
		t.Fatalf("the staging overlay fails:\n%v", errors.Join(errs...))
	}
	b, errs := deploycheck.Render(filepath.Join(root, deploycheck.KubernetesDir), dir)
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	if len(b.Deployments) != 1 || len(b.ConfigMaps) != 1 || len(b.Services) != 2 || len(b.PDBs) != 1 {
		t.Fatalf("rendered %d Deployments, %d ConfigMaps, %d Services, %d PDBs", len(b.Deployments), len(b.ConfigMaps), len(b.Services), len(b.PDBs))
	}
	d, cm := b.Deployments[0], b.ConfigMaps[0]
	spec := d.Spec.Template.Spec
	if !b.Overlay || d.Name != "staging-greeter" || d.Namespace != "greeter-staging" || *d.Spec.Replicas != 5 {
		t.Errorf("Deployment %s/%s, replicas %d, overlay %v", d.Namespace, d.Name, *d.Spec.Replicas, b.Overlay)
	}
	if d.Spec.Selector.MatchLabels["environment"] != "staging" || d.Spec.Template.Labels["environment"] != "staging" || d.Spec.Template.Annotations["owner"] != "greeter-team" {
		t.Errorf("labels: selector %v, pod %v, annotations %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels, d.Spec.Template.Annotations)
	}
	for _, s := range b.Services {
		if s.Spec.Selector["environment"] != "staging" {
			t.Errorf("Service %s selects %v: the labels did not reach its selector", s.Name, s.Spec.Selector)
		}
	}
	if sel := b.PDBs[0].Spec.Selector.MatchLabels; sel["environment"] != "staging" {
		t.Errorf("PodDisruptionBudget selects %v", sel)
	}
	if !strings.HasPrefix(cm.Name, "staging-greeter-motd-") || cm.Data["motd"] != "hello from staging" {
		t.Errorf("generated ConfigMap %s: %v", cm.Name, cm.Data)
	}
	var motd string
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			motd = v.ConfigMap.Name
		}
	}
	if motd != cm.Name {
		t.Errorf("the Deployment mounts ConfigMap %q, kustomize generated %q", motd, cm.Name)
	}
	if c := spec.Containers[0]; *spec.TerminationGracePeriodSeconds != 45 || !strings.HasSuffix(c.Image, "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") || len(c.VolumeMounts) != 1 {
		t.Errorf("grace %d, image %s, mounts %v", *spec.TerminationGracePeriodSeconds, c.Image, c.VolumeMounts)
	}

	// Faults planted through those features are caught like any other.
	for _, tc := range []struct{ name, old, new, want string }{
		{"replicas", "count: 5", "count: 2", "replicas is 2"},
		{"inline patch", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 25", "terminationGracePeriodSeconds is 25"},
		{"patched Service", "publishNotReadyAddresses: false", "publishNotReadyAddresses: true", "set publishNotReadyAddresses: false"},
		{"labels on the Services' selectors only",
			"    includeSelectors: true\n    includeTemplates: true\n",
			"    fields:\n      - kind: Service\n        path: spec/selector\n        create: true\n",
			`Service "staging-greeter" selects map[app.kubernetes.io/component:server app.kubernetes.io/name:greeter environment:staging], which matches no pod`},
		{"labels into a LabelSelector as if it were a map",
			"    includeSelectors: true\n    includeTemplates: true\n",
			"    fields:\n      - kind: Deployment\n        path: spec/selector\n        create: true\n",
			`rendered Deployment "staging-greeter": strict decoding: unknown field "spec.selector.environment"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newOverlay(t)
			edit(t, root, kust, tc.old, tc.new)
			errs := deploycheck.Check(root, help)
			for _, err := range errs {
				if strings.HasPrefix(err.Error(), deploycheck.KubernetesDir+"/"+dir+": ") && strings.Contains(err.Error(), tc.want) {
					t.Logf("reported: %v", err)
					return
				}
			}
			t.Errorf("Check did not report %q in %s; it reported:\n%v", tc.want, dir, errors.Join(errs...))
		})
	}
}
