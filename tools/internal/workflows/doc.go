// Package workflows holds the tests of .github/workflows: actionlint over
// every workflow, and the release triggers that keep each module's release
// cycle its own. It has no non-test code.
package workflows
