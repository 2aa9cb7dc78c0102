module github.com/acme/greeter/services/greeter

go 1.26.7
