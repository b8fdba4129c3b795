// Command uninstall removes installs: it revokes the user's Logto grant to the integration's
// Logto application, deletes the install and announces it (com.myscrollr.connect.install.revoked,
// with its reason and the install's sandbox flag) through the transactional outbox.
//
// # Routes and events
//
//	DELETE /v1/installs/{integration}   the user's own token (any user token of LOGTO_API_RESOURCE;
//	                                    an application's token, sub = client_id, is 403); the
//	                                    integration's name. Reason user_request.
//	POST /events com.myscrollr.connect.subscription.ended        reason subscription_ended
//	POST /events com.myscrollr.connect.install.revoke.requested  reason payment_failed or refunded
//	POST /events com.myscrollr.connect.user.deleted              reason user_deleted, every install
//
// DELETE answers 204 once the user has no install of the integration. A repeat, or an
// integration the user never installed, is also 204 and writes nothing (no mark, no call to
// Logto, no event): the answer says the state, not whether this request changed it. An unknown
// integration is 404 naming the field `integration`. Logto unreachable or failing is 503:
// nothing is deleted and the request can simply be repeated.
//
// # One protocol with install (migration 00008)
//
// Every revocation, whatever its cause, follows the protocol in the comment of
// schemas/migrations/00008_installs_shared.sql, which functions/install follows too (revoke.go):
//
//  1. tx 1 takes pg_advisory_xact_lock(hashtextextended(user_id || '/' || integration_id, 0)),
//     finds the install and marks install_revocations.revoked_at. The mark is the database's
//     clock (clock_timestamp()) read after the lock is granted, never the function's, so the
//     install side compares it with a database timestamp (its state's created_at).
//  2. The user's grants to the integration's application are revoked (shared/logto
//     RevokeGrants; 404 means already gone).
//  3. tx 2 takes the lock again, deletes the install (install_count - 1) and writes
//     install.revoked. An install already gone (revoked meanwhile) is not announced twice.
//
// The consent callback refuses, under the same lock, to record an install started before the
// mark (and revokes the grant it just obtained), so an install and a revocation racing end
// either installed with a grant or with neither (TestInstallAndRevokeRacing simulates the
// callback). One window remains that the mark cannot see: an install STARTED after the mark
// whose callback runs while the revocation is between steps 1 and 3 (the user re-installs
// within the second of uninstalling) may end with an install whose grant step 2 revoked, or a
// grant whose install step 3 deleted. Closing it needs the callback to refuse also while a
// revocation is in flight (a mark that tx 2 clears or completes, compared under the lock), a
// change to the 00008 protocol on both sides.
//
// user.deleted follows the same steps for every install of the user: tx 1 locks (in
// integration id order, so never deadlocking with the install side, which takes one lock) and
// marks each; tx 2 claims the event, locks and marks again, reads the installs again under
// lock (one recorded since is revoked too), deletes them, writes one install.revoked per
// install and deletes the user's reviews, recomputing the ratings.
//
// # Idempotent events
//
// Events are claimed in processed_events (shared/inbox, consumer "uninstall", the CloudEvent
// source + id) in tx 2; a redelivery of a committed event is skipped before Logto is called, and
// the install.revoked ids are name-based UUIDs of the consumed event and the install, the same
// on a replay. A subscription.ended or install.revoke.requested for a user without an install of
// the integration, or for an integration that no longer exists, is claimed and changes nothing.
// Logto unreachable or failing returns an ordinary error: the event is answered 500 and
// redelivered; nothing is deleted. Order: Logto first, then the database commit; a crash in
// between is safe, since revoking grants that are already gone is a no-op.
//
// The payments (stripe-webhook) end an install for other reasons than a subscription ending
// with com.myscrollr.connect.install.revoke.requested (events.InstallRevokeRequested:
// integration_id, user_id, reason payment_failed or refunded, optional payment_id,
// requested_at): a type of its own rather than a reason field on subscription.ended, because a
// refunded one-time purchase has no subscription, and subscription.ended's reason is Stripe's
// cancellation reason, not the platform's.
//
// Events that can never be processed are events.Permanent errors (400, dead letter): an id or
// source that is empty, too long for the processed_events key, or holds NUL or invalid UTF-8;
// data that is not UTF-8 or does not match its JSON Schema; a user_id with NUL or over 128
// bytes; and any other event type.
//
// Only Knative Eventing may send events here: POST /events needs a sender token for this
// function's audience (EVENTS_OIDC_AUDIENCE, see shared/runtime), so a forged user.deleted
// sent straight to the function is a 401 and deletes nothing.
//
// # Configuration (environment)
//
//	DATABASE_URL               PostgreSQL connection URL (required)
//	LOGTO_ENDPOINT             Logto base URL, e.g. http://127.0.0.1:3001 (required); user
//	                           tokens are issued by LOGTO_ENDPOINT/oidc
//	LOGTO_API_RESOURCE         the API resource indicator, the audience of user tokens (required)
//	LOGTO_M2M_APP_ID           Management API machine-to-machine app id (required)
//	LOGTO_M2M_APP_SECRET       its secret (required)
//	LOGTO_MANAGEMENT_RESOURCE  Management API resource (default https://default.logto.app/api)
//	PORT, LOG_LEVEL, ...       see shared/runtime
package main
