// Package deploycheck checks the greeter's deployment files against the
// real server: the Kubernetes manifests of deploy/kubernetes (every
// kustomization, rendered, decoded strictly into the official API types)
// and the image recipe deploy/docker/greeter.Dockerfile. The flags the
// manifests pass, the ports they declare and probe, and the grace period
// they give a drain are compared with what `greeter --help` says the binary
// accepts and defaults to, so a renamed flag or a longer drain timeout in
// the server breaks a test here rather than a rollout.
//
// Every error says what to fix.
package deploycheck

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Layout of the repository that Check reads.
const (
	KubernetesDir = "deploy/kubernetes"
	Dockerfile    = "deploy/docker/greeter.Dockerfile"
)

// What the manifests must provide.
const (
	// ContainerName is the name of the server's container in the pod.
	ContainerName = "greeter"
	// MinReplicas keeps two replicas serving while one drains or moves.
	MinReplicas = 3
	// RunAsUser is the unprivileged user of the image (distroless nonroot).
	RunAsUser = 65532
	// AdminShutdown bounds what the server does after the drain: it gives
	// the admin HTTP server up to 5s to close (services/greeter/cmd/greeter).
	AdminShutdown = 5 * time.Second
)

// HealthServices are the grpc.health.v1 service names the server reports;
// a gRPC probe asking for any other name gets NOT_FOUND and always fails.
var HealthServices = []string{"", "acme.greeter.v1.GreeterService", "helloworld.Greeter"}

// Flag is one flag of `greeter --help`.
type Flag struct {
	Name    string
	Env     string
	Default string
	Bool    bool
}

// Flags are the binary's flags by name.
type Flags map[string]Flag

var (
	helpFlagLine = regexp.MustCompile(`^ {1,4}--?([a-z0-9][a-z0-9-]*)(?:[ \t]+(\S+))?[ \t]*$`)
	helpEnvLine  = regexp.MustCompile(`^\s+env ([A-Z0-9_]+)(?:, default (".*"))?\s*$`)
)

// requiredFlags are the flags the checks reason about; a help text without
// them is not the greeter's.
var requiredFlags = []string{"grpc-addr", "metrics-addr", "drain-timeout", "drain-delay", "log-format", "tls-cert", "tls-key", "tls-client-ca", "version"}

// ParseHelp reads the flags, their environment variables and defaults from
// the output of `greeter --help`.
func ParseHelp(help string) (Flags, error) {
	flags := Flags{}
	var cur string
	for line := range strings.SplitSeq(help, "\n") {
		if m := helpFlagLine.FindStringSubmatch(line); m != nil {
			cur = m[1]
			flags[cur] = Flag{Name: cur, Bool: m[2] == ""}
			continue
		}
		if m := helpEnvLine.FindStringSubmatch(line); m != nil && cur != "" {
			f := flags[cur]
			f.Env = m[1]
			if m[2] != "" {
				d, err := strconv.Unquote(m[2])
				if err != nil {
					return nil, fmt.Errorf("help: default of --%s: %w", cur, err)
				}
				f.Default = d
			}
			flags[cur] = f
		}
	}
	var missing []string
	for _, name := range requiredFlags {
		if _, ok := flags[name]; !ok {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("greeter --help lists no %s: update deploycheck (ParseHelp) to the server's help format or flags", strings.Join(missing, ", "))
	}
	return flags, nil
}

// Settings are the server flags a container sets, and their effective
// values (args over environment over the binary's defaults).
type Settings struct {
	Values map[string]string
	// Source says where an explicitly set flag came from: "args" or "env".
	Source map[string]string
}

// ContainerSettings works out the flags container c gives the server.
func ContainerSettings(c *corev1.Container, flags Flags) (Settings, []error) {
	s := Settings{Values: map[string]string{}, Source: map[string]string{}}
	var errs []error
	for name, f := range flags {
		s.Values[name] = f.Default
	}
	if len(c.Command) > 0 && !slices.Equal(c.Command, []string{"/greeter"}) {
		errs = append(errs, fmt.Errorf("container %q: command %q overrides the image's entrypoint /greeter: remove command and pass flags in args", c.Name, c.Command))
	}
	for _, ef := range c.EnvFrom {
		errs = append(errs, fmt.Errorf("container %q: envFrom %v can set GREETER_ variables deploycheck cannot see: set server flags in args", c.Name, ef))
	}
	byEnv := map[string]Flag{}
	for _, f := range flags {
		if f.Env != "" {
			byEnv[f.Env] = f
		}
	}
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "GREETER_") {
			continue
		}
		f, ok := byEnv[e.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("container %q: env %s is not the variable of any greeter flag (see greeter --help): fix the name or remove it", c.Name, e.Name))
			continue
		}
		if e.ValueFrom != nil {
			errs = append(errs, fmt.Errorf("container %q: env %s takes its value from elsewhere (valueFrom): deploycheck needs a literal value or an arg --%s", c.Name, e.Name, f.Name))
			continue
		}
		s.Values[f.Name], s.Source[f.Name] = e.Value, "env"
	}
	for i := 0; i < len(c.Args); i++ {
		a := c.Args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			errs = append(errs, fmt.Errorf("container %q: arg %q is not a flag: greeter takes no positional arguments", c.Name, a))
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		f, ok := flags[name]
		if !ok {
			errs = append(errs, fmt.Errorf("container %q: arg %q: greeter has no flag --%s (see greeter --help): fix or remove it", c.Name, a, name))
			continue
		}
		if !hasValue {
			if f.Bool {
				value = "true"
			} else if i+1 < len(c.Args) {
				i++
				value = c.Args[i]
			} else {
				errs = append(errs, fmt.Errorf("container %q: arg %q needs a value: write --%s=VALUE", c.Name, a, name))
				continue
			}
		}
		if name == "version" || name == "help" {
			errs = append(errs, fmt.Errorf("container %q: arg %q makes the server exit at once: remove it", c.Name, a))
		}
		s.Values[name], s.Source[name] = value, "args"
	}
	return s, errs
}

