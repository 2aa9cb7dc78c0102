// Package tracing holds the end-to-end tests of distributed tracing: the
// real greeter and greetctl binaries export OpenTelemetry spans into a real
// OTLP receiver on loopback (the Collector's otlpreceiver, test/harness/
// otlpsink), and the tests check what arrives: one trace from greetctl
// through the server, a caller's traceparent continued, rejected calls
// marked with their code and rejected fields (never the values), no spans
// for health checks, buffered spans flushed on SIGTERM, and a collector
// that is down costing the calls nothing and the log one line. It has no
// non-test code.
package tracing
