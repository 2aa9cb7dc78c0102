package contractci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/acme/greeter/tools/internal/protocheck"
)

// Changelog is the file the contract's release notes are made from
// (release-api.yml takes a version's section of it).
const Changelog = "sdk/CHANGELOG.md"

// unreleased is the heading of the section a change adds its line to.
const unreleased = "## Unreleased"

// ChangelogMissing is the Type of the finding of a contract change
// without a line in Changelog.
const ChangelogMissing = "CHANGELOG_ENTRY"

// runChangelog fails a change to the contract (a proto file of api/
// added, changed or removed since the event's baseline) whose "##
// Unreleased" section of Changelog gained no line.
func runChangelog(repoDir string, ev Event, git Git) Result {
	r := Result{Check: "changelog"}
	b, done, ok := r.baseline(ev, git)
	if !ok {
		return done
	}
	r.Against = b.What
	protos := protosIn(git.Changed(b.Commit, protocheck.ContractPath))
	if len(protos) == 0 {
		r.Status, r.Note = Passed, "no contract change: no entry needed"
		return r
	}
	data, err := os.ReadFile(filepath.Join(repoDir, filepath.FromSlash(Changelog)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return r.ended(err)
	}
	before, _ := git.Show(b.Commit, Changelog)
	line, added := unreleasedEntry(before, string(data))
	if added {
		r.Status = Passed
		return r
	}
	what := fmt.Sprintf("%s changed", strings.Join(protos, ", "))
	if len(protos) > 3 {
		what = fmt.Sprintf("%d proto files of api/ changed (%s, ...)", len(protos), strings.Join(protos[:3], ", "))
	}
	where := fmt.Sprintf("under %q", unreleased)
	if line == 0 {
		where = fmt.Sprintf("in a section %q below the title", unreleased)
	}
	return r.ended(&protocheck.Error{Check: "changelog", Findings: []protocheck.Finding{{
		Path: Changelog, StartLine: line, Type: ChangelogMissing,
		Message: fmt.Sprintf("%s, but %s has no new line %s: add one saying what changed for consumers, "+
			"e.g. \"- `acme.greeter.v1.SayHelloRequest`: new field `locale`.\" "+
			"The next api/vX.Y.Z release's notes are that section.", what, Changelog, where),
	}}})
}

// unreleasedEntry reports whether the "## Unreleased" section of after
// has a line, not blank, that the section of before lacks, and the line
// number of after's heading (0 when it has none).
func unreleasedEntry(before, after string) (heading int, added bool) {
	old := map[string]int{}
	for _, l := range section(before) {
		old[l]++
	}
	for i, l := range strings.Split(after, "\n") {
		if strings.TrimSpace(l) == unreleased {
			heading = i + 1
			break
		}
	}
	for _, l := range section(after) {
		if old[l] == 0 {
			return heading, true
		}
		old[l]--
	}
	return heading, false
}

// section is the lines of text's "## Unreleased" section that are not
// blank, each trimmed of trailing space.
func section(text string) []string {
	var lines []string
	in := false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.TrimSpace(l) == unreleased:
			in = true
		case strings.HasPrefix(l, "## "):
			in = false
		case in && strings.TrimSpace(l) != "":
			lines = append(lines, strings.TrimRight(l, " \t\r"))
		}
	}
	return lines
}
