module github.com/myscrollr/connect/tests

go 1.26.0

require (
	github.com/myscrollr/connect/events v0.0.0-00010101000000-000000000000
	github.com/myscrollr/connect/schemas v0.0.0-00010101000000-000000000000
	github.com/myscrollr/connect/shared v0.0.0-00010101000000-000000000000
)

replace github.com/myscrollr/connect/shared => ../shared

replace github.com/myscrollr/connect/schemas => ../schemas

replace github.com/myscrollr/connect/events => ../events
