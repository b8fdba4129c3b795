// Command health-probe checks every published integration once a minute: GET
// {base_url}/health through the SSRF-safe client, a status per integration (healthy, degraded,
// offline, or unknown before the first verdict), uptime over 24 hours, 7 days and 30 days on
// the listing, and a com.myscrollr.connect.health.changed event on every change of status.
//
// # Ticks and sweeps
//
// A PingSource (infra/knative/50-pingsources.yaml) sends a CloudEvent of type
// dev.knative.sources.ping with data {"job":"health-probe"} every minute to POST /events
// (shared/runtime; sender token required). Any other type or job is events.Permanent (400,
// not retried). Each tick runs a sweep, stamped with the tick's time (its CloudEvent time,
// else our clock) truncated to the minute. A tick stamped more than a minute in the future is
// stamped with our clock; a tick older than five minutes is dropped (a newer one covers it).
//
// A sweep holds a PostgreSQL advisory lock (pg_try_advisory_lock on its own connection), so
// sweeps never overlap, whichever replica a tick reaches; a tick that finds the lock held
// returns at once (200) and logs "sweep skipped". A redelivered tick records nothing twice:
// an integration already checked at or after the tick's minute is not probed again, and
// integration_health is unique per (integration_id, checked_at). Two ticks in one minute are
// one sweep.
//
// The sweep loads the published integrations with their state and probes them with fanout
// (PROBE_CONCURRENCY at once, PROBE_PER_HOST per host name, hosts taking turns), slowest
// first: those whose last check failed or that were never checked, then by last response
// time. The probes that may run into the timeout then run alongside the quick ones, so a
// sweep lasts about PROBE_TIMEOUT plus the write. Results are written in one transaction:
// five set-based statements over arrays (raw checks, states, uptime spans, listings with their
// uptime) and one batch of outbox rows, one health.changed per transition (event id derived
// from the integration and the minute). Then raw checks older than PROBE_CHECK_RETENTION and
// spans that ended more than 30 days ago are deleted, in batches of 10,000 (at most ten per
// sweep; a backlog drains over the next sweeps).
//
// # One check
//
// The health contract is schemas/json/health.json. A check is:
//   - healthy: a 2xx answer within PROBE_DEGRADED_AFTER whose body is a JSON object with an up
//     "status" (ok, pass, up, healthy);
//   - degraded: the same answer slower than PROBE_DEGRADED_AFTER, or a status of degraded or
//     warn;
//   - offline: anything else: refused by the SSRF rules (private, loopback, metadata ...
//     addresses, http without SSRF_ALLOW, odd ports), no complete answer within PROBE_TIMEOUT
//     (which bounds the whole call: connect, TLS, redirects, body), connection refused or
//     reset, TLS failures, a non-2xx status, a body over 4 KiB, a body off the contract, or a
//     down status (down, fail, error).
//
// The response time is from sending the request to the end of the body. The reason recorded
// with a check that is not healthy is short and fixed in form ("HTTP status 503", "timeout: no
// complete answer within 10s", "refused by the SSRF rules: private", `reported "down"`); it
// never repeats the URL (which may carry a token) or an address. Connections are not kept
// alive: each host is checked once a minute.
//
// # Status machine
//
// Next (status.go) is the state machine of the established monitors: a status changes on
// evidence, not on one check. Offline after 3 consecutive failed checks; from offline, back
// after 2 consecutive successful ones (the second decides healthy or degraded); between
// healthy and degraded, every successful check decides; one or two failures change nothing.
// unknown (never checked) becomes healthy or degraded on the first successful check, and
// stays unknown through one or two failures: a new integration is not called offline before
// the third.
//
// # Uptime
//
// Uptime is measured on the checks, not on the status: a check that is up (healthy or
// degraded) or down (offline) vouches for the time until the next check. Consecutive checks
// with the same outcome are one span [started_at, ended_at) in integration_uptime_spans, so
// the table grows with changes, not with checks. A check extends the latest span to itself
// when that span ended at most 3 minutes (three ticks) before; a check with the other outcome
// or after a longer gap starts a new span at itself. Time between checks more than 3 minutes
// apart (the probe did not run, ticks were lost) is in no span: it is unobserved and left out
// of both the up time and the total, so our own outage neither helps nor hurts an
// integration's figure. Uptime over a window (24 h, 168 h, 720 h before the sweep's minute) is
// the up time of the spans clipped to the window over the time the spans cover in it, in
// percent rounded to 0.01; NULL until some time is covered (the first check covers none). The
// health.changed event carries uptime_30d; before any time is covered it is 100 or 0 by the
// one check.
//
// # Configuration (environment)
//
//	DATABASE_URL           PostgreSQL URL of role connect_health_probe (required)
//	SSRF_ALLOW             destinations exempt from the SSRF checks, e.g. 127.0.0.1/32 (make dev only)
//	PROBE_TIMEOUT          whole call of one probe (default 10s, at most 60s)
//	PROBE_DEGRADED_AFTER   a slower successful answer is degraded (default 2s, less than PROBE_TIMEOUT)
//	PROBE_CONCURRENCY      probes at once (default 1536, at most 16384; see Config.Concurrency)
//	PROBE_PER_HOST         probes at once per host name (default 4)
//	PROBE_CHECK_RETENTION  how long raw checks are kept (default 48h, 1h to 720h)
//	PORT, LOG_LEVEL, ...   see shared/runtime
//
// # Measured
//
// BenchmarkSweep10k (go test -run '^$' -bench Sweep10k -benchtime 3x ./functions/health-probe/):
// 10,000 integrations on distinct loopback addresses served by a child process, 5% answering
// after 10 s and 5% never, default settings.
package main
