package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/acme/greeter/test/bench/load"
	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/process"
	"github.com/acme/greeter/test/harness/procstat"
)

// The capacity rows: well-behaved slow streams held at once, against the
// greeter with its production defaults planned for its default memory
// limit (256 MiB: no --memory-limit, unlike the CPU rows) and the bare
// server. What hostile clients do to the same servers is the overload
// table's (overload.go).
const (
	// slowStreamData is a well-behaved stream held about 4s: 5 greetings
	// 1s apart.
	slowStreamData = `{"name":"you","count":5,"interval":"1s"}`
	// streamsPerConn is how many streams a capacity run puts on one
	// connection: the greeter's --max-concurrent-streams.
	streamsPerConn = 100
)

// capacityRun is one server's capacity run.
type capacityRun struct {
	ok, total int64
	peakRSS   int64
}

// capacityRow is one capacity measurement: runs[0] the greeter's, runs[1]
// the bare server's, one per round.
type capacityRow struct {
	streams int
	runs    [2][]capacityRun
}

// capacityRows measures the capacity rows into rep: each number of slow
// streams.
func (b *bench) capacityRows(ctx context.Context, rep *report) error {
	for _, n := range b.cfg.Capacity {
		r, err := b.capacity(ctx, n)
		if err != nil {
			return fmt.Errorf("capacity %s: %w", r.name(), err)
		}
		rep.capacity = append(rep.capacity, r)
	}
	return nil
}

// capacity measures n slow streams Rounds times, alternating greeter and
// bare, each on a fresh server.
func (b *bench) capacity(ctx context.Context, n int) (capacityRow, error) {
	row := capacityRow{streams: n}
	for range b.cfg.Rounds {
		for i, name := range []string{binaries.Greeter.Name, binaries.BareServer.Name} {
			var args []string
			if name == binaries.Greeter.Name {
				args = b.capacityArgs
			}
			srv, err := process.StartWith(ctx, b.bins[name], args)
			if err != nil {
				return row, err
			}
			r, err := b.slowStreams(ctx, srv, n)
			_ = srv.Stop(30 * time.Second)
			if err != nil {
				return row, fmt.Errorf("%s: %w", name, err)
			}
			row.runs[i] = append(row.runs[i], r)
			fmt.Fprintf(b.cfg.Progress, "capacity %s %s: %d/%d OK, peak RSS %.1f MiB\n", row.name(), name, r.ok, r.total, mib(r.peakRSS))
		}
	}
	return row, nil
}

func (r capacityRow) name() string {
	return strconv.Itoa(r.streams) + " streams"
}

// slowStreams holds n slow streams at once with ghz, streamsPerConn a
// connection.
func (b *bench) slowStreams(ctx context.Context, srv *process.Server, n int) (capacityRun, error) {
	if err := procstat.ResetPeak(srv.Pid()); err != nil {
		return capacityRun{}, err
	}
	rep, err := b.ghz(ctx, []string{
		"--call", ghzCalls[load.ServerStream].method, "--data", slowStreamData,
		"--concurrency", strconv.Itoa(n), "--total", strconv.Itoa(n),
		"--connections", strconv.Itoa(max(1, n/streamsPerConn)),
	}, srv.Addr, time.Minute)
	if err != nil {
		return capacityRun{}, err
	}
	s, err := procstat.Read(srv.Pid())
	if err != nil {
		return capacityRun{}, err
	}
	return capacityRun{ok: rep.StatusCodes["OK"], total: int64(n), peakRSS: s.PeakRSS}, nil
}

// ghz runs ghz with args against addr, meant to take about d, and reads
// its report; unlike a CPU row, failed calls are counted, not an error.
func (b *bench) ghz(ctx context.Context, args []string, addr string, d time.Duration) (ghzReport, error) {
	argv := append([]string{b.bins[binaries.Ghz.Name], "--insecure", "--protoset", b.protoset, "--timeout", "60s", "--format", "json"}, args...)
	out, err := runGenerator(ctx, append(argv, addr), d, nil)
	if err != nil {
		return ghzReport{}, err
	}
	var rep ghzReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return rep, fmt.Errorf("ghz's report: %w: %.300q", err, out)
	}
	return rep, nil
}

// capacityMarkdown is the report's capacity section.
func capacityMarkdown(w io.Writer, rows []capacityRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "### Capacity at the default memory plan (256 MiB)\n\n"+
		"Fresh servers for each run, the greeter with its production defaults and no `--memory-limit` (planned for 256 MiB: the overload limits on), alternating with bare. "+
		"ghz holds that many well-behaved `SayHelloStream` calls at once (`%s`, a stream held about 4 s), %d a connection, from 127.0.0.1; OK is the share that succeeded. "+
		"Peak RSS is the server's. Goal (issue 21): 10,000 streams ≥ 99.9 %% OK under 200 MiB. What hostile clients do is the overload table's.\n\n",
		slowStreamData, streamsPerConn)
	b := &strings.Builder{}
	b.WriteString("| load | greeter OK | greeter peak RSS | bare OK | bare peak RSS |\n|---|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(b, "| %s |", r.name())
		for i := range 2 {
			ok, total, rss := int64(0), int64(0), int64(0)
			for _, run := range r.runs[i] {
				ok, total = ok+run.ok, total+run.total
				rss = max(rss, run.peakRSS)
			}
			fmt.Fprintf(b, " %.2f %% (%d/%d) | %.1f MiB |", 100*float64(ok)/float64(max(1, total)), ok, total, mib(rss))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nOK and peak RSS over all rounds (the worst RSS of any round).\n\n")
	io.WriteString(w, b.String())
}
