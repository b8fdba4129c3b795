module github.com/myscrollr/connect/schemas

go 1.26.0
