// Package ladder holds the rungs that break a database function's cold start into parts. Each
// rung adds one thing to the one before; measured in the same interleaved runs (coldstart -also),
// the difference between neighbours is the cost of that thing:
//
//	hello      net/http alone                                     (baseline)
//	hellopg    + one pgx connection and one query before listening (baseline)
//	pool       pgxpool and Ping instead (what db.Open does); /readyz pings
//	dbcheck    db.OpenCurrent: pool, schema-version check (no goose)
//	runtimedb  runtime.Main (logger, metrics registry, signals, middleware) around dbcheck
//	catalog    the catalog function: adds its own package (routes, validation) to runtimedb
//
// and testfn (tests/coldstart/testfn) is runtime.Main without a database, against hello.
//
//	go run ./tests/coldstart/cmd/coldstart -fn github.com/myscrollr/connect/functions/catalog -pg -n 20 \
//	  -also github.com/myscrollr/connect/tests/coldstart/ladder/pool \
//	  -also github.com/myscrollr/connect/tests/coldstart/ladder/dbcheck \
//	  -also github.com/myscrollr/connect/tests/coldstart/ladder/runtimedb \
//	  -also github.com/myscrollr/connect/tests/coldstart/testfn
//
// The rungs serve /readyz only after the database answered, like the functions.
package ladder
