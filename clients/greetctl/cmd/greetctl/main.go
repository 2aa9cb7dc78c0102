// Command greetctl is the command-line client of the greeter service.
package main

func main() {}