// Check checks the manifests under root/deploy/kubernetes (every
// kustomization, rendered) and root/deploy/docker/greeter.Dockerfile
// against the flags of greeterHelp, the output of `greeter --help`.
func Check(root, greeterHelp string) []error {
	flags, err := ParseHelp(greeterHelp)
	if err != nil {
		return []error{err}
	}
	kroot := filepath.Join(root, KubernetesDir)
	dirs, err := FindKustomizations(kroot)
	if err != nil {
		return []error{err}
	}
	if len(dirs) == 0 {
		return []error{fmt.Errorf("%s: no kustomization.yaml found", KubernetesDir)}
	}
	var errs []error
	var ports []int32
	var user int64 = RunAsUser
	for _, dir := range dirs {
		b, renderErrs := Render(kroot, dir)
		for _, e := range renderErrs {
			errs = append(errs, fmt.Errorf("%s/%w", KubernetesDir, e))
		}
		if b == nil || len(renderErrs) > 0 {
			continue
		}
		bundleErrs, p := CheckBundle(b, flags)
		for _, e := range bundleErrs {
			errs = append(errs, fmt.Errorf("%s/%s: %w", KubernetesDir, dir, e))
		}
		if dir == "base" || ports == nil {
			ports = p
		}
	}
	errs = append(errs, CheckDockerfile(root, ports, user)...)
	return errs
}

// CheckBundle checks one rendered kustomization. It also returns the
// server container's ports, which the image must expose.
func CheckBundle(b *Bundle, flags Flags) ([]error, []int32) {
	var errs []error
	if len(b.Deployments) != 1 {
		return []error{fmt.Errorf("want exactly one Deployment of the greeter, found %d", len(b.Deployments))}, nil
	}
	d := b.Deployments[0]
	c := container(d)
	if c == nil {
		return []error{fmt.Errorf("Deployment %q has no container named %q: name the server's container %q", d.Name, ContainerName, ContainerName)}, nil
	}
	dc := deploymentCheck{d: d, c: c, flags: flags, bundle: b}
	errs = append(errs, dc.run()...)
	var ports []int32
	for _, p := range c.Ports {
		ports = append(ports, p.ContainerPort)
	}
	return errs, ports
}

