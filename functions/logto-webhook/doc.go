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
//   - User.Deleted: outbox event com.myscrollr.connect.user.deleted (aggregate "user", id = the
//     user id, from data.id, else params.userId); the user's platform roles are marked
//     inactive. The uninstall function consumes the event.
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
//   - Role.Deleted (role id from data.id, else params.id): every user holding that platform
//     role loses it; one developer.role.changed per affected user.
//   - Anything else: 204, ignored (logged at debug).
//
// Webhooks may arrive out of order (Logto delivers asynchronously and retries). Each
// (user, role) row keeps the createdAt of the webhook that last set it and is only changed by a
// webhook at least as recent (see schemas/migrations/00002_developers.sql).
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
//	PORT, LOG_LEVEL, ...       see shared/runtime
package main
