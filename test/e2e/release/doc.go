// Package release holds the tests that prove the modules ship on separate
// release cycles and ship what was tested: each shipped binary (and each
// shipped module's test binary) links exactly the versions of its own
// go.mod; each consumer of gen/go builds outside any workspace against a
// published gen/go; and a client and a server built against different gen/go
// releases still talk. It has no non-test code.
package release
