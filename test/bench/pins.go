package bench

import (
	"fmt"
	"os/exec"
	"strconv"

	"github.com/acme/greeter/test/harness/procstat"
)

// pins says where the server under test and the load generator run: one
// CPU each, the first two this process may use, or both unpinned (empty)
// with the reason.
type pins struct {
	server, client string
	why            string // why unpinned
}

// choosePins pins when it can: taskset(1) (util-linux) is installed and
// this process may use two CPUs or more.
func choosePins() pins {
	if _, err := exec.LookPath("taskset"); err != nil {
		return pins{why: "taskset (util-linux) is not installed"}
	}
	cpus, err := procstat.AllowedCPUs(0)
	if err != nil {
		return pins{why: err.Error()}
	}
	if len(cpus) < 2 {
		return pins{why: fmt.Sprintf("this process may use only CPU %v", cpus)}
	}
	return pins{server: strconv.Itoa(cpus[0]), client: strconv.Itoa(cpus[1])}
}

func (p pins) pinned() bool { return p.server != "" }

// describe is the log line that says how the run is pinned.
func (p pins) describe() string {
	if !p.pinned() {
		return "not pinning the server and the load generator to CPUs of their own: " + p.why +
			"; they share the machine, and server CPU per request includes the cost of contention"
	}
	return fmt.Sprintf("server under test on CPU %s, load generator on CPU %s (taskset)", p.server, p.client)
}
