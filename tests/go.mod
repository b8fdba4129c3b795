module github.com/myscrollr/connect/tests

go 1.26.0
