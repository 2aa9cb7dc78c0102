package deploycheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// KustomizationFile is the name kustomize looks for in a directory.
const KustomizationFile = "kustomization.yaml"

// Kustomization holds the kustomization.yaml fields deploycheck understands.
// It is decoded strictly: a field it does not know is an error, so a
// kustomization never does something this checker silently ignores.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources,omitempty"`
	Images     []Image  `json:"images,omitempty"`
	Patches    []Patch  `json:"patches,omitempty"`
}

// Image is an entry of a kustomization's images: a new name, tag or digest
// for the containers whose image is Name.
type Image struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// Patch is an entry of a kustomization's patches. deploycheck applies JSON
// 6902 patches (a list of op/path/value) to the objects Target selects.
type Patch struct {
	Path   string       `json:"path"`
	Target *PatchTarget `json:"target,omitempty"`
}

// PatchTarget selects the objects a patch applies to.
type PatchTarget struct {
	Group   string `json:"group,omitempty"`
	Version string `json:"version,omitempty"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`
}

// Op is one JSON 6902 operation.
type Op struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
	From  string          `json:"from,omitempty"`
}

// Object is one manifest object: where it came from, its raw JSON (what
// patches edit) and its identity.
type Object struct {
	// Source is the file the object was read from, relative to the root
	// given to Render, with "#n" for the n-th document of a multi-document
	// file (from 1).
	Source     string
	APIVersion string
	Kind       string
	Name       string
	raw        map[string]any
}

// Bundle is what a kustomization directory renders to, decoded into the
// official Kubernetes API types.
type Bundle struct {
	// Dir is the kustomization directory, relative to the root.
	Dir string
	// Overlay reports a kustomization that builds on other kustomizations
	// (it lists a directory among its resources).
	Overlay bool

	Objects         []*Object
	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	PDBs            []*policyv1.PodDisruptionBudget
	ServiceAccounts []*corev1.ServiceAccount
}

// kinds maps apiVersion/kind to a constructor of its Go type. Every object
// of the manifests must be one of these: an unknown kind is an error rather
// than an object nobody checked.
var kinds = map[string]func() any{
	"apps/v1/Deployment":            func() any { return new(appsv1.Deployment) },
	"v1/Service":                    func() any { return new(corev1.Service) },
	"v1/ServiceAccount":             func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                  func() any { return new(corev1.ConfigMap) },
	"v1/Namespace":                  func() any { return new(corev1.Namespace) },
	"policy/v1/PodDisruptionBudget": func() any { return new(policyv1.PodDisruptionBudget) },
}

// clusterScoped kinds get no namespace from a kustomization.
var clusterScoped = map[string]bool{"Namespace": true}

// FindKustomizations returns every directory under root (relative to root)
// that holds a kustomization.yaml, in lexical order.
func FindKustomizations(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == KustomizationFile {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return nil
	})
	return dirs, err
}

// Render builds the kustomization in root/dir the way `kustomize build`
// would for the subset of kustomize that Kustomization describes: the
// resources (files and other kustomization directories), JSON 6902 patches,
// the namespace and image overrides. Every file is decoded strictly into its
// Kubernetes type, before and after patching.
func Render(root, dir string) (*Bundle, []error) {
	return render(root, dir, map[string]bool{})
}

