package deploycheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/pkg/util"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Bundle is what a kustomization directory renders to, decoded into the
// official Kubernetes API types.
type Bundle struct {
	// Dir is the kustomization directory, relative to the root.
	Dir string
	// Overlay reports a kustomization that builds on other kustomizations
	// (it lists a directory among its resources).
	Overlay bool

	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	PDBs            []*policyv1.PodDisruptionBudget
	ServiceAccounts []*corev1.ServiceAccount
	ConfigMaps      []*corev1.ConfigMap
}

// kinds maps apiVersion/kind to a constructor of its Go type. Every object
// kustomize renders must be one of these: an unknown kind is an error
// rather than an object nobody checked.
var kinds = map[string]func() any{
	"apps/v1/Deployment":            func() any { return new(appsv1.Deployment) },
	"v1/Service":                    func() any { return new(corev1.Service) },
	"v1/ServiceAccount":             func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                  func() any { return new(corev1.ConfigMap) },
	"v1/Namespace":                  func() any { return new(corev1.Namespace) },
	"policy/v1/PodDisruptionBudget": func() any { return new(policyv1.PodDisruptionBudget) },
}

// FindKustomizations returns every directory under root (relative to root)
// that holds a kustomization file (any name kustomize recognizes), in
// lexical order.
func FindKustomizations(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && slices.Contains(konfig.RecognizedKustomizationFileNames(), d.Name()) {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(dirs) // a directory with two kustomization files is kustomize's error to report
	return slices.Compact(dirs), err
}

// Render builds the kustomization in root/dir with kustomize itself
// (krusty, the library behind `kustomize build` and `kubectl kustomize`,
// with its default options: no plugins, files only from within the
// kustomization's root), so an overlay may use any kustomize feature.
// Every object rendered is then decoded strictly into its Kubernetes type,
// as the API server's strict field validation would: kustomize itself does
// not know the schemas and passes unknown or miscased fields through.
func Render(root, dir string) (*Bundle, []error) {
	dir = filepath.ToSlash(filepath.Clean(dir))
	abs, err := filepath.Abs(filepath.Join(root, dir))
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", dir, err)}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: kustomize build: %w", dir, err)}
	}
	b := &Bundle{Dir: dir}
	if b.Overlay, err = buildsOnKustomizations(abs); err != nil {
		return nil, []error{fmt.Errorf("%s: %w", dir, err)}
	}
	var errs []error
	for _, r := range m.Resources() {
		id := fmt.Sprintf("%s %q", r.GetKind(), r.GetName())
		newT, ok := kinds[r.GetApiVersion()+"/"+r.GetKind()]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: renders %s of %s, a kind deploycheck does not know: add its Go type to kinds in render.go", dir, id, r.GetApiVersion()))
			continue
		}
		js, err := r.MarshalJSON()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: rendered %s: %w", dir, id, err))
			continue
		}
		v := newT()
		if err := decodeStrictJSON(js, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: rendered %s: %w", dir, id, err))
			continue
		}
		switch v := v.(type) {
		case *appsv1.Deployment:
			b.Deployments = append(b.Deployments, v)
		case *corev1.Service:
			b.Services = append(b.Services, v)
		case *policyv1.PodDisruptionBudget:
			b.PDBs = append(b.PDBs, v)
		case *corev1.ServiceAccount:
			b.ServiceAccounts = append(b.ServiceAccounts, v)
		case *corev1.ConfigMap:
			b.ConfigMaps = append(b.ConfigMaps, v)
		}
	}
	return b, errs
}

// buildsOnKustomizations reports whether the kustomization in dir (which
// kustomize has just built) lists another kustomization directory among
// its resources. It reads the file with kustomize's own types.
func buildsOnKustomizations(dir string) (bool, error) {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		var k types.Kustomization
		if err := k.Unmarshal(data); err != nil {
			return false, fmt.Errorf("%s: %w", name, err)
		}
		k.FixKustomization() // the deprecated bases: are resources too
		for _, res := range k.Resources {
			if st, err := os.Stat(filepath.Join(dir, res)); err == nil && st.IsDir() {
				return true, nil
			}
		}
		return false, nil
	}
	return false, errors.New("no kustomization file")
}

// decodeStrictJSON decodes js into v as the API server's strict field
// validation does: unknown, duplicate and miscased fields are errors.
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

// splitImage splits "registry:5000/name:tag@sha256:..." into name, tag and
// digest, as kustomize's images transformer does.
func splitImage(image string) (name, tag, digest string) {
	return util.SplitImageName(image)
}
