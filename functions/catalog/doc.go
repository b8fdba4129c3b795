// Command catalog serves the published catalog of MyScrollr Connect and its reviews.
//
// Routes:
//
//	GET    /v1/integrations                        search, filter, sort, keyset paging (public)
//	GET    /v1/integrations/{name}                 the listing's page (public)
//	GET    /v1/integrations/{name}/reviews         reviews, newest first, keyset paging (public)
//	PUT    /v1/integrations/{name}/reviews/mine    create or edit the caller's review (user token)
//	DELETE /v1/integrations/{name}/reviews/mine    delete it (user token)
//
// Configuration (environment): see Config (DATABASE_URL; LOGTO_ENDPOINT and LOGTO_API_RESOURCE
// for the review writes; DB_MAX_CONNS, CATALOG_MAX_WAITING, CATALOG_QUEUE_TIMEOUT and
// CATALOG_RETRY_AFTER for load shedding); PORT, LOG_LEVEL and the other runtime settings are
// read by shared/runtime.
//
// # Search
//
// q is matched with websearch_to_tsquery (simple and english configurations) against a
// weighted document: the names weigh A, the category and tags B, the description C. When that
// matches nothing on the first page, q is compared with the names by pg_trgm word similarity
// (the default threshold, 0.6), so "crypto tickr" or "wrold clock" still finds the listing;
// the cursor remembers which matched. sort=relevance ranks at most MaxRanked matches (the most
// popular ones): ranking is the expensive part of a search, and a one-word search can match
// most of the catalog. One GIN index (btree_gin) holds the document, the category and the
// type of published listings, so a search with those filters reads only the rows that match all.
//
// # Paging
//
// Paging is by keyset: next_cursor is an opaque token holding the sort key and id of the last
// item, so a page is an index range scan however deep the client pages, and listings inserted
// meanwhile neither repeat nor shift items across pages. A cursor is only valid with the sort
// it was made for. Sort keys in SQL are qualified with the table's alias, so ORDER BY never
// names a cast output column (which would defeat the index). sort=uptime sorts by uptime_30d
// with unknown uptimes last.
//
// # Caching
//
// Every public GET answers with a strong ETag (a hash of the body, equal on every replica) and
// Cache-Control: public, max-age=10 for lists and reviews, 30 for a listing's page; a request
// with a matching If-None-Match gets 304 and no body.
//
// # Reviews
//
// Any user token of the API resource may write (no scope: reviewing is open to every signed-in
// user), but only for an integration the user has installed (user_integrations), else 403; an
// application's own token (sub = client_id) gets 403. Rating 1 to 5, text at most
// MaxReviewText characters, one review per user and integration (PUT replaces it: 201 when
// created, 200 when edited). The review and the listing's rating_avg and rating_count change
// in one transaction that locks the listing's row first, so concurrent reviews never lose an
// update and the aggregate is exact.
//
// # Load shedding
//
// At most DB_MAX_CONNS requests run at once (the pool has as many connections); at most
// CATALOG_MAX_WAITING more wait, each at most CATALOG_QUEUE_TIMEOUT; every other request is
// answered at once with 503, Retry-After and a problem body (see Shedder). Overload is thus
// answered in milliseconds instead of queueing in the pool until clients time out.
//
// # Bad input
//
// Bad input is a 400 problem naming the parameter, never a 500: every query parameter, and the
// {name} segment, must be UTF-8 text without NUL bytes (PostgreSQL's text type refuses both),
// and a cursor is checked before any query (a known sort, a UUID id, a key that is a value of
// that sort's type: a 64-bit integer, a decimal, an RFC 3339 time, or text), so a forged one
// is refused with a reason instead of failing in PostgreSQL. FuzzCatalogHTTP holds the whole
// handler to this over a real, seeded database.
package main
