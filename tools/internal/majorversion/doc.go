// Package majorversion holds the test of the one way to break the
// contract: a new major package beside the old one (README.md, "How to
// change the contract"). It has no non-test code.
package majorversion