func container(d *appsv1.Deployment) *corev1.Container {
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == ContainerName {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	return nil
}

type deploymentCheck struct {
	d      *appsv1.Deployment
	c      *corev1.Container
	flags  Flags
	bundle *Bundle
	s      Settings
	errs   []error

	grpcPort, metricsPort int32
	httpPort              int32         // 0: --http-addr empty, the HTTP port off
	drain                 time.Duration // drain-delay + drain-timeout
	tls                   bool
}

func (k *deploymentCheck) fail(format string, args ...any) {
	k.errs = append(k.errs, fmt.Errorf("Deployment %q: "+format, append([]any{k.d.Name}, args...)...))
}

func (k *deploymentCheck) run() []error {
	var errs []error
	k.s, errs = ContainerSettings(k.c, k.flags)
	for _, e := range errs {
		k.fail("%v", e)
	}
	k.replicasAndRollout()
	k.serverFlags()
	k.containerPorts()
	k.probes()
	k.grace()
	k.podTemplate()
	k.memoryBudget()
	k.tlsFiles()
	k.services()
	k.pdbs()
	return k.errs
}

func (k *deploymentCheck) replicasAndRollout() {
	d := k.d
	if d.Spec.Replicas == nil || *d.Spec.Replicas < MinReplicas {
		got := "unset (1)"
		if d.Spec.Replicas != nil {
			got = strconv.Itoa(int(*d.Spec.Replicas))
		}
		k.fail("replicas is %s: set spec.replicas to at least %d, so that two replicas serve while one drains", got, MinReplicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	switch {
	case err != nil || d.Spec.Selector == nil || sel.Empty():
		k.fail("spec.selector must be a non-empty label selector")
	case !sel.Matches(labels.Set(d.Spec.Template.Labels)):
		k.fail("spec.selector %v does not match the pod template's labels %v: make them agree", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	st := d.Spec.Strategy
	if st.Type != "" && st.Type != appsv1.RollingUpdateDeploymentStrategyType {
		k.fail("strategy %s: use RollingUpdate with maxUnavailable 0", st.Type)
		return
	}
	if st.RollingUpdate == nil || st.RollingUpdate.MaxUnavailable == nil {
		k.fail("strategy.rollingUpdate.maxUnavailable is unset (default 25%%): set it to 0, so a rollout never serves with fewer replicas")
		return
	}
	if v, err := intstr.GetScaledValueFromIntOrPercent(st.RollingUpdate.MaxUnavailable, 100, true); err != nil || v != 0 {
		k.fail("strategy.rollingUpdate.maxUnavailable is %s: set it to 0, so a rollout never serves with fewer replicas", st.RollingUpdate.MaxUnavailable.String())
	}
	if st.RollingUpdate.MaxSurge != nil {
		if v, err := intstr.GetScaledValueFromIntOrPercent(st.RollingUpdate.MaxSurge, 100, true); err == nil && v == 0 {
			k.fail("strategy.rollingUpdate.maxSurge is 0 with maxUnavailable 0: the rollout could never start; set maxSurge to 1")
		}
	}
}

func (k *deploymentCheck) duration(name string) time.Duration {
	v := k.s.Values[name]
	d, err := time.ParseDuration(v)
	if err != nil {
		k.fail("--%s %q is not a duration: write e.g. --%s=20s", name, v, name)
	}
	return d
}

func addrPort(addr string) (int32, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q is not a number", port)
	}
	return int32(n), nil
}

func (k *deploymentCheck) serverFlags() {
	for _, name := range []string{"drain-timeout", "drain-delay", "log-format"} {
		if _, ok := k.s.Source[name]; !ok {
			k.fail("container %q does not set --%s: set it explicitly in args (default %q), so the grace period arithmetic does not hang on a default that can change", k.c.Name, name, k.flags[name].Default)
		}
	}
	if v := k.s.Values["log-format"]; v != "json" {
		k.fail("--log-format is %q: set --log-format=json, which log collectors parse", v)
	}
	k.drain = k.duration("drain-delay") + k.duration("drain-timeout")
	var err error
	if k.grpcPort, err = addrPort(k.s.Values["grpc-addr"]); err != nil || k.grpcPort == 0 {
		k.fail("--grpc-addr %q: want a fixed port such as :50051 (%v)", k.s.Values["grpc-addr"], err)
	}
	if k.s.Values["metrics-addr"] == "" {
		k.fail("--metrics-addr is empty: the admin server (/metrics, /healthz, /readyz) must run; set --metrics-addr=:9090")
	} else if k.metricsPort, err = addrPort(k.s.Values["metrics-addr"]); err != nil || k.metricsPort == 0 {
		k.fail("--metrics-addr %q: want a fixed port such as :9090 (%v)", k.s.Values["metrics-addr"], err)
	}
	// The HTTP port (Connect, gRPC-Web) is on unless --http-addr is empty,
	// its default from --help included.
	if addr := k.s.Values["http-addr"]; addr != "" {
		if k.httpPort, err = addrPort(addr); err != nil || k.httpPort == 0 {
			k.fail("--http-addr %q: want a fixed port such as :8080, or empty to turn the HTTP port off (%v)", addr, err)
		}
	}
	k.tls = k.s.Values["tls-cert"] != ""
}

func (k *deploymentCheck) portNamed(name string) *corev1.ContainerPort {
	for i := range k.c.Ports {
		if k.c.Ports[i].Name == name {
			return &k.c.Ports[i]
		}
	}
	return nil
}

func (k *deploymentCheck) containerPorts() {
	for _, want := range []struct {
		name, flag string
		port       int32
	}{{"grpc", "grpc-addr", k.grpcPort}, {"metrics", "metrics-addr", k.metricsPort}, {"http", "http-addr", k.httpPort}} {
		if want.name == "http" && want.port == 0 {
			continue // --http-addr is empty: no HTTP port
		}
		p := k.portNamed(want.name)
		switch {
		case p == nil:
			k.fail("container %q declares no port named %q: add ports: [{name: %s, containerPort: %d}] (the --%s port)", k.c.Name, want.name, want.name, want.port, want.flag)
		case want.port != 0 && p.ContainerPort != want.port:
			k.fail("container port %q is %d but --%s listens on %d: make them the same", want.name, p.ContainerPort, want.flag, want.port)
		case p.Protocol != "" && p.Protocol != corev1.ProtocolTCP:
			k.fail("container port %q has protocol %s: gRPC and HTTP need TCP", want.name, p.Protocol)
		}
	}
	ann := k.d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" {
		k.fail("the pod template lacks the annotation prometheus.io/scrape: \"true\"")
	}
	if ann["prometheus.io/port"] != strconv.Itoa(int(k.metricsPort)) {
		k.fail("annotation prometheus.io/port is %q but metrics are served on %d: make them the same", ann["prometheus.io/port"], k.metricsPort)
	}
	if p, ok := ann["prometheus.io/path"]; ok && p != "/metrics" {
		k.fail("annotation prometheus.io/path is %q: the server serves /metrics", p)
	}
}

// resolvePort resolves a probe's or Service's target port (a number or a
// container port name) to a container port number.
func (k *deploymentCheck) resolvePort(p intstr.IntOrString) (int32, bool) {
	if p.Type == intstr.String {
		if cp := k.portNamed(p.StrVal); cp != nil {
			return cp.ContainerPort, true
		}
		return 0, false
	}
	return p.IntVal, true
}

func (k *deploymentCheck) probes() {
	type probe struct {
		kind string
		p    *corev1.Probe
		// paths are the admin endpoints an httpGet probe of this kind may use.
		paths []string
	}
	for _, pr := range []probe{
		{"startupProbe", k.c.StartupProbe, []string{"/healthz", "/readyz"}},
		{"readinessProbe", k.c.ReadinessProbe, []string{"/readyz"}},
		{"livenessProbe", k.c.LivenessProbe, []string{"/healthz"}},
	} {
		p := pr.p
		if p == nil {
			if pr.kind != "startupProbe" {
				k.fail("container %q has no %s: add one with grpc: {port: %d}", k.c.Name, pr.kind, k.grpcPort)
			}
			continue
		}
		switch {
		case p.GRPC != nil:
			if p.GRPC.Port != k.grpcPort {
				k.fail("%s probes gRPC port %d but the server listens on %d (--grpc-addr, container port grpc): make them the same", pr.kind, p.GRPC.Port, k.grpcPort)
			}
			svc := ""
			if p.GRPC.Service != nil {
				svc = *p.GRPC.Service
			}
			if !slices.Contains(HealthServices, svc) {
				k.fail("%s asks health service %q, which the server does not report (it would always fail): use one of %q", pr.kind, svc, HealthServices)
			}
			if k.tls {
				k.fail("%s is a gRPC probe but the server serves TLS (--tls-cert): the kubelet's gRPC probe speaks plaintext only and would always fail; probe the admin server instead: httpGet {path: %s, port: metrics}", pr.kind, pr.paths[0])
			}
			if pr.kind == "livenessProbe" {
				// The health service is NOT_SERVING for the whole drain; a
				// liveness probe on it must not kill a draining pod.
				period, threshold := int32(10), int32(3)
				if p.PeriodSeconds != 0 {
					period = p.PeriodSeconds
				}
				if p.FailureThreshold != 0 {
					threshold = p.FailureThreshold
				}
				if window := time.Duration(period*(threshold-1)) * time.Second; window < k.drain {
					k.fail("livenessProbe (gRPC health, NOT_SERVING while draining) can fail for good %s after the drain starts, before drain-delay + drain-timeout (%s) ends: raise periodSeconds x (failureThreshold - 1) to at least %s", window, k.drain, k.drain)
				}
			}
		case p.HTTPGet != nil:
			port, ok := k.resolvePort(p.HTTPGet.Port)
			if !ok || port != k.metricsPort {
				k.fail("%s gets http port %s, which is not the metrics port %d (--metrics-addr): probe port: metrics", pr.kind, p.HTTPGet.Port.String(), k.metricsPort)
			}
			if !slices.Contains(pr.paths, p.HTTPGet.Path) {
				k.fail("%s gets %q: use %s (the admin server's /readyz answers 503 while draining, /healthz 200 while the process answers)", pr.kind, p.HTTPGet.Path, strings.Join(pr.paths, " or "))
			}
			if p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
				k.fail("%s uses HTTPS: the admin server is plain HTTP", pr.kind)
			}
		default:
			k.fail("%s must be a grpc (or, with TLS, an httpGet on the metrics port) probe: the distroless image has no shell for exec probes and a TCP probe does not see a drain", pr.kind)
		}
	}
}

func (k *deploymentCheck) grace() {
	grace := 30 * time.Second // the API default
	if g := k.d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	need := k.drain + AdminShutdown
	if grace <= need {
		k.fail("terminationGracePeriodSeconds is %d but the server may take drain-delay + drain-timeout (%s) + %s to close the admin server = %s after SIGTERM: set terminationGracePeriodSeconds above %d (or shorten --drain-timeout / --drain-delay)",
			int(grace.Seconds()), k.drain, AdminShutdown, need, int(need.Seconds()))
	}
}

func (k *deploymentCheck) podTemplate() {
	spec := &k.d.Spec.Template.Spec
	podLabels := labels.Set(k.d.Spec.Template.Labels)
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := k.c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	nonRoot := csc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		k.fail("runAsNonRoot is not true: set securityContext.runAsNonRoot: true")
	}
	user := csc.RunAsUser
	if user == nil {
		user = psc.RunAsUser
	}
	if user == nil || *user != RunAsUser {
		k.fail("runAsUser is not %d: set securityContext.runAsUser: %d, the image's nonroot user", RunAsUser, RunAsUser)
	}
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		k.fail("container %q: set securityContext.readOnlyRootFilesystem: true (the server writes no files)", k.c.Name)
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		k.fail("container %q: set securityContext.allowPrivilegeEscalation: false", k.c.Name)
	}
	if csc.Privileged != nil && *csc.Privileged {
		k.fail("container %q: privileged: remove it", k.c.Name)
	}
	if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0 {
		k.fail("container %q: set securityContext.capabilities.drop: [ALL] and add none", k.c.Name)
	}
	seccomp := csc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		k.fail("set securityContext.seccompProfile.type: RuntimeDefault")
	}

	req, lim := k.c.Resources.Requests, k.c.Resources.Limits
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := req[r]; !ok || q.IsZero() {
			k.fail("container %q has no resources.requests.%s: set it, the scheduler places pods by requests", k.c.Name, r)
		}
	}
	if q, ok := lim[corev1.ResourceMemory]; !ok || q.IsZero() {
		k.fail("container %q has no resources.limits.memory: set it", k.c.Name)
	} else if r, ok := req[corev1.ResourceMemory]; ok && r.Cmp(q) > 0 {
		k.fail("container %q requests more memory (%s) than its limit (%s)", k.c.Name, r.String(), q.String())
	}

	spread := false
	for _, tsc := range spec.TopologySpreadConstraints {
		if sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector); err == nil && tsc.LabelSelector != nil && !sel.Empty() && sel.Matches(podLabels) {
			spread = true
		} else {
			k.fail("topologySpreadConstraint on %s has a labelSelector that does not select the greeter's pods %v: fix it", tsc.TopologyKey, k.d.Spec.Template.Labels)
		}
	}
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		terms := a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
		for _, t := range terms {
			if sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector); err == nil && t.LabelSelector != nil && sel.Matches(podLabels) {
				spread = true
			}
		}
	}
	if !spread {
		k.fail("the replicas may all land on one node: add topologySpreadConstraints (or podAntiAffinity) selecting the pod labels %v", k.d.Spec.Template.Labels)
	}

	name, tag, digest := splitImage(k.c.Image)
	if name == "" {
		k.fail("container %q has no image", k.c.Name)
	}
	if k.bundle.Overlay && digest == "" && (tag == "" || tag == "latest") {
		k.fail("container %q runs image %q: an overlay that deploys must pin a tag or digest (kustomization images: newTag)", k.c.Name, k.c.Image)
	}
}

