// Package auth verifies Logto access tokens and guards HTTP routes and
// CloudEvents with per-route scopes.
//
// A [Verifier] checks, in this order: the token size (at most [MaxTokenBytes]),
// the compact JWS form, the header `alg` against [Config.Algorithms] (so `none`,
// HS256 keyed with the public key and RS256 are rejected when only ES384 is
// allowed), the header `typ`, the signature against the issuer's JWKS, then the
// issuer, the audience (the API resource indicator, so an ID token whose `aud`
// is a client id fails), `exp`, `nbf` and `iat`. Signature, issuer, audience
// and expiry are checked by github.com/coreos/go-oidc/v3 with a key set of our
// own ([keySet]); we add the checks go-oidc does not make (typ, nbf and iat
// bounds, exp inclusive).
//
// # Keys: rotation, revocation, discovery
//
// The key set fetches the JWKS at most once per [Config.MinRefreshInterval]
// (30 s; at most once per second before the first successful fetch), one
// fetch shared by all concurrent callers, whatever triggers it, so a flood of
// tokens with random key ids or forged signatures cannot turn into a flood of
// requests to the identity provider. A fetch is triggered by:
//
//   - an unknown `kid` (a key added at the identity provider);
//   - a known `kid` whose key does not verify the signature (a key replaced
//     under the same kid): after the fetch the signature is tried once more,
//     only if the published keys changed;
//   - a key set past its refresh time. The refresh time is the JWKS response's
//     Cache-Control max-age less its Age header (no-store and no-cache: the
//     next use), clamped between MinRefreshInterval (sooner is not allowed by
//     the rate limit) and [Config.JWKSMaxAge] (default and maximum
//     [MaxJWKSAge], 15 minutes; also when the response says nothing). The
//     first verification after it fetches before it verifies.
//
// Guarantee: once the identity provider has withdrawn a key, tokens signed
// with it, cached or not, are refused from the first verification after the
// key set's refresh time (at most JWKSMaxAge after the fetch that still
// listed the key), as long as the JWKS can be fetched. The verified-token
// cache holds no exception: each entry remembers the key set generation that
// verified it, any change of the published keys makes every entry a miss, and
// Verify brings the key set up to date before it consults the cache.
//
// When that refresh fails (identity provider down), the keys fetched earlier
// keep verifying for [Config.JWKSGrace] (default 15 minutes, at most an hour)
// past the refresh time, one failure logged per attempt, so a short outage
// does not log everyone out; after the grace every token is refused with
// [ErrJWKSUnavailable] until a fetch succeeds. A successful fetch replaces the
// whole set: a key it does not list is never trusted again, grace or not. We
// chose a bounded grace over failing closed at the refresh time because the
// keys are withdrawn far less often than the identity provider blips; set
// JWKSGrace negative to fail closed.
//
// The JWKS URL is [Config.JWKSURL] or the jwks_uri of the issuer's discovery
// document, which must name the issuer exactly and give an absolute http(s)
// URL (https if the issuer is). Discovery that fails at start does not fail
// [NewVerifier]: it is retried by verifications under the same rate limit,
// and until it succeeds every token is refused with [ErrJWKSUnavailable]. No
// JWKS URL is ever guessed: a wrong guess would stick for the life of the
// process.
//
// Decisions:
//
//   - Expiry has no leeway and is exclusive (RFC 7519 §4.1.4): a token is
//     rejected at the second of its `exp` (a fractional `exp` counts from its
//     whole second). `nbf` and `iat` may be at most [FutureLeeway] in the
//     future, to absorb clock steps between the identity server and this host.
//   - Logto access tokens carry `typ: at+jwt` (RFC 9068). A token whose `typ`
//     is present and is anything else (an ID token says `JWT`) is rejected;
//     a token without `typ` is accepted, its audience check still applies.
//   - Scopes come from the space-separated `scope` claim and match exactly:
//     `dashboard:read` is not granted by `dashboard:readonly`.
//   - Rejections are typed ([ErrExpired], [ErrAudience], ...) so the reason
//     is logged; the token itself is never logged.
//   - Verified tokens are remembered by their SHA-256 (Config.CacheSize,
//     default 10,000) for at most Config.CacheTTL (default 5 minutes, at most
//     JWKSMaxAge), never at or past `exp` and never across a change of the
//     published keys: a token reused across requests costs a hash and a map
//     lookup (about 2.5 µs) instead of a P-384 signature check (about 1 ms on
//     our 2-core runners). Failures are never cached.
package auth
