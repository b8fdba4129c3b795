module github.com/myscrollr/connect/wasmhost

go 1.26.0
