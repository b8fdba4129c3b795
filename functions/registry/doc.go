// Command registry is the developer portal's back end: developers register integrations from a
// manifest, add versions, publish, unpublish and deprecate them, rotate their Logto client
// secret and ask for verification; administrators review the queue and set tiers.
//
// # Routes
//
// Developer routes need a user token with integrations:write, and only ever see or change the
// caller's own integrations (integrations.developer_id = the token's sub): another developer's
// integration answers 404, exactly as a name that does not exist. Admin routes need
// integrations:admin. Authorization is by token scope only: developer.role.changed (from
// logto-webhook) is not consumed here, since a scope is checked on every request and a token
// minted before a role was removed expires within its lifetime; its Trigger is removed.
//
//	POST /v1/developer/integrations                       register a manifest: 201, client_id and client_secret, and the integration client's (shown once)
//	GET  /v1/developer/integrations                       own integrations (drafts too), paged by name
//	GET  /v1/developer/integrations/{name}                one, with versions, check results and stats
//	POST /v1/developer/integrations/{name}/versions       a new manifest version (semver must increase)
//	POST /v1/developer/integrations/{name}/publish        publish the latest version
//	POST /v1/developer/integrations/{name}/unpublish      leave the catalog
//	POST /v1/developer/integrations/{name}/deprecate      deprecation notice (message, sunset, replacement)
//	POST /v1/developer/integrations/{name}/secret         rotate the client secret (shown once)
//	POST /v1/developer/integrations/{name}/verification   ask for review (one pending at a time)
//	POST /v1/developer/payouts                            Stripe Connect onboarding: the Express account (once), an Account Link
//	GET  /v1/developer/payouts                            the account: charges/payouts enabled, details submitted
//	GET  /v1/admin/verifications                          pending requests, oldest first, paged
//	POST /v1/admin/integrations/{name}/tier               set the tier with a reason
//
// # Decisions
//
// Registration refuses what it can before calling anyone (manifest problems, every one named
// by JSON pointer; an unknown category; a taken name), then runs the automated checks (bounded
// by CHECK_TIMEOUT, outside any transaction), then creates the Logto application
// (Traditional, third-party; redirect URIs: INSTALL_CALLBACK_URL then the manifest's own;
// consent scopes: the manifest's) and the integration client (client.go: a machine-to-machine
// application whose role carries data:write for a push data source and no scope otherwise,
// the client_id with which the integration calls /v1/integration/... and /v1/ingest as
// itself), seals the main application's secret (shared/sealed, bound to the new row's id)
// and commits the integration, its first version, the check results and
// integration.registered in one transaction. If anything fails after the applications were
// created, they are deleted, so Logto holds no application without an integration (a failure
// of that delete is logged with the application id).
//
// The client secret is returned only by registration and rotation. The database holds it
// sealed because the install function exchanges consent codes with it; this function never
// opens it. A rotation changes Logto first and then the row: if the row cannot be written the
// answer is 503 and rotating again converges. The integration client's secret is returned only
// by registration and kept nowhere: the platform never acts as that client.
//
// Every state change commits with its outbox event in one transaction: registered,
// version.created, published, unpublished, deprecated, verification.requested,
// tier.changed. A request that changes nothing (publishing the version already published,
// unpublishing an unpublished listing) writes no event. A secret rotation writes none: the
// secret must never travel, and nothing needs to know.
//
// Publishing copies the latest version's fields into the listing and needs every required
// check of that version passed (422 naming each failing check as checks/<name> with its
// reason) and, for a paid listing, the verified or featured tier (409) and a developer account
// that can take charges (422 naming payouts; payouts.go). A version with no check
// results is never publishable. Tiers: featured needs verified (or featured); a published paid
// listing cannot be set back to unverified (unpublish first); setting the current tier is
// accepted only to resolve a pending request, which is how a request is rejected. Each
// decision is recorded in integration_tier_changes and resolves the pending request (approved
// for verified or featured, rejected for unverified).
//
// Versions: the new manifest keeps the name, type and delivery mode; its version must be
// greater than the latest by Semantic Versioning precedence (pre-releases below their release,
// build metadata ignored), else 409 naming /version.
//
// # Configuration (environment)
//
//	DATABASE_URL                  PostgreSQL connection URL (required)
//	LOGTO_ENDPOINT                Logto base URL (required); user tokens from LOGTO_ENDPOINT/oidc
//	LOGTO_API_RESOURCE            audience of user tokens (required)
//	LOGTO_M2M_APP_ID              Management API machine-to-machine app id (required)
//	LOGTO_M2M_APP_SECRET          its secret (required)
//	LOGTO_MANAGEMENT_RESOURCE     Management API resource (default https://default.logto.app/api)
//	SSRF_ALLOW                    destinations the checks may reach despite the SSRF rules (make dev: 127.0.0.1/32)
//	CLIENT_SECRET_KEYS            <kid>:<base64 of 32 bytes>[,...]; the first seals (required)
//	INSTALL_CALLBACK_URL          the platform's install callback, first redirect URI of every app (required)
//	MANIFEST_ALLOW_LOOPBACK_HTTP  accept http://127.0.0.1 URLs in manifests (default false; make dev: true)
//	CHECK_TIMEOUT                 bound of one run of the automated checks (default 20s)
//	CHECK_HEALTH_THRESHOLD        GET /health must answer within it (default 2s)
//	STRIPE_SECRET_KEY             the platform's Stripe key (unset: POST /v1/developer/payouts answers 503)
//	STRIPE_API_BASE               Stripe API base URL (make dev: stripe-mock; default Stripe)
//	PLATFORM_FEE_PERCENT          platform fee, whole percent 0-50 (default 15; validated here too)
//	FRONTEND_URL                  default base of the two onboarding URLs below
//	PAYOUTS_RETURN_URL            where onboarding returns (default FRONTEND_URL?payouts=return)
//	PAYOUTS_REFRESH_URL           where an expired onboarding link goes (default FRONTEND_URL?payouts=refresh)
//	PORT, LOG_LEVEL, ...          see shared/runtime
package main
