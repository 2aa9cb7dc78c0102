package contractci

import (
	"fmt"
	"io"
	"strings"

	"github.com/acme/greeter/tools/internal/protocheck"
)

// maxAnnotations is how many error annotations one step of a GitHub
// Actions job shows: the rest are dropped without a word, so the last one
// Log writes says how many more the log holds.
const maxAnnotations = 10

// maxSummaryFindings is how many findings of one check the summary lists.
const maxSummaryFindings = 50

// Log writes r to the job's log, w. With annotate (in GitHub Actions) each
// finding is an error annotation at its file and line, which GitHub shows
// on the pull request's diff (a warning, for a break the label allowed);
// otherwise it is a line as buf prints it.
func Log(w io.Writer, r Result, annotate bool) {
	c, _ := LookupCheck(r.Check)
	if r.Against != "" {
		fmt.Fprintf(w, "%s: against %s\n", c.Title, r.Against)
	}
	// Without findings, the note of a failed check is its output (below);
	// otherwise it explains a skip (a warning) or a fallback (a notice).
	failedBare := r.Status == Failed && len(r.Findings) == 0 || r.Status == Errored
	if r.Note != "" && !failedBare {
		level, title := "notice", c.Title
		switch {
		case r.Status == Skipped && len(r.Findings) > 0:
			level, title = "warning", c.Title+" allowed"
		case r.Status == Skipped:
			level, title = "warning", c.Title+" skipped"
		}
		if annotate {
			fmt.Fprintf(w, "::%s title=%s::%s\n", level, escapeProperty(title), escapeData(r.Note))
		} else {
			fmt.Fprintf(w, "%s: %s\n", c.Title, r.Note)
		}
	}
	level := "error"
	if r.Status == Skipped {
		level = "warning"
	}
	for i, f := range r.Findings {
		switch {
		case !annotate || i >= maxAnnotations:
			fmt.Fprintln(w, strings.ReplaceAll(f.String(), "\n", "\n    "))
		case i == maxAnnotations-1 && len(r.Findings) > maxAnnotations:
			fmt.Fprintf(w, "::%s title=%s::%s\n", level, escapeProperty(c.Title), escapeData(fmt.Sprintf(
				"%d more findings than GitHub shows as annotations: this step's log and the job summary list them all", len(r.Findings)-i)))
			fmt.Fprintln(w, strings.ReplaceAll(f.String(), "\n", "\n    "))
		default:
			fmt.Fprintln(w, annotation(level, c, f))
		}
	}
	if r.Change != nil {
		fmt.Fprintf(w, "%s: the change: %s\n", c.Title, r.Change)
	}
	if failedBare {
		if annotate {
			fmt.Fprintf(w, "::error title=%s::%s\n", escapeProperty(c.Title+" "+string(r.Status)), escapeData(r.Note))
		} else {
			fmt.Fprintln(w, r.Note)
		}
	}
	fmt.Fprintf(w, "%s: %s\n", c.Title, verdict(c, r))
}

// Warn writes message to the job's log, w: with annotate (in GitHub
// Actions) a warning annotation titled title, otherwise a line.
func Warn(w io.Writer, title, message string, annotate bool) {
	if annotate {
		fmt.Fprintf(w, "::warning title=%s::%s\n", escapeProperty(title), escapeData(message))
		return
	}
	fmt.Fprintf(w, "%s: %s\n", title, message)
}

// annotation is f as a GitHub Actions annotation of level (error,
// warning).
func annotation(level string, c Check, f protocheck.Finding) string {
	props := []string{"file=" + escapeProperty(f.Path)}
	if f.StartLine > 0 {
		props = append(props, fmt.Sprintf("line=%d", f.StartLine))
		if f.StartColumn > 0 {
			props = append(props, fmt.Sprintf("col=%d", f.StartColumn))
		}
		if f.EndLine > 0 {
			props = append(props, fmt.Sprintf("endLine=%d", f.EndLine))
		}
		if f.EndColumn > 0 {
			props = append(props, fmt.Sprintf("endColumn=%d", f.EndColumn))
		}
	}
	title := c.Title
	if f.Type != "" && f.Type != protocheck.FormatType {
		title += " " + f.Type
	}
	props = append(props, "title="+escapeProperty(title))
	return "::" + level + " " + strings.Join(props, ",") + "::" + escapeData(f.Message)
}

