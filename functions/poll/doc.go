// Command poll fetches the records of pull-mode data sources into PostgreSQL: on every tick
// it polls the due sources' GET /schema and GET /data, validates the records against the
// streams the source declares, passes them through the normalizer seam, upserts them into
// the records table and announces those that changed on connect.data. It also serves the
// developer's view of what went wrong.
//
// # The tick
//
// A PingSource sends a CloudEvent of type dev.knative.sources.ping with data {"job":"poll"}
// every minute to POST /events (sender token required, see shared/runtime). Any other type or
// job is events.Permanent (400, dead letter). One tick:
//
//  1. registers every published pull source that has no poll_sources row yet (due now), and
//     prunes rejections older than POLL_REJECTION_RETENTION;
//  2. claims up to POLL_BATCH due sources with a lease: one UPDATE over a
//     SELECT ... WHERE next_poll_at <= now AND (leased_until IS NULL OR leased_until < now)
//     ORDER BY next_poll_at LIMIT ... FOR UPDATE SKIP LOCKED, so concurrent ticks and
//     replicas never poll one source twice. The lease ends after the tick budget plus the
//     longest a source may take, and carries random microseconds so it is the tick's token:
//     every later write of the source is conditional on leased_until still being that value,
//     so a tick whose lease ran out (and was taken over) writes nothing;
//  3. polls them with shared/fanout: at most POLL_CONCURRENCY at once and POLL_PER_HOST per
//     host name; no source starts later than POLL_TICK_BUDGET minus its own bound
//     (2 × POLL_TIMEOUT + 10 s), so the tick answers well inside Knative's request timeout
//     (timeoutSeconds 120); sources not started are released for the next tick.
//
// Errors of one source never fail the tick: the tick answers 2xx unless the database fails
// (then 5xx, and the dispatcher retries the tick, which is harmless).
//
// # One source
//
// GET {base_url}/schema, conditionally with the stored validators (If-None-Match from its
// ETag, If-Modified-Since from its Last-Modified); 304 keeps the stored schema. The document
// must follow schemas/json/pull-schema.json (shared/records.ParsePullSchema: unique stream
// names, each stream's JSON Schema compiling with no remote references). A schema whose body
// changed drops the data validators, so records refused under the old schema are read again.
// Then GET {base_url}/data, conditionally; 304 means nothing new. The document must follow
// schemas/json/pull-data.json; a document refused as a whole (not JSON or not UTF-8, larger
// than POLL_MAX_BODY_BYTES, nested deeper than 40 levels, no records array, over 10,000
// records) is the source's error. Inside it, each record is validated on its own
// (shared/records.CheckPull): the good ones are stored, the bad ones rejected with a JSON
// pointer into the record's item and a reason, in the same transaction that advances the
// source (records.Store: upsert, data.received through the outbox for changed records,
// rejections).
//
// Success: next_poll_at = now + max(the source's refresh_interval_seconds, POLL_MIN_INTERVAL),
// consecutive_failures 0, last_error cleared. Failure (refused by the SSRF-safe client, time
// out, non-200/304 status, body too large, invalid document, a normalizer failing as a
// whole): nothing is stored, consecutive_failures + 1, last_error says why, and next_poll_at
// backs off: POLL_MIN_INTERVAL doubled per consecutive failure, capped at one hour, with
// jitter over the upper half of the wait. Every request goes through shared/ssrf (POLL_TIMEOUT
// per request, body bounded); SSRF_ALLOW is how make dev and tests reach loopback.
//
// # GET /v1/developer/integrations/{name}/rejections
//
// A user token (LOGTO_ENDPOINT + "/oidc", audience LOGTO_API_RESOURCE) with integrations:write;
// 401 without a valid token, 403 without the scope. Only the integration's developer
// (integrations.developer_id = the token's sub) sees it; anyone else gets the same 404 as an
// unknown name, so existence is not revealed. Query: limit (1-100, default 50) and cursor
// (next_cursor of the previous page); a bad one is a 400 naming it. Answer:
//
//	{"integration": "crypto-ticker",
//	 "source": {"last_error": null, "consecutive_failures": 0, "last_polled_at": "...",
//	            "last_success_at": "...", "next_poll_at": "..."},        // null: never seen
//	 "items": [{"stream": "prices", "key": "BTC", "field": "/data/price_cents",
//	            "reason": "minimum: got -1, want 0", "sample": "{...}",
//	            "rejected_at": "..."}],                                   // newest first
//	 "next_cursor": "..."}                                                // absent on the last page
//
// One item per problem; stream and key are null when they could not be read; sample is the
// record's item as received, at most 4 KiB. Rejections are kept POLL_REJECTION_RETENTION and at
// most POLL_REJECTION_KEEP rows per integration (newest kept).
//
// # Configuration (environment)
//
//	DATABASE_URL              PostgreSQL connection URL (required)
//	LOGTO_ENDPOINT            Logto base URL; tokens are issued by LOGTO_ENDPOINT/oidc (required)
//	LOGTO_API_RESOURCE        API resource indicator, the tokens' audience (required)
//	SSRF_ALLOW                destinations exempt from the SSRF checks (make dev: 127.0.0.1/32)
//	POLL_TIMEOUT              per request (default 10s)
//	POLL_CONCURRENCY          sources polled at once (default 64)
//	POLL_PER_HOST             sources on one host polled at once (default 2)
//	POLL_BATCH                most sources per tick (default 500)
//	POLL_MAX_BODY_BYTES       bound of a GET /data body (default 8 MiB)
//	POLL_MIN_INTERVAL         floor of a refresh interval, first backoff step (default 60s)
//	POLL_REJECTION_RETENTION  how long rejections are kept (default 168h)
//	POLL_REJECTION_KEEP       newest rejection rows kept per integration (default 1000)
//	POLL_TICK_BUDGET          no source starts after this less its own bound (default 80s, at most 110s)
//	PORT, LOG_LEVEL, ...      see shared/runtime
package main
