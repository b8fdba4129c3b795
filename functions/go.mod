module github.com/myscrollr/connect/functions

go 1.26.0
