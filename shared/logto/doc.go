// Package logto is a client of the Logto Management API, the parts the
// marketplace uses: one third-party application per integration (create,
// user-consent scopes, secret rotation, delete) and user grants (list,
// revoke per application).
//
// The client authenticates as a machine-to-machine application with the
// client credentials grant at ${Endpoint}/oidc/token (resource
// https://default.logto.app/api, scope "all"), caches the token and renews it
// a minute before it expires (or at 90% of its lifetime for short ones), and
// once more on a 401.
//
// Retries: GET and DELETE are retried on network errors, 429 and 5xx; POST
// only on 429 and 503, where the server says it did not do the work, so an
// application is never created twice by a retry. Backoff is exponential from
// 100 ms with full jitter, capped at 2 s per wait and [Config.MaxAttempts]
// attempts. Every operation is safe to repeat: deleting what is already gone
// succeeds. Response bodies are read up to 1 MiB.
//
// The (method, path) pairs the client uses are checked against Logto's
// published route definitions in testdata/ (see testdata/README.md).
package logto
