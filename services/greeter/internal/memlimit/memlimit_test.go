package memlimit

import (
	"errors"
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func TestLimit(t *testing.T) {
	const fallback = 256 << 20
	broken := errors.New("permission denied")
	for _, tc := range []struct {
		name    string
		flag    int64
		cgroup  func() (uint64, error)
		want    int64
		source  Source
		wantErr bool
	}{
		{"flag wins", 512 << 20, func() (uint64, error) { return 1 << 30, nil }, 512 << 20, SourceFlag, false},
		{"cgroup", 0, func() (uint64, error) { return 300 << 20, nil }, 300 << 20, SourceCgroup, false},
		{"cgroup v1 unlimited", 0, func() (uint64, error) { return 9223372036854771712, nil }, fallback, SourceDefault, false},
		{"no limit", 0, func() (uint64, error) { return 0, memlimit.ErrNoLimit }, fallback, SourceDefault, false},
		{"no cgroup", 0, func() (uint64, error) { return 0, memlimit.ErrNoCgroup }, fallback, SourceDefault, false},
		{"unreadable", 0, func() (uint64, error) { return 0, broken }, fallback, SourceDefault, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, source, err := Limit(tc.flag, tc.cgroup, fallback)
			if got != tc.want || source != tc.source || (err != nil) != tc.wantErr {
				t.Errorf("Limit = %d, %s, %v; want %d, %s, error %v", got, source, err, tc.want, tc.source, tc.wantErr)
			}
		})
	}
}

func TestSetGoMemLimit(t *testing.T) {
	for _, v := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	got, err := SetGoMemLimit(256 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(256 << 20 * 9 / 10); got != want {
		t.Errorf("GOMEMLIMIT %d, want %d (90%% of 256 MiB)", got, want)
	}
}