// What the server's overload limits may commit at worst besides what
// costs_gen.go holds (generated from the server's admission package): the
// runtime's baseline, which --max-rpc-memory does not count (it measures
// from what the server held at its start), measured against the real binary
// (docs/reliability.md, test/e2e/overload).
const (
	RuntimeReserve = 32 << 20
	// MemoryShare is how much of the memory limit the limits may commit:
	// the server sets GOMEMLIMIT to 90% of it. What --max-rpc-memory
	// measures is the Go heap (garbage included) and the stacks, so the
	// collector's room is inside it, not beside it.
	MemoryShare = 0.9
	// healthKinds: --max-health-streams bounds Health/Watch and
	// Health/Check each.
	healthKinds = 2
)

// memoryBudget checks the overload limits against the container's memory
// limit: set explicitly (the derived defaults depend on a limit deploycheck
// would have to guess), within the limit, and leaving the GC its room.
func (k *deploymentCheck) memoryBudget() {
	if _, ok := k.c.Resources.Limits[corev1.ResourceMemory]; !ok {
		return // reported by podTemplate
	}
	for _, e := range k.c.Env {
		if e.Name == "GOMEMLIMIT" || e.Name == "AUTOMEMLIMIT" {
			k.fail("container %q sets %s: remove it; the server sets GOMEMLIMIT to 90%% of its cgroup memory limit itself, leaving room for what the Go runtime does not count (GOMEMLIMIT = limits.memory leaves none)", k.c.Name, e.Name)
		}
	}
	limit := k.c.Resources.Limits.Memory().Value()
	intFlag := func(name string) int64 {
		v := k.s.Values[name]
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			k.fail("--%s %q is not a whole number", name, v)
		}
		return n
	}
	for _, name := range []string{"max-rpc-memory", "max-connections"} {
		if _, ok := k.s.Source[name]; !ok || intFlag(name) == 0 {
			k.fail("container %q does not set --%s: set it explicitly in args (bytes or a count, not 0), so the memory arithmetic against resources.limits.memory does not hang on a default derived at run time", k.c.Name, name)
			return
		}
	}
	planned := limit
	if m := intFlag("memory-limit"); m > 0 {
		if m > limit {
			k.fail("--memory-limit %d exceeds resources.limits.memory %s (%d): the kernel would kill the pod before the server's limits bind; lower it or remove it (the server reads the cgroup limit)", m, k.c.Resources.Limits.Memory().String(), limit)
		}
		planned = min(m, limit)
	}
	// Connections' memory is part of what --max-rpc-memory measures, and
	// past the hard limit their count does not grow (a new one only takes
	// an idle one's place), so they are inside the hard limit; health RPCs
	// are admitted by count, so they are added beside it.
	rpc, health := intFlag("max-rpc-memory"), intFlag("max-health-streams")
	hard := rpc * HardLimitPercent / 100
	worst := hard + healthKinds*health*HealthCost + RuntimeReserve
	if allowed := int64(float64(planned) * MemoryShare); worst > allowed {
		k.fail("the overload limits may commit %d MiB (everyone is refused at %d%% of --max-rpc-memory %d MiB = %d MiB, + %d health RPCs x %d KiB + %d MiB runtime), more than %.0f%% of the memory limit %s (%d MiB, GOMEMLIMIT): lower --max-rpc-memory, or raise resources.limits.memory",
			worst>>20, HardLimitPercent, rpc>>20, hard>>20, healthKinds*health, HealthCost>>10, RuntimeReserve>>20, MemoryShare*100, k.c.Resources.Limits.Memory().String(), allowed>>20)
	}
}

