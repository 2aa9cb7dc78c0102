// Command greeter serves acme.greeter.v1.GreeterService and the classic
// helloworld.Greeter.
package main

func main() {}
