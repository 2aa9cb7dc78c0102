// Package procstat reads what Linux's /proc tells of a process: its CPU
// time and memory, for benchmarks that measure a server from outside, and
// the ports it listens on, for tests of what a server exposes.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's CPU times: USER_HZ, which is
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// Sample is one reading of a process.
type Sample struct {
	// CPU is user plus system CPU time used since the process started.
	CPU time.Duration
	// RSS is the resident set size now, in bytes.
	RSS int64
	// PeakRSS is the highest RSS since the start or the last ResetPeak.
	PeakRSS int64
}

// Read samples process pid.
func Read(pid int) (Sample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Sample{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, the 12th and 13th after it.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return Sample{}, errors.New("procstat: malformed /proc/pid/stat")
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return Sample{}, errors.New("procstat: short /proc/pid/stat")
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return Sample{}, fmt.Errorf("procstat: cpu time %q: %w", f, err)
		}
		ticks += n
	}
	s := Sample{CPU: time.Duration(ticks) * clockTick}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Sample{}, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return Sample{}, fmt.Errorf("procstat: %s %q: %w", key, value, err)
		}
		if key == "VmRSS" {
			s.RSS = kib << 10
		} else {
			s.PeakRSS = kib << 10
		}
	}
	return s, nil
}

// AllowedCPUs lists the CPUs process pid may run on (Cpus_allowed_list of
// /proc/<pid>/status), in increasing order; pid 0 is the calling process.
func AllowedCPUs(pid int) ([]int, error) {
	name := "/proc/self/status"
	if pid != 0 {
		name = fmt.Sprintf("/proc/%d/status", pid)
	}
	status, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		list, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		return parseCPUList(strings.TrimSpace(list))
	}
	return nil, errors.New("procstat: no Cpus_allowed_list in " + name)
}

// parseCPUList reads the kernel's list format: "0-3,8,10-11".
func parseCPUList(list string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("procstat: CPU list %q: %w", list, err)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				return nil, fmt.Errorf("procstat: CPU list %q: bad range %q", list, part)
			}
		}
		for c := first; c <= last; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// ResetPeak restarts PeakRSS from the current RSS (Linux clear_refs 5).
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// ListeningPorts lists the TCP ports process pid listens on, from the
// socket inodes of /proc/<pid>/fd matched against /proc/net/tcp{,6}.
func ListeningPorts(pid int) ([]int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// local_address rem_address st ... inode (field 9)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			_, portHex, _ := strings.Cut(f[1], ":")
			port, err := strconv.ParseUint(portHex, 16, 16)
			if err == nil {
				ports = append(ports, int(port))
			}
		}
	}
	return ports, nil
}
