// Command notify delivers lifecycle events to integrations: every one gets them on its Kafka
// topic integrations.{name}.lifecycle, and apps that ask for HTTP delivery also get
// POST {base_url}/lifecycle/{install|uninstall|redact}, signed per Standard Webhooks 1.0,
// retried for about four hours, then dead-lettered. Decision record:
// docs/decisions/0008-lifecycle-delivery.md.
//
// # From platform events to lifecycle events
//
// CloudEvents at POST /events (shared/runtime): install.completed makes lifecycle.install;
// install.revoked makes lifecycle.uninstall, and also lifecycle.redact when the reason is
// user_deleted. A lifecycle event's id is a name-based UUID (SHA-1) of the platform event's
// source, id and the lifecycle type ([LifecycleID]), so a redelivered platform event makes the
// same lifecycle event. One transaction claims the platform event (shared/inbox, consumer
// "notify"), writes a lifecycle_events row (its bigserial seq is the catch-up cursor; its body
// is the CloudEvent in structured JSON, exactly the bytes delivered and signed), an outbox row
// on integrations.{name}.lifecycle (record key: the install id), and, for HTTP delivery, a
// lifecycle_deliveries row due now. After the commit the new deliveries are attempted at once.
//
// Who gets HTTP: apps whose manifest says app.lifecycle "http" or nothing (the manifest's
// default). Apps with "kafka", data sources and widgets get the topic and the catch-up route
// only: their manifests declare no lifecycle endpoint, and POSTs to endpoints never declared
// would only fail and dead-letter.
//
// # A delivery
//
// POST {base_url}/lifecycle/<verb> through shared/ssrf (no redirects: a 3xx is a failure),
// Content-Type application/cloudevents+json, the stored body, and the headers webhook-id (the
// CloudEvent id), webhook-timestamp (the attempt's time) and webhook-signature: one
// "v1a,<ed25519>" per signing key (events/webhook), so during a rotation a verifier that trusts
// either key accepts. 2xx is delivered; 410 disables the endpoint (this delivery and every
// pending one become "disabled", later events are recorded "disabled" without an attempt,
// until a developer's redelivery re-enables it); anything else, or no answer within
// DELIVERY_TIMEOUT, is a failed attempt.
//
// # Retries that outlive everything
//
// The schedule lives in PostgreSQL (next_attempt_at). 8 attempts; after attempt n fails the
// next is due Schedule[n-1] later, times a jitter factor uniform in [0.8, 1.2):
//
//	attempt  wait before  about since the first
//	1        -            0
//	2        30s          30s
//	3        1m20s        1m50s
//	4        3m30s        5m20s
//	5        9m           14m20s
//	6        23m          37m20s
//	7        1h           1h37m
//	8        2h30m        4h07m
//
// Each wait is about 2.6 times the one before. A PingSource ticks every minute
// (job "notify"); the tick wakes notify, which claims due deliveries with
// FOR UPDATE SKIP LOCKED and a lease (attempts+1, the next due time and lease_until =
// now + DELIVERY_TIMEOUT + 30 s, a lease token), sends them (DELIVERY_CONCURRENCY at once,
// DELIVERY_PER_HOST per host, shared/fanout) and records each outcome only under its own lease
// token. Two replicas never send the same attempt at once: a claimed row is skipped while its
// lease lasts; a killed worker's lease expires and the attempt is made again on schedule. The
// attempt is counted when it is claimed, so crashes cannot retry forever. After the 8th failed
// attempt the delivery is "failed" and the event goes to integrations.{name}.lifecycle.dlq
// through the outbox, with the dead-letter extensions of package events (destination URL, last
// HTTP code, last error, attempts) and the extension lifecycleid naming the lifecycle event
// (the dead letter has an id of its own: each failure is one dead letter).
// The clock is injected (New's now), so a test runs the whole window in milliseconds.
//
// # Routes
//
//	GET  /v1/lifecycle/keys                                          public: the key set (webhook.KeySet), cacheable 5 min
//	GET  /v1/developer/integrations/{name}/deliveries?cursor=&limit= integrations:write, own integration (else 404): the log, newest first
//	POST /v1/developer/integrations/{name}/deliveries/{id}/redeliver integrations:write, own: re-queue now, attempts reset, endpoint re-enabled, attempted at once
//	GET  /v1/integration/events?after=&limit=                        the integration's own token (client_id = its integration client, m2m_app_id): its lifecycle events after the cursor
//
// # Configuration (environment)
//
//	DATABASE_URL             PostgreSQL connection URL (required)
//	LOGTO_ENDPOINT           Logto base URL (required); tokens are issued by LOGTO_ENDPOINT/oidc
//	LOGTO_API_RESOURCE       audience of developer and integration tokens (required)
//	LIFECYCLE_SIGNING_KEYS   kid:base64-ed25519-seed, comma-separated, 1 to 4; all sign, the first is current (required, secret)
//	LIFECYCLE_RETIRED_KEYS   kid:whpk_base64 public keys still published as retired (optional)
//	SSRF_ALLOW               SSRF exemptions, e.g. 127.0.0.1/32 for make dev (optional)
//	DELIVERY_TIMEOUT         one attempt, default 10s, at most 30s
//	DELIVERY_PER_HOST        attempts at once to one host, default 4
//	DELIVERY_CONCURRENCY     attempts at once, default 64
//	DELIVERY_BATCH           deliveries claimed at a time by a wake-up, default 500
//	PORT, LOG_LEVEL, EVENTS_OIDC_*  see shared/runtime
//
// The signing keys are never logged: webhook.PrivateKey prints its id only.
package main
