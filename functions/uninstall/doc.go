// Command uninstall removes installs: it revokes the user's Logto grant to the integration's
// Logto application, deletes the install and announces it (com.myscrollr.connect.install.revoked)
// through the transactional outbox.
//
// # What is implemented
//
// The user-deleted path: CloudEvents at POST /events (shared/runtime) of type
// com.myscrollr.connect.user.deleted (from logto-webhook). For each of the user's installs the
// user's grants to that integration's Logto application are revoked (Management API; a 404,
// meaning the user or grant is already gone, counts as revoked), then, in one transaction, the
// event is claimed in processed_events (consumer "uninstall", the CloudEvent source + id), the
// installs are deleted (install_count of each integration decremented), one install.revoked
// (reason user_deleted) per install is written to the outbox, the user's reviews are deleted and
// rating_avg / rating_count of the affected integrations recomputed from the remaining reviews.
//
// Order: Logto first, then the database commit. A crash in between is safe: the event is
// redelivered, and revoking grants that are already gone is a no-op. Logto unreachable or
// failing returns an ordinary error, so the event is answered 500 and retried; nothing is
// deleted. A redelivered event that was already committed is skipped before Logto is called.
// Events that can never be processed are events.Permanent errors (400, dead letter): an id or
// source that is empty, too long for the processed_events key, or holds NUL or invalid UTF-8;
// data that is not UTF-8 or does not match its JSON Schema; a user_id with NUL or over 128 bytes;
// and any other event type.
//
// Only Knative Eventing may send events here: POST /events needs a sender token for this
// function's audience (EVENTS_OIDC_AUDIENCE, see shared/runtime), so a forged user.deleted
// sent straight to the function is a 401 and deletes nothing.
//
// Later work, not implemented here: uninstall on the user's own request over HTTP, and
// com.myscrollr.connect.subscription.ended (which the Knative trigger already routes here; until
// then such events are dead-lettered, where they can be replayed).
//
// # Configuration (environment)
//
//	DATABASE_URL               PostgreSQL connection URL (required)
//	LOGTO_ENDPOINT             Logto base URL, e.g. http://127.0.0.1:3001 (required)
//	LOGTO_M2M_APP_ID           Management API machine-to-machine app id (required)
//	LOGTO_M2M_APP_SECRET       its secret (required)
//	LOGTO_MANAGEMENT_RESOURCE  Management API resource (default https://default.logto.app/api)
//	PORT, LOG_LEVEL, ...       see shared/runtime
package main