func render(root, dir string, visiting map[string]bool) (*Bundle, []error) {
	dir = filepath.ToSlash(filepath.Clean(dir))
	if visiting[dir] {
		return nil, []error{fmt.Errorf("%s: kustomization cycle: %s includes itself", dir, dir)}
	}
	visiting[dir] = true
	defer delete(visiting, dir)

	kpath := filepath.Join(root, dir, KustomizationFile)
	data, err := os.ReadFile(kpath)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", dir, err)}
	}
	var k Kustomization
	if err := decodeStrict(data, &k); err != nil {
		return nil, []error{fmt.Errorf("%s/%s: %w (deploycheck knows the fields apiVersion, kind, namespace, resources, images and patches; teach it any other in render.go)", dir, KustomizationFile, err)}
	}
	var errs []error
	kfile := dir + "/" + KustomizationFile
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		errs = append(errs, fmt.Errorf("%s: want apiVersion kustomize.config.k8s.io/v1beta1 and kind Kustomization, got %q %q", kfile, k.APIVersion, k.Kind))
	}
	b := &Bundle{Dir: dir}
	if len(k.Resources) == 0 {
		errs = append(errs, fmt.Errorf("%s: lists no resources", kfile))
	}
	for _, res := range k.Resources {
		rel := filepath.ToSlash(filepath.Join(dir, res))
		if strings.Contains(res, "://") || strings.HasPrefix(res, "github.com/") {
			errs = append(errs, fmt.Errorf("%s: resource %q is remote: keep every resource in this repository", kfile, res))
			continue
		}
		st, err := os.Stat(filepath.Join(root, rel))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: resource %q does not exist (%s): fix the path or add the file", kfile, res, rel))
			continue
		}
		if st.IsDir() {
			b.Overlay = true
			sub, subErrs := render(root, rel, visiting)
			errs = append(errs, subErrs...)
			if sub != nil {
				b.Objects = append(b.Objects, sub.Objects...)
			}
			continue
		}
		objs, fileErrs := readObjects(root, rel)
		errs = append(errs, fileErrs...)
		b.Objects = append(b.Objects, objs...)
	}
	for _, p := range k.Patches {
		errs = append(errs, applyPatch(root, dir, kfile, p, b.Objects)...)
	}
	if k.Namespace != "" {
		for _, o := range b.Objects {
			if !clusterScoped[o.Kind] {
				meta(o.raw)["namespace"] = k.Namespace
			}
		}
	}
	for _, img := range k.Images {
		if img.Name == "" {
			errs = append(errs, fmt.Errorf("%s: an images entry has no name", kfile))
			continue
		}
		if n := setImage(b.Objects, img); n == 0 {
			errs = append(errs, fmt.Errorf("%s: images entry %q matches no container image: fix its name", kfile, img.Name))
		}
	}
	// Decode the result: a patch can break an object as well as a file can.
	for _, o := range b.Objects {
		typed, err := decodeObject(o)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s rendered in %s: %w", o.Source, dir, err))
			continue
		}
		switch v := typed.(type) {
		case *appsv1.Deployment:
			b.Deployments = append(b.Deployments, v)
		case *corev1.Service:
			b.Services = append(b.Services, v)
		case *policyv1.PodDisruptionBudget:
			b.PDBs = append(b.PDBs, v)
		case *corev1.ServiceAccount:
			b.ServiceAccounts = append(b.ServiceAccounts, v)
		}
	}
	return b, errs
}

// readObjects reads every document of a YAML file (relative to root).
func readObjects(root, rel string) ([]*Object, []error) {
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, []error{err}
	}
	var objs []*Object
	var errs []error
	docs := splitDocuments(data)
	for i, doc := range docs {
		src := rel
		if len(docs) > 1 {
			src = fmt.Sprintf("%s#%d", rel, i+1)
		}
		o, err := parseObject(src, doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		if _, err := decodeObject(o); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no object in the file", rel))
	}
	return objs, errs
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// splitDocuments splits a multi-document YAML stream, dropping documents
// that hold only comments or blank lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(data), -1) {
		empty := true
		for line := range strings.SplitSeq(d, "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func parseObject(src string, doc []byte) (*Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := unmarshalNumbers(js, &raw); err != nil {
		return nil, fmt.Errorf("not a YAML mapping: %w", err)
	}
	o := &Object{Source: src, raw: raw}
	o.APIVersion, _ = raw["apiVersion"].(string)
	o.Kind, _ = raw["kind"].(string)
	if md, ok := raw["metadata"].(map[string]any); ok {
		o.Name, _ = md["name"].(string)
	}
	if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
		return nil, errors.New("every object needs apiVersion, kind and metadata.name")
	}
	return o, nil
}

