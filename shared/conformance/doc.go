// Package conformance is the automated checks of an integration, run by the registry when a
// developer registers it and on every new version: [Run] calls the integration through the
// SSRF-safe client (package ssrf; never directly) and returns one [Result] per check, which
// the registry stores with the version and shows to the developer. Publishing needs every
// Required check passing on the current version.
//
// # Checks
//
//	name             required  applies to              passes when
//	schema           yes       all                     the manifest validates (schemas/json/manifest.json)
//	base_url         yes       all                     https and allowed by the SSRF rules (client.CheckURL)
//	health           yes       all                     GET /health: 2xx, healthy by schemas/json/health.json, within HealthThreshold
//	pull_schema      yes       pull data sources       GET /schema: 2xx, the pull-schema contract, every manifest stream declared
//	pull_data        yes       pull data sources       GET /data: 2xx, the pull-data contract, every record valid against its stream
//	push_schema      no        push data sources       GET /schema: 404 (not served), or 2xx and the pull-schema contract
//	widget_manifest  yes       widgets                 GET /manifest: 2xx, schemas/json/widget-manifest.json, agreeing with the manifest
//	widget_bundle    yes       widgets                 GET /bundle: 2xx, over https, JavaScript, not empty, at most MaxBundleBytes, integrity
//	lifecycle        yes       apps                    POST /lifecycle/install and /uninstall answer a test delivery (below)
//	mixed_content    yes       all                     no http:// link in icon, screenshots, support, privacy, author URLs, GET /manifest
//
// Results come in that order, only those of the integration's type. Paths are below base_url
// (base_url https://x.example/api: GET https://x.example/api/health).
//
// # Decisions
//
//   - If base_url fails, nothing is called: every check that would call the integration fails
//     with "not called: base_url failed its check". A base_url whose host is a name passes
//     CheckURL and its addresses are checked when dialed, so a name that resolves to a private
//     address fails at the call, "refused by the SSRF rules: private".
//   - The health answer is judged by package health (shared/conformance/health), the same code
//     as the health probe's, so the two never disagree about a body. The check passes only on
//     a healthy status: an integration reporting "degraded" when it is registered fails (the
//     listing would show degraded from its first minute). Slower than HealthThreshold (default
//     2s, the probe's degraded threshold) fails with the response time; the call itself is
//     bounded by CallTimeout.
//   - Pull sources are checked with shared/records, as the poller reads them: a record that
//     the poller would reject fails pull_data, naming the first record and its problems
//     ("GET /data does not match GET /schema: 1 of 2 records refused; /records/0:
//     /data/price_cents: got string, want integer"). An empty /data passes (nothing to check).
//   - Push sources have nothing the platform must call. A push source may serve GET /schema
//     (the pull-schema contract) to declare its streams; push_schema reports on it but is not
//     required.
//   - The widget manifest contract is schemas/json/widget-manifest.json: name, version and the
//     custom element the bundle defines are required; sizes, min_size, max_size and config
//     have the shapes of the manifest's widget block (referenced from manifest.json, so they
//     cannot drift) and, when served, must equal the registered block; integrity (Subresource
//     Integrity, sha256/384/512) is optional and, when present, the bundle must match it.
//   - The bundle must come over https after redirects (a redirect to http fails it), with
//     Content-Type text/javascript or application/javascript (parameters such as charset are
//     ignored), not empty, at most MaxBundleBytes (default 2 MiB). The bundle's text is not
//     scanned for http:// (scripts legitimately hold strings such as the SVG namespace
//     http://www.w3.org/2000/svg); the mixed-content scan covers what the platform renders
//     from the listing and every string of GET /manifest, member names included.
//   - Lifecycle test delivery: POST /lifecycle/install and POST /lifecycle/uninstall, each
//     with Content-Type application/json, webhook-id "msg_check_<hex>", webhook-timestamp
//     (Unix seconds) and no webhook-signature, body
//     {"type":"com.myscrollr.connect.lifecycle.test","id":"msg_check_<hex>","test":true,"data":{}}.
//     It passes with 2xx (taken; the reason suggests verifying signatures), or 400, 401 or 403
//     (refused for lacking a valid signature, which is what an app verifying Standard Webhooks
//     signatures does; the signed delivery is issue 8). 404, 405, 5xx, a timeout or a failed
//     connection fail it. Apps whose manifest says "lifecycle": "kafka" get their lifecycle
//     events on their Kafka topic: nothing is called and the check passes.
//   - Reasons are short, for the developer, and never carry a URL (its query may hold a token),
//     an address, or a link found by the scan: they name the path ("GET /bundle") or the JSON
//     pointer ("/screenshots/1"). They are cut to 500 bytes of valid UTF-8.
//   - Every body is bounded (health 4 KiB, documents MaxDocumentBytes, bundle MaxBundleBytes)
//     on top of the client's own limits; every call by CallTimeout and ctx. health and the
//     type's checks run concurrently, and so do the two lifecycle calls; GET /schema precedes
//     GET /data and GET /manifest precedes GET /bundle (the data and the bundle are judged by
//     what those say).
//   - Local runtime: Options.AllowLoopbackHTTP accepts http on 127.0.0.1 wherever https is
//     required (make dev and tests; the client needs ssrf.Config.Allow for 127.0.0.1 too).
//     base_url http://127.0.0.1:port then passes without CheckURL. Nothing else is exempt:
//     http://10.0.0.1 is refused as private, http://127.0.0.1.example.com is a link to flag.
package conformance
