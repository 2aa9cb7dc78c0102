module github.com/acme/greeter/clients/greetctl

go 1.26.7
