// Package reliability holds the process-level fault tests ("nothing lost,
// nobody in"): SIGKILL mid-stream, a call during a restart, drain under
// load, stuck and vanished clients, a million names, mTLS refusals, rate
// limits, what the ports expose, secrets kept out of logs, and a soak. They
// run the real greeter and greetctl binaries through the shared harness
// (test/harness); see docs/reliability.md. It has no non-test code.
package reliability
