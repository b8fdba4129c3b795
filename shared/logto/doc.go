// Package logto is a client of the Logto Management API, the parts the
// marketplace uses: one third-party application per integration (create,
// user-consent scopes, secret rotation, delete), user grants (list, revoke
// per application), and the credentials of push sources.
//
// # Push credentials
//
// A push source authenticates with the client credentials of a
// machine-to-machine application whose role carries `data:write` on the API
// resource. [Client.CreateM2M] makes all of it in one call and
// [Client.DeleteM2M] removes it:
//
//	m, err := lc.CreateM2M(ctx, logto.NewM2M{Name: name, Resource: apiResource, Scopes: []string{auth.ScopeDataWrite}})
//	// m.AppID is the client_id, m.Secret the client secret (shown once), m.RoleID the role.
//	err = lc.DeleteM2M(ctx, logto.M2M{AppID: appID, RoleID: roleID})
//
// Steps: the scope names are resolved to scope ids ([Client.ScopeIDs]: the
// resource found by its indicator in GET /api/resources, its scopes listed by
// GET /api/resources/{id}/scopes; roles and consent take scope ids, which in
// Logto are not the names), then POST /api/applications (type
// MachineToMachine), POST /api/roles (type MachineToMachine, the scope ids),
// POST /api/roles/{id}/applications. The role is its application's alone and
// named after its id ("m2m <app id>"): role names are unique per tenant, so a
// retried registration never collides with a leftover, and deleting one push
// source's role never takes a scope from another. If a step fails, what was
// made is deleted (best effort, logged) and the first error returned. The
// primitives ([Client.CreateM2MApplication], [Client.CreateRole],
// [Client.AssignRole], [Client.DeleteRole], ...) are exported for other uses.
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