// tlsFiles checks that the TLS files the flags name are mounted, and
// readable by the non-root user.
func (k *deploymentCheck) tlsFiles() {
	spec := &k.d.Spec.Template.Spec
	for _, name := range []string{"tls-cert", "tls-key", "tls-client-ca"} {
		path := k.s.Values[name]
		if path == "" {
			continue
		}
		var mount *corev1.VolumeMount
		for i := range k.c.VolumeMounts {
			m := &k.c.VolumeMounts[i]
			if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
				mount = m
			}
		}
		if mount == nil {
			k.fail("--%s=%s is under no volumeMount of container %q: mount the Secret holding it", name, path, k.c.Name)
			continue
		}
		var vol *corev1.Volume
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == mount.Name {
				vol = &spec.Volumes[i]
			}
		}
		if vol == nil {
			k.fail("volumeMount %q (for --%s) names no volume of the pod: add it to spec.template.spec.volumes", mount.Name, name)
			continue
		}
		if vol.Secret == nil {
			continue
		}
		mode := int32(0o644)
		if vol.Secret.DefaultMode != nil {
			mode = *vol.Secret.DefaultMode
		}
		psc := spec.SecurityContext
		groupRead := psc != nil && psc.FSGroup != nil && mode&0o040 != 0
		if mode&0o004 == 0 && !groupRead {
			k.fail("Secret volume %q has mode %#o: user %d cannot read --%s; set securityContext.fsGroup: %d (with group read) or defaultMode 0444", vol.Name, mode, RunAsUser, name, RunAsUser)
		}
	}
}

