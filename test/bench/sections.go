package bench

import (
	"slices"
	"strings"
)

// Marker separates the hand-written part of the report file
// (docs/performance.md) from the part the benchmark writes.
const Marker = "<!-- greetbench -->"

// heading opens the part the benchmark writes.
const heading = "## Load benchmark (`make bench`)\n\n"

// The sections of the report, one a table or a group of tables measured
// together, in report order.
const (
	sectionCPU        = "cpu"
	sectionHTTP       = "http"
	sectionThroughput = "throughput"
	sectionCapacity   = "capacity"
	sectionOverload   = "overload"
	sectionIdle       = "idle"
)

var sectionOrder = []string{sectionCPU, sectionHTTP, sectionThroughput, sectionCapacity, sectionOverload, sectionIdle}

// Report is what a run measured, as markdown: a section for each table,
// each between markers of its own, so that a run of some tables replaces
// only theirs in the report file.
type Report struct {
	sections []section
}

type section struct {
	name, markdown string
}

func (s section) begin() string { return "<!-- greetbench:" + s.name + " -->" }
func (s section) end() string   { return "<!-- /greetbench:" + s.name + " -->" }

// block is the section between its markers.
func (s section) block() string {
	return s.begin() + "\n\n" + strings.TrimSpace(s.markdown) + "\n\n" + s.end()
}

// complete reports whether the run measured every table.
func (r Report) complete() bool { return len(r.sections) == len(sectionOrder) }

// Markdown is the whole report: the heading and every section measured.
func (r Report) Markdown() string {
	var b strings.Builder
	b.WriteString(heading)
	for _, s := range r.sections {
		b.WriteString(s.block() + "\n\n")
	}
	return b.String()
}

// Update returns doc, the report file's text, with the report in it. What
// comes before the line Marker stays. A run of every table replaces all that
// follows it, as does any run when nothing does; a run of some replaces
// only their sections, and puts those the file lacks in their place in
// report order. A file without Marker becomes the report.
func (r Report) Update(doc string) string {
	i := lineIndex(doc, Marker)
	if i < 0 {
		return Marker + "\n\n" + r.Markdown()
	}
	head, generated := doc[:i+len(Marker)], doc[i+len(Marker):]
	if r.complete() || strings.TrimSpace(generated) == "" {
		return head + "\n\n" + r.Markdown()
	}
	for _, s := range r.sections {
		b := lineIndex(generated, s.begin())
		e := lineIndex(generated, s.end())
		if b >= 0 && e > b {
			generated = generated[:b] + s.block() + generated[e+len(s.end()):]
			continue
		}
		if next := nextSection(generated, s.name); next >= 0 {
			generated = generated[:next] + s.block() + "\n\n" + generated[next:]
			continue
		}
		generated = strings.TrimRight(generated, "\n") + "\n\n" + s.block() + "\n"
	}
	return head + generated
}

// nextSection is where, in generated, the first section that follows
// section name in report order begins, or -1 if none is there.
func nextSection(generated, name string) int {
	i := slices.Index(sectionOrder, name)
	for _, later := range sectionOrder[i+1:] {
		if at := lineIndex(generated, section{name: later}.begin()); at >= 0 {
			return at
		}
	}
	return -1
}

// lineIndex is where line first stands on a line of its own in text, or
// -1: the hand-written part may quote a marker in its prose.
func lineIndex(text, line string) int {
	for from := 0; ; {
		i := strings.Index(text[from:], line)
		if i < 0 {
			return -1
		}
		i += from
		end := i + len(line)
		if (i == 0 || text[i-1] == '\n') && (end == len(text) || text[end] == '\n') {
			return i
		}
		from = end
	}
}
