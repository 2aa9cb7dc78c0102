// Package web holds the end-to-end tests of the greeter's HTTP port against
// the real binary on loopback: plain HTTP callers (Connect JSON and binary,
// Connect GET, gRPC-Web binary and text, as curl would send them), the bad
// input list of the port with the error each gets and the metrics that
// count it, and the drain on SIGTERM with Connect streams open (the HTTP
// port drains first; the streams end with their end-of-stream message).
//
// TestBrowser runs the TypeScript SDK in Debian's Chromium (headless) on a
// page served from another origin: the SDK as `make dist` packs it, bundled
// with @connectrpc/connect-web and @bufbuild/protovalidate by esbuild from
// the lockfile of browser/ (npm ci offline, from the cache `make npm-deps`
// fills). It has no non-test code.
package web
