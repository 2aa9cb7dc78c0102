// Package conformance runs connectrpc's conformance suite
// (connectrpc.com/conformance, its runner connectconformance pinned as a
// tool in this module's go.mod) against both ports of the greeter's server:
// http.yaml declares everything the HTTP port offers (HTTP/1.1 and HTTP/2;
// Connect, gRPC and gRPC-Web; proto and JSON; identity and gzip; every
// stream type, bidi over HTTP/1.1 half duplex; h2c, TLS and client
// certificates; Connect GET; a message receive limit), grpc.yaml the gRPC
// port's (gRPC over HTTP/2, proto, identity and gzip, every stream type,
// h2c, TLS and client certificates, a receive limit).
//
// The server under test is services/greeter/internal/conformance's
// conformanceserver: the greeter's own server construction with the suite's
// ConformanceService added (server.WithService), built in its own module,
// as the greeter binary is (harness/binaries). It takes the greeter's
// flags; ServerFlags are the ones this run sets, and why.
//
// Every case must pass, but for one list, grpc-known-failing.txt: the gRPC
// port answers a cardinality violation INTERNAL, as grpc-go does, where the
// suite wants UNIMPLEMENTED (the file says why). Those cases must fail: the
// runner fails the run if one passes.
//
// `make conformance` runs it verbosely (`make test` does too), so the log
// shows the runner's summary for each port: "N passed, 0 failed".
package conformance
