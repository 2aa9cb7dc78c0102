// Package workflows holds the tests of .github/workflows: actionlint over
// every workflow, the release triggers that keep each module's release
// cycle its own, and the contract checks' steps in step with contractci.
// It has no non-test code.
package workflows