// decodeObject decodes o strictly into its Kubernetes type, as the API
// server's strict field validation does: unknown fields, duplicate fields
// and fields whose case differs from the API's are errors.
func decodeObject(o *Object) (any, error) {
	newT, ok := kinds[o.APIVersion+"/"+o.Kind]
	if !ok || newT == nil {
		return nil, fmt.Errorf("%s %s: deploycheck does not know this kind; add its Go type to kinds in render.go", o.APIVersion, o.Kind)
	}
	js, err := json.Marshal(o.raw)
	if err != nil {
		return nil, err
	}
	v := newT()
	if err := decodeStrictJSON(js, v); err != nil {
		return nil, fmt.Errorf("%s %q: %w", o.Kind, o.Name, err)
	}
	return v, nil
}

// decodeStrict decodes YAML into v, rejecting unknown, duplicate and
// miscased fields.
func decodeStrict(data []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	return decodeStrictJSON(js, v)
}

func decodeStrictJSON(js []byte, v any) error {
	strictErrs, err := kjson.UnmarshalStrict(js, v, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("strict decoding: %s (fix the field name or remove it)", strings.Join(msgs, "; "))
	}
	return nil
}

func unmarshalNumbers(js []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	return d.Decode(v)
}

func meta(raw map[string]any) map[string]any {
	md, ok := raw["metadata"].(map[string]any)
	if !ok {
		md = map[string]any{}
		raw["metadata"] = md
	}
	return md
}

func applyPatch(root, dir, kfile string, p Patch, objs []*Object) []error {
	rel := filepath.ToSlash(filepath.Join(dir, p.Path))
	if p.Path == "" {
		return []error{fmt.Errorf("%s: a patches entry has no path (inline patches are not supported by deploycheck)", kfile)}
	}
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return []error{fmt.Errorf("%s: patch %q does not exist (%s): fix the path or add the file", kfile, p.Path, rel)}
	}
	if p.Target == nil || p.Target.Kind == "" || p.Target.Name == "" {
		return []error{fmt.Errorf("%s: patch %q needs a target with kind and name", kfile, p.Path)}
	}
	var ops []Op
	if err := decodeStrict(data, &ops); err != nil {
		return []error{fmt.Errorf("%s: not a JSON 6902 patch (a list of op/path/value): %w; write overlay patches as JSON 6902 so deploycheck can apply them", rel, err)}
	}
	matched := 0
	var errs []error
	for _, o := range objs {
		t := p.Target
		if o.Kind != t.Kind || o.Name != t.Name {
			continue
		}
		group, version := splitAPIVersion(o.APIVersion)
		if (t.Group != "" && t.Group != group) || (t.Version != "" && t.Version != version) {
			continue
		}
		matched++
		doc := any(o.raw)
		for i, op := range ops {
			doc, err = applyOp(doc, op)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: operation %d (%s %s) on %s %q: %w", rel, i+1, op.Op, op.Path, o.Kind, o.Name, err))
				break
			}
		}
		if m, ok := doc.(map[string]any); ok {
			o.raw = m
		}
	}
	if matched == 0 {
		errs = append(errs, fmt.Errorf("%s: patch %q targets %s %q, which no resource defines", kfile, p.Path, p.Target.Kind, p.Target.Name))
	}
	return errs
}

func splitAPIVersion(av string) (group, version string) {
	if i := strings.LastIndex(av, "/"); i >= 0 {
		return av[:i], av[i+1:]
	}
	return "", av
}

