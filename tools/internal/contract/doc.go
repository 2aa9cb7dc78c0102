// Package contract holds the tests that pin down the behaviour of the
// published protos themselves: that each protovalidate rule of
// acme.greeter.v1 fires in the protovalidate-go runtime with the field path
// named, that every name field takes the name rules from the one predefined
// rule acme.greeter.v1.person_name, and that the materialised protovalidate
// protos are the ones the runtime was built against. It has no non-test
// code.
package contract
