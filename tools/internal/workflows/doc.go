// Package workflows holds the tests of .github/workflows: actionlint over
// every workflow, the release triggers that keep each module's release
// cycle its own, the contract checks' steps in step with contractci (their
// triggers, concurrency and permissions, and the fork's comment), and the
// contract release's check against the release before it.
// It has no non-test code.
package workflows