func (k *deploymentCheck) services() {
	podLabels := labels.Set(k.d.Spec.Template.Labels)
	headless, regular := 0, 0
	for _, svc := range k.bundle.Services {
		if len(svc.Spec.Selector) == 0 {
			k.fail("Service %q has no selector: select the pod labels %v", svc.Name, k.d.Spec.Template.Labels)
			continue
		}
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			k.fail("Service %q selects %v, which matches no pod of the Deployment (labels %v): fix spec.selector", svc.Name, svc.Spec.Selector, k.d.Spec.Template.Labels)
			continue
		}
		isHeadless := svc.Spec.ClusterIP == corev1.ClusterIPNone
		if isHeadless {
			headless++
			if svc.Spec.PublishNotReadyAddresses {
				k.fail("headless Service %q publishes not-ready addresses: clients would keep draining and starting pods in DNS; set publishNotReadyAddresses: false", svc.Name)
			}
		} else if svc.Spec.Type == "" || svc.Spec.Type == corev1.ServiceTypeClusterIP {
			regular++
		}
		var grpc, http *corev1.ServicePort
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port) // the API default
			}
			tp, ok := k.resolvePort(target)
			if !ok {
				k.fail("Service %q port %q targets %s, which the container does not declare: use a container port name (grpc)", svc.Name, sp.Name, target.String())
				continue
			}
			if sp.Name == "http" {
				http = sp
				if tp != k.httpPort {
					k.fail("Service %q port http targets %d but the server's HTTP port is %d (--http-addr): set targetPort: http", svc.Name, tp, k.httpPort)
				}
			}
			if sp.Name == "grpc" {
				grpc = sp
				if tp != k.grpcPort {
					k.fail("Service %q port grpc targets %d but the server listens on %d: set targetPort: grpc", svc.Name, tp, k.grpcPort)
				}
				// Clients of a headless Service dial the pod IPs with the
				// port of their target, never the targetPort.
				if isHeadless && sp.Port != k.grpcPort {
					k.fail("headless Service %q port grpc is %d but pods listen on %d: clients dial pod IPs with the Service port, so set port: %d", svc.Name, sp.Port, k.grpcPort, k.grpcPort)
				}
			}
		}
		if grpc == nil {
			k.fail("Service %q has no port named grpc: add {name: grpc, port: %d, targetPort: grpc}", svc.Name, k.grpcPort)
		}
		// Browsers and HTTP callers reach the pods through the ClusterIP
		// Service (or an Ingress in front of it).
		if http == nil && k.httpPort != 0 && !isHeadless {
			k.fail("Service %q has no port named http, but the server serves HTTP on %d (--http-addr): add {name: http, port: %d, targetPort: http}, or set --http-addr= to turn the port off", svc.Name, k.httpPort, k.httpPort)
		}
	}
	if headless == 0 {
		k.fail("no headless Service (clusterIP: None) selects the pods: client-side load balancing (dns:/// + round_robin) needs one; add service-headless.yaml")
	}
	if regular == 0 {
		k.fail("no ClusterIP Service selects the pods: add service.yaml for clients that do not balance themselves")
	}
}