// escapeData and escapeProperty escape a workflow command's message and
// its properties as the runner unescapes them. Written here, not taken
// from a library: the Go ports of @actions/core are not on the module
// proxy this repository builds from, and these are its two rules.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// verdict is r in a few words: "failed: 2 findings in 1 file".
func verdict(c Check, r Result) string {
	switch r.Status {
	case Failed:
		if len(r.Findings) == 0 {
			return "failed"
		}
		return "failed: " + counted(r.Findings) + "; " + c.Fix
	case Skipped:
		if len(r.Findings) > 0 {
			return "allowed: " + counted(r.Findings) + "; " + r.Note
		}
		return "skipped: " + r.Note
	case Errored:
		return "could not run"
	}
	return "passed"
}

// counted is how many findings there are, and in how many files.
func counted(findings []protocheck.Finding) string {
	files := map[string]bool{}
	for _, f := range findings {
		files[f.Path] = true
	}
	return plural(len(findings), "finding") + " in " + plural(len(files), "file")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

var marks = map[Status]string{Passed: "✅", Failed: "❌", Skipped: "⏭️", Errored: "⚠️"}

// Summary is the job summary of results, in Markdown: its first line
// says the breaking check was skipped, and why, when it was; then the
// verdict, a table of the checks (every check, "not run" for one without
// a result) and each failed check's findings.
func Summary(results []Result) string { return summary(results, maxSummaryFindings) }

// summary is Summary listing at most max findings of each check.
func summary(results []Result, max int) string {
	byName := map[string]Result{}
	for _, r := range results {
		byName[r.Check] = r
	}
	var b strings.Builder
	if r, ok := byName["breaking"]; ok && r.Status == Skipped {
		what := "buf breaking skipped"
		if len(r.Findings) > 0 {
			what = "buf breaking" // the note says the label allowed the break
		}
		fmt.Fprintf(&b, "### %s %s: %s\n\n", marks[Skipped], what, cell(r.Note))
	}
	var failed, notRun []string
	for _, c := range Checks {
		r, ok := byName[c.Name]
		switch {
		case !ok:
			notRun = append(notRun, c.Title)
		case r.Status == Failed || r.Status == Errored:
			failed = append(failed, c.Title)
		}
	}
	switch {
	case len(failed) > 0:
		fmt.Fprintf(&b, "### %s Contract checks failed: %s\n\n", marks[Failed], strings.Join(failed, ", "))
	case len(notRun) > 0:
		fmt.Fprintf(&b, "### %s Contract checks incomplete: %s did not run\n\n", marks[Errored], strings.Join(notRun, ", "))
	default:
		fmt.Fprintf(&b, "### %s Contract checks passed\n\n", marks[Passed])
	}
	if r, ok := byName["breaking"]; ok && r.Change != nil {
		fmt.Fprintf(&b, "**The change:** %s\n\n", escapeHTML(r.Change.String()))
	}
	b.WriteString("| Check | Result | Findings | Details |\n| --- | --- | --- | --- |\n")
	for _, c := range Checks {
		r, ok := byName[c.Name]
		if !ok {
			fmt.Fprintf(&b, "| %s | not run | – | its step did not run: an earlier step failed |\n", c.Title)
			continue
		}
		findings := "–"
		if r.Status == Passed || r.Status == Failed || len(r.Findings) > 0 {
			findings = "0"
			if len(r.Findings) > 0 {
				findings = counted(r.Findings)
			}
		}
		var details []string
		if r.Against != "" {
			details = append(details, "against "+r.Against)
		}
		if r.Note != "" {
			details = append(details, r.Note)
		}
		if r.Status == Failed {
			details = append(details, c.Fix)
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s |\n", c.Title, marks[r.Status], r.Status, findings, cell(strings.Join(details, "; ")))
	}
	for _, c := range Checks {
		r := byName[c.Name]
		if len(r.Findings) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n<details><summary>%s: %s</summary>\n\n", c.Title, counted(r.Findings))
		for i, f := range r.Findings {
			if i == max {
				fmt.Fprintf(&b, "- and %d more: see the step's log\n", len(r.Findings)-i)
				break
			}
			where := f.Path
			if f.StartLine > 0 {
				where = fmt.Sprintf("%s:%d", f.Path, f.StartLine)
			}
			fmt.Fprintf(&b, "- <code>%s</code> %s\n", escapeHTML(where), strings.ReplaceAll(escapeHTML(f.Message), "\n", "<br>"))
		}
		b.WriteString("\n</details>\n")
	}
	return b.String()
}

// escapeHTML keeps text such as map<string, string> from reading as HTML
// in the summary, and leaves quotes as they are.
var escapeHTML = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// cell makes s safe in one cell of a Markdown table.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", "<br>").Replace(strings.TrimRight(s, "\n"))
}
