package procstat

import (
	"slices"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	for list, want := range map[string][]int{
		"0":           {0},
		"0-1":         {0, 1},
		"0-2,8,10-11": {0, 1, 2, 8, 10, 11},
	} {
		got, err := parseCPUList(list)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", list, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "1-x"} {
		if got, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) = %v, want an error", bad, got)
		}
	}
}