func (k *deploymentCheck) pdbs() {
	podLabels := labels.Set(k.d.Spec.Template.Labels)
	var mine []*policyv1.PodDisruptionBudget
	for _, p := range k.bundle.PDBs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || p.Spec.Selector == nil || sel.Empty() || !sel.Matches(podLabels) {
			k.fail("PodDisruptionBudget %q selector does not select the pods (labels %v): fix spec.selector", p.Name, k.d.Spec.Template.Labels)
			continue
		}
		mine = append(mine, p)
	}
	if len(mine) != 1 {
		k.fail("want one PodDisruptionBudget selecting the pods, found %d", len(mine))
		return
	}
	p := mine[0]
	replicas := 1
	if k.d.Spec.Replicas != nil {
		replicas = int(*k.d.Spec.Replicas)
	}
	var allowed int
	switch {
	case p.Spec.MaxUnavailable != nil && p.Spec.MinAvailable != nil:
		k.fail("PodDisruptionBudget %q sets both minAvailable and maxUnavailable: keep maxUnavailable", p.Name)
		return
	case p.Spec.MaxUnavailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MaxUnavailable, replicas, true)
		if err != nil {
			k.fail("PodDisruptionBudget %q maxUnavailable: %v", p.Name, err)
			return
		}
		allowed = v
	case p.Spec.MinAvailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MinAvailable, replicas, true)
		if err != nil {
			k.fail("PodDisruptionBudget %q minAvailable: %v", p.Name, err)
			return
		}
		allowed = replicas - v
	default:
		k.fail("PodDisruptionBudget %q sets neither minAvailable nor maxUnavailable: set maxUnavailable: 1", p.Name)
		return
	}
	if allowed < 1 {
		k.fail("PodDisruptionBudget %q allows no eviction of %d replicas: node drains would block forever; allow one (maxUnavailable: 1)", p.Name, replicas)
	}
	if replicas-allowed < 2 {
		k.fail("PodDisruptionBudget %q lets evictions leave %d of %d replicas: keep at least 2 serving (lower maxUnavailable or raise replicas)", p.Name, replicas-allowed, replicas)
	}
}

// GreeterContainers returns, for every kustomization under root, the
// server container of its Deployment, for running the binary with the
// container's args and environment.
func GreeterContainers(root string) (map[string]*corev1.Container, error) {
	kroot := filepath.Join(root, KubernetesDir)
	dirs, err := FindKustomizations(kroot)
	if err != nil {
		return nil, err
	}
	out := map[string]*corev1.Container{}
	for _, dir := range dirs {
		b, errs := Render(kroot, dir)
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		for _, d := range b.Deployments {
			if c := container(d); c != nil {
				out[dir] = c
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no greeter container found", KubernetesDir)
	}
	return out, nil
}
