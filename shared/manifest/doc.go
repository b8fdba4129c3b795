// Package manifest is the integration manifest contract: the JSON document a developer
// registers (and versions) in the registry, saying what the integration is (name, type,
// delivery mode), where it answers (base_url), what it asks users for (scopes), what it costs
// (pricing), how it looks in the catalog, its per-type contract (a widget's sizes and settings,
// a data source's streams and refresh interval, an app's lifecycle delivery) and whether it is
// deprecated.
//
// The contract is the JSON Schema schemas/json/manifest.json (draft 2020-12), embedded in
// package schemas; this package compiles it once and adds the few rules a schema cannot say.
// [Parse] and [Validate] report every problem, each an [httpx.FieldError] whose Field is a JSON
// pointer (RFC 6901) into the manifest ("/pricing/price_cents", "/scopes/2", "" for the whole
// document), sorted by field then reason, so a handler answers one 400 listing them all.
//
// Decisions:
//
//   - Input is bounded before it is parsed: at most [MaxSize] bytes and [MaxDepth] levels of
//     nesting, so a hostile body costs neither memory nor stack.
//   - Reasons are written for developers: a subschema carrying "x-reason" (an annotation the
//     validator ignores) names its own failure; a missing member is "required", an unexpected
//     one "unknown field", each pointed at the member itself rather than its parent.
//   - Every URL is https, host only (no credentials, no IPv6 literals). The local runtime serves
//     the demo integrations on http://127.0.0.1, so [Options.AllowLoopbackHTTP] swaps the URL
//     rule for one that also accepts http on 127.0.0.1 (and nothing else: not localhost, not
//     ::1). The published schema stays https-only; the option compiles a second copy.
//   - What the seed's example lacks is optional or has a default: delivery_mode (pull, data
//     sources only; null is accepted as absent because the demo seeds write it so), pricing
//     (free), category (other), the per-type blocks (refresh_interval_seconds 300, app
//     lifecycle http). Only required: name, display_name, version, type, base_url, scopes.
//   - Scopes are the five user-grantable ones of shared/auth; integrations:* never appear.
//   - Whether the category exists, whether a version is greater than the last, and whether
//     base_url is public are the registry's checks (database, SSRF-safe client), not this
//     package's.
//   - No seed manifest.json file was found in this repository; testdata/seed.json is the minimal
//     manifest the first demo seeds wrote (only the required members, delivery_mode null), and
//     it must keep validating with loopback http allowed. The demo now writes complete
//     manifests and validates them before seeding (infra/local/demo).
//   - Tests: manifesttest holds a complete example of each type and an invalid value for every
//     schema member; the tests prove both cover the whole schema and send 1,000 generated
//     invalid manifests through Validate (and the registry through its handler).
package manifest
