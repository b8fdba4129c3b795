// Command logto-webhook receives Logto's webhooks at POST /v1/webhooks/logto and turns the ones
// the marketplace cares about into platform events, through the transactional outbox.
//
// # Request handling
//
//  1. The raw body is read up to MaxBody (256 KiB): larger is 413, before anything else.
//  2. The logto-signature-sha-256 header must be hex(HMAC-SHA256(signing key, raw body)),
//     compared in constant time; a missing or wrong signature is 401 problem+json, the reason
//     is logged, nothing changes.
//  3. The body is parsed (Logto's HookEventPayload: hookId, event, createdAt, plus the data
//     hook members data, params, roles, addedRoleIds, removedRoleIds; the rest — sessionId,
//     userAgent, ip, path, method, status, matchedRoute... — is ignored). Malformed JSON or a
//     missing or mistyped field is 400 naming the field.
//  4. In one PostgreSQL transaction: the delivery is claimed in processed_events
//     (inbox.Claim), its effects are written, and the outbox events are inserted. 204 is
//     answered only after the commit: a webhook is acknowledged only once what it carries is
//     durable. A database error is 503, so Logto retries.
//
// # Events handled
//
//   - User.Deleted: a user tombstone is stored (see Ordering), the user's platform roles are
//     marked inactive, and outbox event com.myscrollr.connect.user.deleted is written
//     (aggregate "user", id = the user id, from data.id, else params.userId) — once per user:
//     a second, different User.Deleted delivery for a user already on record changes nothing
//     but the tombstone's times. The uninstall function consumes the event.
//   - User.Roles.Updated (Logto fires it for POST/PUT /users/:userId/roles,
//     DELETE /users/:userId/roles/:roleId, POST /roles/:id/users and
//     DELETE /roles/:id/users/:userId; data is the user, roles the role objects, addedRoleIds
//     and removedRoleIds the delta): when the user's set of platform roles (PlatformRoles,
//     matched by role name) changes, developer_roles is updated and
//     com.myscrollr.connect.developer.role.changed is written (aggregate "user"). With neither
//     addedRoleIds nor removedRoleIds, roles is taken as the user's complete set (PUT).
//     A removed role id is resolved to a name from the payload, else from developer_roles.
//     Logto releases whose managementApiHooksRegistration has no role-assignment routes send
//     no event for role assignment at all; nothing can be done here about that.
//   - Role.Deleted (role id from data.id, else params.id): a role tombstone is stored and every
//     user holding that platform role loses it; one developer.role.changed per affected user.
//   - Anything else: 204, ignored (logged at debug).
//
// # Ordering
//
// Logto delivers webhooks late, twice and out of order (asynchronously, with retries), and
// sends no sequence number or version. The only order it gives is the payload's createdAt:
// the time, on the Logto instance's clock with millisecond precision, at which the API call
// that fired the hook completed. That is the order used; arrival order is never trusted. The
// rules below make the end state a function of the set of deliveries received, whatever their
// order (tested over every permutation of add, remove, complete set, User.Deleted and
// Role.Deleted for one user and role, with ties and duplicates):
//
//  1. Deletion is terminal. User.Deleted and Role.Deleted leave a tombstone in
//     logto_tombstones (kind, id, deleted_at = the deletion's createdAt, recorded_at = when we
//     stored it). A role change for a tombstoned user changes nothing at all; a grant of a
//     tombstoned role changes nothing. Such a delivery is acknowledged 204 (a retry cannot
//     help) and logged: at info when it is stamped at or before the deletion (a late delivery,
//     expected), at warn when stamped after it, which Logto should not produce (a deleted user
//     or role has no assignments left, and Logto generates ids at random, so an id does not
//     come back) and so points to clock skew between Logto instances — it is ignored too,
//     because a deletion must never be undone by a role event. Role.Deleted also takes the role from every holder whatever
//     the time on their row.
//  2. Newest wins per (user, role). Each developer_roles row keeps changed_at, the newest
//     createdAt seen for the pair, and a change applies only to a row older than itself. A
//     removal is stored even when the role id is not yet known (role_name NULL, inactive),
//     so an older assignment that arrives after it loses.
//  3. Ties go to the removal. At an equal createdAt a removal applies over an assignment and
//     an assignment does not apply over a removal, so two changes in one millisecond end the
//     same way in either order, on the side of fewer privileges. For the same reason a
//     change stamped exactly at a deletion's time is "at or before" it.
//  4. A complete set (PUT) says every other role was not held at its time, including roles
//     never seen here: developer_role_sets keeps the newest such time per user, and an
//     assignment not newer than it changes nothing.
//
// Locks keep the rules true under concurrent deliveries: a role change takes a shared
// advisory lock on each role it may grant, then the user's lock; Role.Deleted takes its role's
// lock exclusively, then each holder's lock. A grant thus either commits before the deletion
// (and is taken back by it) or sees its tombstone. Role locks always come before user locks and
// no transaction holds more than one exclusive role lock, so the order cannot deadlock.
//
// Tombstones are kept for LOGTO_TOMBSTONE_RETENTION (default 30 days, at least 24h), counted
// from recorded_at, then deleted by Cleanup: an idempotent batched DELETE that the function
// runs when it starts (an instance scaled to zero starts often) and every
// LOGTO_CLEANUP_INTERVAL (default 1h) while it runs, like the relay's outbox retention. Logto
// retries a delivery a fixed 3 times and then gives up; 30 days outlasts that, an outage and
// its backlog by orders of magnitude while bounding the table to a month of deletions. After
// expiry a deleted user's rows still carry the deletion's time, so what they held does not
// come back from an older event either; only a role they never held could be granted by a
// delivery more than 30 days late.
//
// # Deduplication
//
// Logto sends no delivery id, and a retry re-sends the same serialised payload. A delivery is
// therefore identified by SHA-256 of the raw body: processed_events gets (consumer
// "logto-webhook", source "logto:hook/<hookId>", id hex(sha256(body))). The hash is exact: two
// different events never collide, whereas hookId+createdAt+event+data id could merge two
// role changes of one user in the same millisecond. A semantically equal but re-serialised
// payload would not be recognised; it is harmless because every effect above is idempotent.
// The outbox CloudEvent ids are UUIDs derived (SHA-1 name-based) from the same hash, so even
// a duplicate that slipped through would carry the same event id to consumers, which dedupe on
// source+id.
//
// # Configuration (environment)
//
//	DATABASE_URL               PostgreSQL connection URL (required)
//	LOGTO_WEBHOOK_SIGNING_KEY  the hook's signing key (required); during a key rotation, several
//	                           keys separated by commas, any of which may sign
//	PLATFORM_ROLES             comma-separated Logto role names that are platform roles
//	                           (default "developer,admin")
//	LOGTO_TOMBSTONE_RETENTION  how long deletions are remembered (Go duration, default 720h,
//	                           at least 24h)
//	LOGTO_CLEANUP_INTERVAL     how often expired tombstones are deleted while running
//	                           (Go duration, default 1h)
//	PORT, LOG_LEVEL, ...       see shared/runtime
package main
