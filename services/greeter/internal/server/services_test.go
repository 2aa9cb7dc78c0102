package server

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
)

// TestServiceDescsAreRegistered: admission is told the methods of
// serviceDescs before the server exists; they must be the ones it serves.
func TestServiceDescsAreRegistered(t *testing.T) {
	sorted := func(info map[string]grpc.ServiceInfo) map[string]grpc.ServiceInfo {
		for name, s := range info {
			s.Methods = slices.SortedFunc(slices.Values(s.Methods), func(a, b grpc.MethodInfo) int { return strings.Compare(a.Name, b.Name) })
			info[name] = s
		}
		return info
	}
	for _, on := range []bool{true, false} {
		s, err := New(WithReflection(on))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sorted(serviceInfo(serviceDescs(on))), sorted(s.grpc.GetServiceInfo()); !reflect.DeepEqual(got, want) {
			t.Errorf("reflection %v: serviceDescs' methods\n%v\nthe server's\n%v", on, got, want)
		}
	}
}
