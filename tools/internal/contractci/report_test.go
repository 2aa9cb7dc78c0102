package contractci_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/contractci"
	"github.com/acme/greeter/tools/internal/protocheck"
)

const proto = "api/acme/greeter/v1/greeter.proto"

var renamed = []protocheck.Finding{
	{Path: proto, StartLine: 62, StartColumn: 10, EndLine: 62, EndColumn: 19, Type: "FIELD_SAME_NAME",
		Message: `Field "1" on message "SayHelloRequest" changed name from "name" to "full_name".`},
}

func TestLog(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		result   contractci.Result
		annotate bool
		want     string
	}{
		"breaking fails, annotated": {
			result:   contractci.Result{Check: "breaking", Status: contractci.Failed, Findings: renamed, Against: "8b6dbd3, the tip of main that pull request #42 merges into"},
			annotate: true,
			want: `buf breaking: against 8b6dbd3, the tip of main that pull request #42 merges into
::error file=api/acme/greeter/v1/greeter.proto,line=62,col=10,endLine=62,endColumn=19,title=buf breaking FIELD_SAME_NAME::Field "1" on message "SayHelloRequest" changed name from "name" to "full_name".
buf breaking: failed: 1 finding in 1 file; a break of a released package is a new major package (README.md, "How to change the contract")
`,
		},
		"breaking fails, outside Actions": {
			result: contractci.Result{Check: "breaking", Status: contractci.Failed, Findings: renamed, Against: "ee36718, the commit before main"},
			want: `buf breaking: against ee36718, the commit before main
api/acme/greeter/v1/greeter.proto:62:10:Field "1" on message "SayHelloRequest" changed name from "name" to "full_name".
buf breaking: failed: 1 finding in 1 file; a break of a released package is a new major package (README.md, "How to change the contract")
`,
		},
		"a format finding's lines, escaped": {
			result: contractci.Result{Check: "format", Status: contractci.Failed, Findings: []protocheck.Finding{
				{Path: proto, StartLine: 70, EndLine: 70, Type: protocheck.FormatType, Message: "buf format would write (run `make format`):\nmessage A {\n  map<string, string> m = 1; // 100%"},
			}},
			annotate: true,
			want: "::error file=api/acme/greeter/v1/greeter.proto,line=70,endLine=70,title=buf format::buf format would write (run `make format`):%0Amessage A {%0A  map<string, string> m = 1; // 100%25\n" +
				"buf format: failed: 1 finding in 1 file; run `make format`\n",
		},
		"a drifted file, a whole-file annotation": {
			result: contractci.Result{Check: "drift", Status: contractci.Failed, Findings: []protocheck.Finding{
				{Path: "gen/go/acme/greeter/v1/old,1.pb.go", Type: protocheck.DriftStale, Message: "buf generate no longer writes this file"},
			}},
			annotate: true,
			want: "::error file=gen/go/acme/greeter/v1/old%2C1.pb.go,title=generated code stale::buf generate no longer writes this file\n" +
				"generated code: failed: 1 finding in 1 file; run `make generate` and commit the result\n",
		},
		"skipped: a warning": {
			result:   contractci.Result{Check: "breaking", Status: contractci.Skipped, Note: `pull request #42 is labelled "buf skip breaking": an intended break`},
			annotate: true,
			want: `::warning title=buf breaking skipped::pull request #42 is labelled "buf skip breaking": an intended break
buf breaking: skipped: pull request #42 is labelled "buf skip breaking": an intended break
`,
		},
		"a break the label allowed: warnings, and the change": {
			result: contractci.Result{Check: "breaking", Status: contractci.Skipped, Findings: renamed, Against: "8b6dbd3, the tip of main that pull request #42 merges into",
				Note:   `pull request #42 is labelled "buf skip breaking": an intended break of api/acme/greeter/v1, which no release holds, allowed`,
				Change: &contractci.Change{Kind: contractci.UnreleasedBreak, Packages: []string{"api/acme/greeter/v1"}}},
			annotate: true,
			want: `buf breaking: against 8b6dbd3, the tip of main that pull request #42 merges into
::warning title=buf breaking allowed::pull request #42 is labelled "buf skip breaking": an intended break of api/acme/greeter/v1, which no release holds, allowed
::warning file=api/acme/greeter/v1/greeter.proto,line=62,col=10,endLine=62,endColumn=19,title=buf breaking FIELD_SAME_NAME::Field "1" on message "SayHelloRequest" changed name from "name" to "full_name".
buf breaking: the change: breaking in api/acme/greeter/v1, which no release holds (allowed only with the label "buf skip breaking")
buf breaking: allowed: 1 finding in 1 file; pull request #42 is labelled "buf skip breaking": an intended break of api/acme/greeter/v1, which no release holds, allowed
`,
		},
		"a fallback baseline: a notice": {
			result:   contractci.Result{Check: "breaking", Status: contractci.Passed, Against: "9d1e3f5, the first parent of 0c2d4e6", Note: "the commit before the push, 9b1c3d5, is not in the clone (a force push replaced it): comparing against the pushed commit's first parent instead"},
			annotate: true,
			want: `buf breaking: against 9d1e3f5, the first parent of 0c2d4e6
::notice title=buf breaking::the commit before the push, 9b1c3d5, is not in the clone (a force push replaced it): comparing against the pushed commit's first parent instead
buf breaking: passed
`,
		},
		"a fallback baseline, and a break": {
			result:   contractci.Result{Check: "breaking", Status: contractci.Failed, Findings: renamed, Against: "7e9f1a3, the first parent of 6f8a0b2", Note: "the push created release/v1, so it has no commit before it: comparing against the pushed commit's first parent instead"},
			annotate: true,
			want: `buf breaking: against 7e9f1a3, the first parent of 6f8a0b2
::notice title=buf breaking::the push created release/v1, so it has no commit before it: comparing against the pushed commit's first parent instead
::error file=api/acme/greeter/v1/greeter.proto,line=62,col=10,endLine=62,endColumn=19,title=buf breaking FIELD_SAME_NAME::Field "1" on message "SayHelloRequest" changed name from "name" to "full_name".
buf breaking: failed: 1 finding in 1 file; a break of a released package is a new major package (README.md, "How to change the contract")
`,
		},
		"failed without findings: its output": {
			result:   contractci.Result{Check: "lint", Status: contractci.Failed, Note: "Failure: buf.yaml: unknown rule FOO"},
			annotate: true,
			want: `::error title=buf lint failed::Failure: buf.yaml: unknown rule FOO
buf lint: failed
`,
		},
		"could not run": {
			result:   contractci.Result{Check: "drift", Status: contractci.Errored, Note: "generated code drift check: protoc is missing"},
			annotate: true,
			want: `::error title=generated code error::generated code drift check: protoc is missing
generated code: could not run
`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			contractci.Log(&b, tc.result, tc.annotate)
			if b.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

// TestLogAnnotationLimit: GitHub shows ten error annotations of a step and
// drops the rest without a word, so the tenth says how many more the log
// holds, and the log holds them all.
func TestLogAnnotationLimit(t *testing.T) {
	t.Parallel()
	var findings []protocheck.Finding
	for i := 1; i <= 13; i++ {
		findings = append(findings, protocheck.Finding{Path: proto, StartLine: i, StartColumn: 1, Type: "COMMENT_FIELD", Message: fmt.Sprintf("finding %d", i)})
	}
	var b strings.Builder
	contractci.Log(&b, contractci.Result{Check: "lint", Status: contractci.Failed, Findings: findings}, true)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	errors := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "::error ") {
			errors++
		}
	}
	if errors != 10 {
		t.Errorf("%d error annotations, want 10:\n%s", errors, b.String())
	}
	if want := "::error title=buf lint::4 more findings than GitHub shows as annotations: this step's log and the job summary list them all"; lines[9] != want {
		t.Errorf("the tenth annotation is %q, want %q", lines[9], want)
	}
	for i := 10; i <= 13; i++ {
		if want := fmt.Sprintf("%s:%d:1:finding %d", proto, i, i); !strings.Contains(b.String(), "\n"+want+"\n") {
			t.Errorf("the log lacks %q", want)
		}
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	allowed := contractci.Result{Check: "breaking", Status: contractci.Skipped, Against: "8b6dbd3, the tip of main that pull request #42 merges into",
		Findings: []protocheck.Finding{{Path: "api/acme/greeter/v2/greeter.proto", StartLine: 12, StartColumn: 3, Type: "FIELD_SAME_NAME", Message: `Field "1" on message "SayHelloRequest" changed name from "name" to "full_name".`}},
		Note:     `pull request #42 is labelled "buf skip breaking": an intended break of api/acme/greeter/v2, which no release holds, allowed (RELEASING.md, "Breaking changes")`,
		Change:   &contractci.Change{Kind: contractci.UnreleasedBreak, Packages: []string{"api/acme/greeter/v2"}}}
	tests := map[string]struct {
		results []contractci.Result
		want    string
	}{
		"a failing pull request": {
			results: []contractci.Result{
				{Check: "format", Status: contractci.Passed},
				{Check: "lint", Status: contractci.Passed},
				{Check: "breaking", Status: contractci.Failed, Findings: renamed, Against: "8b6dbd3, the tip of main that pull request #42 merges into",
					Change: &contractci.Change{Kind: contractci.ReleasedBreak, Packages: []string{"api/acme/greeter/v1 (released in api/v1.0.0)"}}},
				{Check: "released", Status: contractci.Failed, Findings: renamed, Against: "api/v1.0.0, the last contract release"},
				{Check: "changelog", Status: contractci.Passed, Against: "8b6dbd3, the tip of main that pull request #42 merges into"},
				{Check: "drift", Status: contractci.Failed, Findings: []protocheck.Finding{{Path: "gen/go/acme/greeter/v1/greeter.pb.go", Type: protocheck.DriftDiffers, Message: "not what buf generate writes"}}},
			},
			want: `### ❌ Contract checks failed: buf breaking, buf breaking (last release), generated code

**The change:** breaking in api/acme/greeter/v1 (released in api/v1.0.0): never allowed; make the change in a new major package

| Check | Result | Findings | Details |
| --- | --- | --- | --- |
| buf format | ✅ passed | 0 |  |
| buf lint | ✅ passed | 0 |  |
| buf breaking | ❌ failed | 1 finding in 1 file | against 8b6dbd3, the tip of main that pull request #42 merges into; a break of a released package is a new major package (README.md, "How to change the contract") |
| buf breaking (last release) | ❌ failed | 1 finding in 1 file | against api/v1.0.0, the last contract release; a released package never breaks, whatever the label: make the change in a new major package (README.md, "How to change the contract") |
| CHANGELOG entry | ✅ passed | 0 | against 8b6dbd3, the tip of main that pull request #42 merges into |
| generated code | ❌ failed | 1 finding in 1 file | run ` + "`make generate`" + ` and commit the result |

<details><summary>buf breaking: 1 finding in 1 file</summary>

- <code>api/acme/greeter/v1/greeter.proto:62</code> Field "1" on message "SayHelloRequest" changed name from "name" to "full_name".

</details>

<details><summary>buf breaking (last release): 1 finding in 1 file</summary>

- <code>api/acme/greeter/v1/greeter.proto:62</code> Field "1" on message "SayHelloRequest" changed name from "name" to "full_name".

</details>

<details><summary>generated code: 1 finding in 1 file</summary>

- <code>gen/go/acme/greeter/v1/greeter.pb.go</code> not what buf generate writes

</details>
`,
		},
		"an intended break the label allowed: the first line says so": {
			results: []contractci.Result{
				{Check: "format", Status: contractci.Passed},
				{Check: "lint", Status: contractci.Passed},
				allowed,
				{Check: "released", Status: contractci.Passed, Against: "api/v1.0.0, the last contract release"},
				{Check: "changelog", Status: contractci.Passed, Against: "8b6dbd3, the tip of main that pull request #42 merges into"},
				{Check: "drift", Status: contractci.Passed},
			},
			want: `### ⏭️ buf breaking: pull request #42 is labelled "buf skip breaking": an intended break of api/acme/greeter/v2, which no release holds, allowed (RELEASING.md, "Breaking changes")

### ✅ Contract checks passed

**The change:** breaking in api/acme/greeter/v2, which no release holds (allowed only with the label "buf skip breaking")

| Check | Result | Findings | Details |
| --- | --- | --- | --- |
| buf format | ✅ passed | 0 |  |
| buf lint | ✅ passed | 0 |  |
| buf breaking | ⏭️ skipped | 1 finding in 1 file | against 8b6dbd3, the tip of main that pull request #42 merges into; pull request #42 is labelled "buf skip breaking": an intended break of api/acme/greeter/v2, which no release holds, allowed (RELEASING.md, "Breaking changes") |
| buf breaking (last release) | ✅ passed | 0 | against api/v1.0.0, the last contract release |
| CHANGELOG entry | ✅ passed | 0 | against 8b6dbd3, the tip of main that pull request #42 merges into |
| generated code | ✅ passed | 0 |  |

<details><summary>buf breaking: 1 finding in 1 file</summary>

- <code>api/acme/greeter/v2/greeter.proto:12</code> Field "1" on message "SayHelloRequest" changed name from "name" to "full_name".

</details>
`,
		},
		"a step that did not run": {
			results: []contractci.Result{
				{Check: "format", Status: contractci.Passed},
				{Check: "lint", Status: contractci.Passed},
				{Check: "breaking", Status: contractci.Passed, Against: "2b4c6d8, the tip of main before the push"},
			},
			want: `### ⚠️ Contract checks incomplete: buf breaking (last release), CHANGELOG entry, generated code did not run

| Check | Result | Findings | Details |
| --- | --- | --- | --- |
| buf format | ✅ passed | 0 |  |
| buf lint | ✅ passed | 0 |  |
| buf breaking | ✅ passed | 0 | against 2b4c6d8, the tip of main before the push |
| buf breaking (last release) | not run | – | its step did not run: an earlier step failed |
| CHANGELOG entry | not run | – | its step did not run: an earlier step failed |
| generated code | not run | – | its step did not run: an earlier step failed |
`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := contractci.Summary(tc.results); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestSaveLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	want := []contractci.Result{
		{Check: "format", Status: contractci.Passed},
		{Check: "breaking", Status: contractci.Failed, Findings: renamed, Against: "8b6dbd3"},
	}
	for _, r := range want {
		if err := contractci.Save(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := contractci.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Load = %+v, want %+v", got, want)
	}
}
