// Package sdk proves the published contract in real clients of other
// languages, against the real greeter binary on loopback: a Node program
// using the packed TypeScript SDK with connect-es (node/client.mjs), a
// Python program using the Python SDK's wheel with Debian's grpcio
// (python/client.py) — every RPC, streaming included, and validation
// errors as INVALID_ARGUMENT with their BadRequest decoded — and a
// consuming team that has only the protos tarball and the image: buf
// generate, protoc, and buf breaking against the image. It also runs the
// release's publish step with --dry-run. The artifacts are built fresh by
// `go tool contractdist` (what `make dist` runs) in TestMain.
//
// Nothing here skips: a missing node, npm, protoc or python module fails
// with one line naming what to install (.ci/run installs it all).
package sdk
