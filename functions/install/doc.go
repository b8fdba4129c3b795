// Command install starts installs, takes the user's consent through the integration's Logto
// application, records the install and announces it, and hands the user's tokens to the
// integration once. See docs/decisions/0007-install-and-tokens.md.
//
// # Routes
//
//	POST /v1/installs                            user: {integration, scopes?} -> consent URL, pending install or the install
//	GET  /v1/installs                            user: their installs (scopes granted, sandbox, installed_at, subscription)
//	GET  /v1/installs/callback                   browser redirect (code, state) from the consent page (no token): 303 to FRONTEND_URL
//	POST /v1/integration/installs/{id}/token     the integration (its own token): the user's tokens, once
//
// The uninstall route (DELETE on /v1/installs/{integration}) is functions/uninstall's.
//
// User routes take any valid user token of the API resource (LOGTO_API_RESOURCE): no scope is
// required, because installing is what every signed-in user may do and the consent page is
// where the user decides what the integration gets. A machine-to-machine token (sub equal to
// client_id, as Logto issues them) is refused with 403: installs belong to people.
//
// # Starting an install
//
// The listing must be published, or the caller must be its developer: then it is a sandbox
// install, flagged in install.requested, install.completed and the install row, and never
// charged. Any other unpublished listing answers 404, as a name that does not exist. The
// requested scopes must be the manifest's (each refusal names scopes/<index>); absent means all
// of them. At the OpenID level the consent also asks for openid and offline_access (and
// prompt=consent, which Logto needs to issue a refresh token), so the integration keeps working
// after the access token expires.
//
// One attempt per user and integration exists at a time (install_attempts, unique), made under
// the advisory lock of migration 00008, so any number of concurrent identical requests agree on
// one attempt and one install.requested. A repeat answers 200 with the same attempt (the same
// consent URL while its state is valid); an installed integration answers 200 with the install
// (changing the scopes of an install is not done here: uninstall and install again). Asking
// again with other scopes, after the state expired, or after a revocation replaces the attempt.
// A new attempt answers 201.
//
// Free listings: {status: awaiting_consent, pending_install_id, consent_url, state_expires_at}.
// The consent URL is an authorization-code request with PKCE (S256) at LOGTO_ENDPOINT/oidc/auth
// for the integration's application (logto_app_id) with redirect_uri INSTALL_CALLBACK_URL and
// resource LOGTO_API_RESOURCE. The state is 32 random bytes, valid 10 minutes, single-use, bound
// to the user; it is stored as its SHA-256 (looked up by hash) and sealed (only to answer a
// repeat with the same URL); the PKCE verifier is stored sealed.
//
// Paid listings: {status: awaiting_payment, pending_install_id, checkout_url}, 201: a Stripe
// Checkout Session on the developer's connected account (checkout.go: direct charges, the
// platform fee, metadata, one session per pending install with an idempotency key derived from
// its id, stored in install_checkouts; a repeat answers the same session). A developer whose
// account cannot take charges is 422 naming integration, before anything is written; without
// STRIPE_SECRET_KEY, 503. When the payment has succeeded, stripe-webhook announces
// payment.succeeded with the pending install id; install consumes it at POST /events
// (payment_event.go, claimed in processed_events) and calls Service.ContinueAfterPayment(ctx,
// pendingID, paymentID), which moves the same attempt to consent and records the payment that
// install.completed then carries. That is the only way a paid attempt reaches consent.
//
// How the frontend continues: send the browser to checkout_url. Stripe returns it to
// FRONTEND_URL?checkout=success&integration=<name>&pending_install_id=<id> (or
// ?checkout=canceled&...: nothing changed, the same checkout_url still works). On success, POST
// /v1/installs again with the same body: awaiting_consent with consent_url once the webhook has
// been processed (send the browser there, as for a free listing); until then awaiting_payment with
// the same checkout_url, so poll (every 2 s, for up to a minute) rather than sending the user back
// to pay. A paid attempt whose consent URL expired gets a fresh one, never a second checkout.
// GET /v1/installs shows each install's subscription (status, current_period_end,
// cancel_at_period_end, access_ended_at and its reason) or null.
//
// # The callback
//
// It carries no bearer token (it is a browser redirect): the state is the binding. The one
// callback that moves the state's attempt from awaiting_consent to exchanging goes on; an
// unknown state (forged, or its install finished), a state being used, or an expired state is
// refused and changes nothing. The code is exchanged at LOGTO_ENDPOINT/oidc/token with the
// integration's client id and its secret (opened from integrations.client_secret_sealed) and the
// verifier, through a plain HTTP client (the identity server is platform configuration, not an
// integration URL). If the tokens are for someone other than the user who started the install
// (another user signed in on the page), nothing is recorded and that user's grant is revoked
// unless they have installed the integration themselves. Otherwise, under the advisory lock:
// if install_revocations says the install was revoked after the state was made, nothing is
// recorded and the grant just obtained is revoked; else the install (scopes granted = the
// token's scopes ∩ the requested ones), its sealed tokens (expiring INSTALL_TOKEN_TTL later),
// the install count and install.completed commit in one transaction. INSERT ... ON CONFLICT on
// (user, integration) keeps it to one install and one event whatever races.
//
// Every answer is 303 to FRONTEND_URL: ?installed=<name>, or ?install_error=<reason> with reason
// one of invalid_request, unknown_state, state_used, state_expired, access_denied, wrong_user,
// revoked, exchange_failed. A browser shows a problem+json body as raw text; the frontend can
// explain a reason. Once a state is consumed, any failure ends its attempt (the user starts
// again).
//
// # Tokens
//
// The user's tokens (access, refresh, expiry, scope) are sealed with CLIENT_SECRET_KEYS, bound
// to the install id, in install_tokens, and never logged nor put in an event (install.completed
// carries tokens_expire_at only). The integration claims them with a client-credentials token
// of its integration client (auth.RequireClient: client_id must be the install's integration's
// m2m_app_id, the machine-to-machine application the registry made; the integration's main
// application, the consent's OIDC client, cannot use client credentials): 200 with the
// tokens and Cache-Control: no-store, deleted in the same statement, so a second claim answers
// 410 Gone, as does a claim after INSTALL_TOKEN_TTL. A claim by another integration and a claim
// for an install that does not exist both answer the same 403, revealing nothing. A response lost
// after the claim loses the tokens: the user installs again. Expired tokens and attempts
// abandoned for an hour are swept, 100 at a time, on every callback and claim (an indexed
// delete; no schedule needed).
//
// # Configuration (environment)
//
//	DATABASE_URL                PostgreSQL connection URL (required)
//	LOGTO_ENDPOINT              Logto base URL (required): issuer LOGTO_ENDPOINT/oidc, consent and token endpoints
//	LOGTO_API_RESOURCE          audience of user tokens and the resource consented to (required)
//	LOGTO_M2M_APP_ID            Management API machine-to-machine app id (required)
//	LOGTO_M2M_APP_SECRET        its secret (required)
//	LOGTO_MANAGEMENT_RESOURCE   Management API resource (default https://default.logto.app/api)
//	CLIENT_SECRET_KEYS          <kid>:<base64 of 32 bytes>[,...], the registry's keys (required)
//	INSTALL_CALLBACK_URL        public URL of GET /v1/installs/callback, the registry's value (required)
//	FRONTEND_URL                where the callback sends the browser (required)
//	INSTALL_TOKEN_TTL           how long unclaimed tokens are kept (default 1h, 1m to 24h)
//	STRIPE_SECRET_KEY           the platform's Stripe key (unset: paid listings answer 503)
//	STRIPE_API_BASE             Stripe API base URL (make dev: stripe-mock; default Stripe)
//	PLATFORM_FEE_PERCENT        platform fee, whole percent 0-50 (default 15)
//	PORT, LOG_LEVEL, ...        see shared/runtime
package main
