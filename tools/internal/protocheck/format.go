package protocheck

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/sourcegraph/go-diff/diff"
)

// FormatType is the Finding type of a place buf format would change.
const FormatType = "FORMAT"

// maxFormatLines is how many lines of what buf format would write a
// finding quotes; a longer change is described by its size instead.
const maxFormatLines = 5

// formatFindings reads `buf format --diff` (a unified diff of each file as
// it is against the file formatted) into one finding per run of changed
// lines, located in the file as it is: what a reviewer sees in the pull
// request.
func formatFindings(unified string) ([]Finding, error) {
	files, err := diff.ParseMultiFileDiff([]byte(unified))
	if err != nil {
		return nil, err
	}
	var findings []Finding
	for _, file := range files {
		// buf names the file as it is "<path>.orig" and the formatted one
		// "<path>".
		name := file.NewName
		for _, hunk := range file.Hunks {
			findings = append(findings, hunkFindings(name, hunk)...)
		}
	}
	return findings, nil
}

// hunkFindings splits one hunk into its runs of removed and added lines.
func hunkFindings(name string, hunk *diff.Hunk) []Finding {
	var (
		findings         []Finding
		line             = int(hunk.OrigStartLine) // of the file as it is
		first, last      int                       // the run's lines as it is; 0 when it only adds
		added            []string
		removed, running bool
	)
	flush := func() {
		if !running {
			return
		}
		if !removed {
			// Only additions: they go before line, so point at the line
			// above them (or the first line).
			first, last = max(line-1, 1), max(line-1, 1)
		}
		findings = append(findings, Finding{
			Path: name, StartLine: first, EndLine: last, Type: FormatType,
			Message: formatMessage(added, last-first+1, removed),
		})
		running, removed, added = false, false, nil
	}
	for _, text := range strings.SplitAfter(string(bytes.TrimSuffix(hunk.Body, []byte("\n"))), "\n") {
		text = strings.TrimSuffix(text, "\n")
		switch {
		case strings.HasPrefix(text, "-"):
			if !removed {
				first = line
			}
			running, removed, last = true, true, line
			line++
		case strings.HasPrefix(text, "+"):
			running = true
			added = append(added, text[1:])
		case strings.HasPrefix(text, `\`): // "\ No newline at end of file"
		default:
			flush()
			line++
		}
	}
	flush()
	return findings
}

// formatMessage says what buf format would write in place of n lines.
func formatMessage(added []string, n int, removed bool) string {
	switch {
	case len(added) == 0:
		return fmt.Sprintf("buf format would remove %s: run `make format`", lines(n))
	case len(added) > maxFormatLines:
		if !removed {
			return fmt.Sprintf("buf format would add %s below: run `make format`", lines(len(added)))
		}
		return fmt.Sprintf("buf format would rewrite these %s as %s: run `make format`", lines(n), lines(len(added)))
	}
	return "buf format would write (run `make format`):\n" + strings.Join(added, "\n")
}

func lines(n int) string {
	if n == 1 {
		return "1 line"
	}
	return fmt.Sprintf("%d lines", n)
}