// applyOp applies one JSON 6902 operation (add, remove, replace, test) and
// returns the new document.
func applyOp(doc any, op Op) (any, error) {
	tokens, err := pointer(op.Path)
	if err != nil {
		return nil, err
	}
	var value any
	if op.Op != "remove" {
		if len(op.Value) == 0 {
			return nil, errors.New("no value")
		}
		if err := unmarshalNumbers(op.Value, &value); err != nil {
			return nil, err
		}
	}
	switch op.Op {
	case "add", "replace", "remove", "test":
	default:
		return nil, fmt.Errorf("unsupported op %q: deploycheck applies add, remove, replace and test", op.Op)
	}
	if len(tokens) == 0 {
		if op.Op == "add" || op.Op == "replace" {
			return value, nil
		}
		return nil, errors.New("cannot remove or test the whole document")
	}
	return patchAt(doc, tokens, op.Op, value)
}

func pointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("path %q must start with /", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

func patchAt(node any, tokens []string, op string, value any) (any, error) {
	tok, last := tokens[0], len(tokens) == 1
	switch n := node.(type) {
	case map[string]any:
		child, exists := n[tok]
		if last {
			switch op {
			case "add":
				n[tok] = value
			case "replace":
				if !exists {
					return nil, fmt.Errorf("replace: %q does not exist (use add)", tok)
				}
				n[tok] = value
			case "remove":
				if !exists {
					return nil, fmt.Errorf("remove: %q does not exist", tok)
				}
				delete(n, tok)
			case "test":
				if !jsonEqual(child, value) {
					return nil, fmt.Errorf("test: %q differs", tok)
				}
			}
			return n, nil
		}
		if !exists {
			return nil, fmt.Errorf("%q does not exist", tok)
		}
		updated, err := patchAt(child, tokens[1:], op, value)
		if err != nil {
			return nil, err
		}
		n[tok] = updated
		return n, nil
	case []any:
		if last && op == "add" && tok == "-" {
			return append(n, value), nil
		}
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i > len(n) || (i == len(n) && !(last && op == "add")) {
			return nil, fmt.Errorf("index %q out of range (list of %d)", tok, len(n))
		}
		if last {
			switch op {
			case "add":
				n = append(n[:i], append([]any{value}, n[i:]...)...)
			case "replace":
				n[i] = value
			case "remove":
				n = append(n[:i], n[i+1:]...)
			case "test":
				if !jsonEqual(n[i], value) {
					return nil, fmt.Errorf("test: index %d differs", i)
				}
			}
			return n, nil
		}
		updated, err := patchAt(n[i], tokens[1:], op, value)
		if err != nil {
			return nil, err
		}
		n[i] = updated
		return n, nil
	default:
		return nil, fmt.Errorf("%q: parent is not an object or a list", tok)
	}
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// setImage applies a kustomize images entry to every container and init
// container image named img.Name; it returns how many it changed.
func setImage(objs []*Object, img Image) int {
	n := 0
	for _, o := range objs {
		spec, _ := dig(o.raw, "spec", "template", "spec").(map[string]any)
		if spec == nil {
			continue
		}
		for _, key := range []string{"containers", "initContainers"} {
			list, _ := spec[key].([]any)
			for _, c := range list {
				cm, _ := c.(map[string]any)
				image, _ := cm["image"].(string)
				name, tag, digest := splitImage(image)
				if name != img.Name {
					continue
				}
				if img.NewName != "" {
					name = img.NewName
				}
				if img.NewTag != "" {
					tag, digest = img.NewTag, ""
				}
				if img.Digest != "" {
					tag, digest = "", img.Digest
				}
				switch {
				case digest != "":
					image = name + "@" + digest
				case tag != "":
					image = name + ":" + tag
				default:
					image = name
				}
				cm["image"] = image
				n++
			}
		}
	}
	return n
}

// splitImage splits "registry:5000/name:tag@sha256:..." into name, tag and
// digest.
func splitImage(image string) (name, tag, digest string) {
	name = image
	if i := strings.Index(name, "@"); i >= 0 {
		name, digest = name[:i], name[i+1:]
	}
	if i := strings.LastIndex(name, ":"); i >= 0 && !strings.Contains(name[i:], "/") {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag, digest
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
