// Package releasecheck holds the tests that prove the modules ship on
// separate release cycles: each consumer of gen/go builds and passes its
// tests with GOWORK=off against a published gen/go, and a client and a
// server built against different gen/go releases still talk. It has no
// non-test code.
package releasecheck
