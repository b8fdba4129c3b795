package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
)

// Listing is one integration as the catalog shows it.
type Listing struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	DisplayName      string    `json:"display_name"`
	Type             string    `json:"type"`
	DeliveryMode     *string   `json:"delivery_mode,omitempty"`
	Description      string    `json:"description"`
	Category         string    `json:"category"`
	Tags             []string  `json:"tags"`
	VerificationTier string    `json:"verification_tier"`
	Pricing          Pricing   `json:"pricing"`
	Health           Health    `json:"health"`
	Rating           Rating    `json:"rating"`
	InstallCount     int64     `json:"install_count"`
	CurrentVersion   *string   `json:"current_version,omitempty"`
	PublishedAt      time.Time `json:"published_at"`
}

// Pricing is what a listing costs: integer cents in a currency.
type Pricing struct {
	Model      string `json:"model"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
}

// Health is the last known status and the uptime in percent over the last 24 hours, 7 days
// and 30 days (each null until the probe has measured time in it; see functions/health-probe).
type Health struct {
	Status    string   `json:"status"`
	Uptime24h *float64 `json:"uptime_24h"`
	Uptime7d  *float64 `json:"uptime_7d"`
	Uptime30d *float64 `json:"uptime_30d"`
}

// Rating is the average of the reviews (0 when there are none) and their count.
type Rating struct {
	Average float64 `json:"average"`
	Count   int     `json:"count"`
}

// Page is one page of listings; NextCursor is empty on the last page.
type Page struct {
	Items      []Listing `json:"items"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

const (
	defaultLimit = 20
	maxLimit     = 100
	maxQueryLen  = 200
	maxTags      = 5
)

// sortSpec says how one sort order is expressed in SQL and in a cursor.
type sortSpec struct {
	expr string // the sort key (before id)
	cast string // how the cursor's key is cast back
	asc  bool
}

// The sort keys are qualified with the table's alias: an unqualified name in ORDER BY would
// name the output column of the same name, which the select list casts (rating_avg::float8,
// id::text), and a sort by a cast cannot use the index (the Measure section of issue 7: 140
// times slower).
var sorts = map[string]sortSpec{
	"popular":   {expr: "i.install_count", cast: "bigint"},
	"rating":    {expr: "i.rating_avg", cast: "numeric"},
	"newest":    {expr: "i.published_at", cast: "timestamptz"},
	"name":      {expr: "i.display_name", cast: "text", asc: true},
	"uptime":    {expr: "coalesce(i.uptime_30d, -1)", cast: "numeric"}, // unknown last
	"relevance": {expr: "i.rank", cast: "real"},
}

const tsQuery = "(websearch_to_tsquery('simple', @q) || websearch_to_tsquery('english', @q))"

// MaxRanked bounds how many matches of a search are ranked for sort=relevance: the most
// popular ones (install_count, id). Ranking reads every ranked row, so an unbounded rank costs
// in proportion to the matches (90,000 rows for a common word, the Measure section of issue 7),
// while a user reads the first pages. Taking the most popular matches lets PostgreSQL walk a
// popularity index and stop after MaxRanked matches when a word is common, or collect the few
// matches from the search index when it is rare; and it is a stable set, so pages do not
// shift. A search narrower than this ranks every match.
const MaxRanked = 200

// rankSQL is the relevance of a listing: ts_rank of the weighted document, or for a search
// that matched nothing as words (typo tolerance, see Store.List) the trigram word similarity
// of the query to the names.
const (
	rankSQL      = "ts_rank(i.search, " + tsQuery + ")"
	fuzzyRankSQL = "word_similarity(lower(@q), i.search_name)"
	fuzzyMatch   = "i.search_name %> lower(@q)"
)

var (
	allowedParams = map[string]bool{"q": true, "type": true, "category": true, "tag": true,
		"pricing": true, "tier": true, "delivery_mode": true, "min_rating": true, "sort": true, "limit": true, "cursor": true}
	enumParams = map[string][]string{
		"type":          {"data_source", "widget", "app"},
		"pricing":       {"free", "paid", "one_time", "subscription"},
		"tier":          {"unverified", "verified", "featured"},
		"delivery_mode": {"pull", "push"},
		"sort":          {"popular", "rating", "newest", "name", "uptime", "relevance"},
	}
	// The patterns compile on first use, not at package init: a cold start that serves
	// nothing yet should not pay for them (tests/coldstart measures start-up).
	slugRE = lazyRegexp(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// lazyRegexp compiles pattern once, on first use.
func lazyRegexp(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}

// query is a validated list request.
type query struct {
	q, typ, category, pricing, tier, mode, sort string
	tags                                        []string
	minRating                                   string // a decimal from 1 to 5, or ""
	limit                                       int
	after                                       *cursor
}

// cursor is where a page ends: the sort, and the sort key and id of its last item.
type cursor struct {
	Sort  string `json:"s"`
	Key   string `json:"k"`
	ID    string `json:"id"`
	Fuzzy bool   `json:"f,omitempty"` // the search matched by trigram similarity (Store.List)
	key   any    // Key as the value bound to the query (set by decodeCursor)
}

// parseQuery validates the query string, naming every bad parameter.
func parseQuery(v url.Values) (query, error) {
	var q query
	var bad []httpx.FieldError
	fail := func(field, reason string) { bad = append(bad, httpx.FieldError{Field: field, Reason: reason}) }
	// PostgreSQL refuses NUL bytes and invalid UTF-8 in text, which would surface as a 500:
	// refuse them here, for every parameter, before anything reaches a query. The names are
	// sorted so the reply is the same for the same request, and only a few unknown names are
	// listed, so a request with thousands of parameters does not get an answer as large.
	names := slices.Sorted(maps.Keys(v))
	unknown := 0
	for _, name := range names {
		vals := v[name]
		if !allowedParams[name] {
			if unknown++; unknown <= maxUnknownListed {
				fail(fieldName(name), "unknown query parameter")
			}
			continue
		}
		if name != "tag" && len(vals) > 1 {
			fail(name, "given more than once")
		}
		for _, val := range vals {
			if reason := badText(val); reason != "" {
				fail(name, reason)
				v = without(v, name) // checked no further
				break
			}
		}
	}
	if unknown > maxUnknownListed {
		fail("query", fmt.Sprintf("%d unknown query parameters in all; the allowed ones are %s",
			unknown, strings.Join(slices.Sorted(maps.Keys(allowedParams)), ", ")))
	}
	for name, allowed := range enumParams {
		val := v.Get(name)
		if val == "" {
			continue
		}
		if !slices.Contains(allowed, val) {
			fail(name, "must be one of "+strings.Join(allowed, ", "))
		}
	}
	q.q = strings.TrimSpace(v.Get("q"))
	if len(q.q) > maxQueryLen {
		fail("q", fmt.Sprintf("at most %d characters", maxQueryLen))
	}
	q.typ, q.pricing, q.tier, q.mode = v.Get("type"), v.Get("pricing"), v.Get("tier"), v.Get("delivery_mode")
	if q.category = v.Get("category"); q.category != "" && !slugRE().MatchString(q.category) {
		fail("category", "must be a category slug (lower-case letters, digits and dashes)")
	}
	q.tags = v["tag"]
	if len(q.tags) > maxTags {
		fail("tag", fmt.Sprintf("at most %d tags", maxTags))
	}
	for _, t := range q.tags {
		if !slugRE().MatchString(t) {
			fail("tag", fmt.Sprintf("%q is not a tag (lower-case letters, digits and dashes)", clip.Ellipsis(t, 40)))
			break
		}
	}
	if s := v.Get("min_rating"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if !decimalRE().MatchString(s) || err != nil || f < 1 || f > 5 {
			fail("min_rating", "must be a number from 1 to 5")
		} else {
			q.minRating = s
		}
	}
	q.limit = defaultLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			fail("limit", fmt.Sprintf("must be an integer from 1 to %d", maxLimit))
		}
		q.limit = n
	}
	q.sort = v.Get("sort")
	switch {
	case q.sort == "" && q.q != "":
		q.sort = "relevance"
	case q.sort == "":
		q.sort = "popular"
	case q.sort == "relevance" && q.q == "":
		fail("sort", "relevance needs a search query q")
	}
	if s := v.Get("cursor"); s != "" {
		c, err := decodeCursor(s)
		if err != nil {
			fail("cursor", err.Error())
		} else if c.Sort != q.sort {
			fail("cursor", "was made for sort="+c.Sort+"; keep the same sort when paging")
		} else {
			q.after = &c
		}
	}
	if len(bad) > 0 {
		return q, httpx.BadRequest("invalid query parameters", bad...)
	}
	return q, nil
}

// maxUnknownListed is how many unknown parameter names a 400 lists one by one.
const maxUnknownListed = 5

// badText says why s cannot be used as text (PostgreSQL's text type refuses NUL bytes and
// invalid UTF-8), or "" when it can.
func badText(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL bytes"
	}
	return ""
}

// fieldName is how a parameter name is shown in a problem: as given when it is short, printable
// UTF-8, else quoted (Go syntax) and shortened, so the reply is readable and bounded.
func fieldName(name string) string {
	clean := name != "" && utf8.ValidString(name) && len(name) <= 64 && !strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) })
	if clean {
		return name
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return strconv.QuoteToASCII(name)
}

func without(v url.Values, name string) url.Values {
	c := maps.Clone(v)
	delete(c, name)
	return c
}

// maxCursorLen bounds a cursor. The longest genuine one is for sort=name: a display name of
// 100 characters, each at most 6 bytes once JSON-escaped, plus the id, about 900 characters in
// base64.
const maxCursorLen = 1024

// decodeCursor decodes and checks a cursor, so that a forged one is refused here with a
// reason instead of failing in PostgreSQL: the sort must exist, the id must be a UUID, and the
// key must be a value of the sort key's type.
func decodeCursor(s string) (cursor, error) {
	var c cursor
	if len(s) > maxCursorLen {
		return c, fmt.Errorf("too long (at most %d characters)", maxCursorLen)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, errors.New("not a cursor from this API (not unpadded base64url)")
	}
	if err := json.Unmarshal(raw, &c); err != nil || sorts[c.Sort].expr == "" {
		return c, errors.New("not a cursor from this API")
	}
	id, err := uuid.Parse(c.ID)
	if err != nil || len(c.ID) != 36 {
		return c, errors.New("not a cursor from this API (its id is not a UUID)")
	}
	c.ID = id.String()
	key, err := parseKey(c.Sort, c.Key)
	if err != nil {
		return c, fmt.Errorf("not a cursor from this API (its key is %s)", err)
	}
	c.key = key
	return c, nil
}

// decimalRE is the text of a numeric sort key (rating_avg is numeric(3,2)).
var decimalRE = lazyRegexp(`^-?[0-9]{1,12}(\.[0-9]{1,12})?$`)

// floatRE is the text of a real sort key as PostgreSQL writes it (ts_rank: "0.0607927",
// "1e-20"); strconv alone would also take hex, "Inf" and "NaN".
var floatRE = lazyRegexp(`^-?[0-9]{1,40}(\.[0-9]{1,40})?(e[-+]?[0-9]{1,3})?$`)

// Layouts of a timestamptz key: RFC 3339 as cursors are made now, and PostgreSQL's ISO text
// output, as they were made before.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999Z07:00"}

// parseKey turns a cursor's key into the value bound to @after_key for sortName, or fails.
func parseKey(sortName, key string) (any, error) {
	switch sorts[sortName].cast {
	case "bigint":
		n, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			return nil, errors.New("not a 64-bit integer")
		}
		return n, nil
	case "numeric":
		if !decimalRE().MatchString(key) {
			return nil, errors.New("not a decimal number")
		}
		return key, nil
	case "timestamptz":
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, key); err == nil {
				return t, nil
			}
		}
		return nil, errors.New("not a time")
	case "real":
		if !floatRE().MatchString(key) {
			return nil, errors.New("not a decimal number")
		}
		f, err := strconv.ParseFloat(key, 32)
		if err != nil || math.IsInf(f, 0) {
			return nil, errors.New("not a finite number")
		}
		return float32(f), nil
	case "text":
		if badText(key) != "" {
			return nil, errors.New("not text")
		}
		return key, nil
	}
	return nil, errors.New("unknown sort")
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Store reads the catalog and writes reviews.
type Store struct{ pool *pgxpool.Pool }

// listingColumns are read from the alias i; rating and uptimes are numeric in the table and
// float8 on the wire.
const listingColumns = `i.id::text, i.name, i.display_name, i.type, i.delivery_mode, i.description, i.category, i.tags,
	i.verification_tier, i.pricing_model, i.price_cents, i.currency, i.health_status, i.uptime_24h::float8, i.uptime_7d::float8, i.uptime_30d::float8,
	i.rating_avg::float8, i.rating_count, i.install_count, i.current_version, i.published_at`

// List returns one page of published listings.
//
// A search (q) matches the words of the weighted document (names, category and tags,
// description). When that matches nothing on the first page, the search is retried against
// the names by trigram word similarity, so a one-letter typo ("crypto tickr") still finds the
// listing; the cursor remembers which of the two matched, so every page of one listing uses the
// same one.
func (s *Store) List(ctx context.Context, q query) (Page, error) {
	fuzzy := q.after != nil && q.after.Fuzzy
	page, err := s.list(ctx, q, fuzzy)
	if err == nil && q.q != "" && q.after == nil && !fuzzy && len(page.Items) == 0 {
		page, err = s.list(ctx, q, true)
	}
	return page, err
}

func (s *Store) list(ctx context.Context, q query, fuzzy bool) (Page, error) {
	spec := sorts[q.sort]
	where := []string{"i.is_published"}
	args := pgx.NamedArgs{"limit": q.limit + 1}
	add := func(cond, name string, val any) {
		where = append(where, cond)
		args[name] = val
	}
	if q.q != "" {
		args["q"] = q.q
		if fuzzy {
			where = append(where, fuzzyMatch)
		} else {
			where = append(where, "i.search @@ "+tsQuery)
		}
	}
	if q.typ != "" {
		add("i.type = @type", "type", q.typ)
	}
	if q.category != "" {
		add("i.category = @category", "category", q.category)
	}
	if len(q.tags) > 0 {
		add("i.tags @> @tags", "tags", q.tags)
	}
	if q.tier != "" {
		add("i.verification_tier = @tier", "tier", q.tier)
	}
	if q.mode != "" {
		add("i.delivery_mode = @mode", "mode", q.mode)
	}
	if q.minRating != "" {
		add("i.rating_avg >= @min_rating::numeric", "min_rating", q.minRating)
	}
	switch q.pricing {
	case "":
	case "paid":
		where = append(where, "i.pricing_model <> 'free'")
	default:
		add("i.pricing_model = @pricing", "pricing", q.pricing)
	}
	dir, cmp := "DESC", "<"
	if spec.asc {
		dir, cmp = "ASC", ">"
	}
	var after string
	if q.after != nil {
		after = fmt.Sprintf(" AND (%s, i.id) %s (@after_key::%s, @after_id::uuid)", spec.expr, cmp, spec.cast)
		args["after_key"], args["after_id"] = q.after.key, q.after.ID
	}
	var sql string
	if q.sort == "relevance" {
		// Rank the MaxRanked most popular matches (the inner subquery; its LIMIT keeps the
		// rank out of it, so only candidates are ranked), then page by (rank, id).
		rank := rankSQL
		if fuzzy {
			rank = fuzzyRankSQL
		}
		args["max_ranked"] = MaxRanked
		sql = fmt.Sprintf(`SELECT %s, i.rank::text FROM (
			SELECT i.*, %s AS rank FROM (
				SELECT i.* FROM integrations i WHERE %s ORDER BY i.install_count DESC, i.id DESC LIMIT @max_ranked) i) i
			WHERE true%s ORDER BY i.rank DESC, i.id DESC LIMIT @limit`,
			listingColumns, rank, strings.Join(where, " AND "), after)
	} else {
		sql = fmt.Sprintf("SELECT %s, (%s)::text FROM integrations i WHERE %s%s ORDER BY %s %s, i.id %s LIMIT @limit",
			listingColumns, spec.expr, strings.Join(where, " AND "), after, spec.expr, dir, dir)
	}
	qargs := []any{args}
	if q.q != "" {
		// A search is planned with its text (QueryExecModeExec: an unnamed statement, a custom
		// plan), so websearch_to_tsquery(@q) is folded to a constant once. Under the generic
		// plan that pgx's statement cache gets after five runs it is not, and is parsed again
		// for every row the filter and the rank look at: 10 to 60 times slower (tests/catalogload).
		qargs = []any{pgx.QueryExecModeExec, args}
	}
	rows, err := s.pool.Query(ctx, sql, qargs...)
	if err != nil {
		return Page{}, fmt.Errorf("catalog: list: %w", err)
	}
	page := Page{Items: make([]Listing, 0, q.limit+1)}
	var keys []string
	for rows.Next() {
		var l Listing
		var key string
		if err := rows.Scan(listingDest(&l, &key)...); err != nil {
			rows.Close()
			return Page{}, fmt.Errorf("catalog: scan: %w", err)
		}
		page.Items = append(page.Items, l)
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("catalog: list: %w", err)
	}
	if len(page.Items) > q.limit {
		page.Items = page.Items[:q.limit]
		last := page.Items[q.limit-1]
		key := keys[q.limit-1]
		if q.sort == "newest" {
			// Not PostgreSQL's text, which depends on the session's DateStyle and TimeZone.
			key = last.PublishedAt.UTC().Format(time.RFC3339Nano)
		}
		page.NextCursor = cursor{Sort: q.sort, Key: key, ID: last.ID, Fuzzy: fuzzy}.encode()
	}
	return page, nil
}

// Detail is one listing as its own page shows it: the listing, its badge, icon, screenshots
// and deprecation.
type Detail struct {
	Listing
	// Badge is the verification badge shown on the listing: "verified" or "featured"; null for
	// unverified listings.
	Badge *string `json:"badge"`
	// Icon and Screenshots are URLs from the current manifest (null and [] when it has none).
	Icon        *string  `json:"icon"`
	Screenshots []string `json:"screenshots"`
	// Deprecation is set when the developer has deprecated the integration.
	Deprecation *Deprecation `json:"deprecation"`
}

// Deprecation says the integration is going away, when, and what replaces it.
type Deprecation struct {
	Message      string    `json:"message"`
	Sunset       *string   `json:"sunset"`      // YYYY-MM-DD, null when none is set
	Replacement  *string   `json:"replacement"` // an integration name, null when none is set
	DeprecatedAt time.Time `json:"deprecated_at"`
}

// Get returns the published listing named name.
func (s *Store) Get(ctx context.Context, name string) (Detail, error) {
	var d Detail
	var key string
	var depAt *time.Time
	var depMsg, sunset, repl *string
	dest := append(listingDest(&d.Listing, &key), &d.Icon, &d.Screenshots, &depAt, &depMsg, &sunset, &repl)
	err := s.pool.QueryRow(ctx, "SELECT "+listingColumns+`, ''::text,
		CASE WHEN jsonb_typeof(i.manifest->'icon') = 'string' THEN i.manifest->>'icon' END,
		ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(i.manifest->'screenshots') = 'array'
			THEN i.manifest->'screenshots' ELSE '[]' END)),
		i.deprecated_at, i.deprecation_message, to_char(i.deprecation_sunset, 'YYYY-MM-DD'), i.deprecation_replacement
		FROM integrations i WHERE i.is_published AND i.name = $1`, name).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, httpx.NotFound(fmt.Sprintf("no published integration is named %q", name))
	}
	if err != nil {
		return d, fmt.Errorf("catalog: get %s: %w", name, err)
	}
	if d.VerificationTier != "unverified" {
		tier := d.VerificationTier
		d.Badge = &tier
	}
	if depAt != nil && depMsg != nil {
		d.Deprecation = &Deprecation{Message: *depMsg, Sunset: sunset, Replacement: repl, DeprecatedAt: *depAt}
	}
	return d, nil
}

func listingDest(l *Listing, key *string) []any {
	return []any{&l.ID, &l.Name, &l.DisplayName, &l.Type, &l.DeliveryMode, &l.Description, &l.Category, &l.Tags,
		&l.VerificationTier, &l.Pricing.Model, &l.Pricing.PriceCents, &l.Pricing.Currency, &l.Health.Status,
		&l.Health.Uptime24h, &l.Health.Uptime7d, &l.Health.Uptime30d, &l.Rating.Average, &l.Rating.Count, &l.InstallCount, &l.CurrentVersion, &l.PublishedAt, key}
}

// Cache lifetimes of the public GETs. Lists change whenever a listing is installed or rated,
// so shared caches keep them briefly; a listing's page changes less often. Both carry an ETag,
// so a client revalidates with If-None-Match for a 304 and no body.
const (
	listCacheControl   = "public, max-age=10"
	detailCacheControl = "public, max-age=30"
)

// Routes is the catalog's HTTP API. Every route that uses the database runs behind shed (load
// shedding; nil: none); the review writes need a user token verified by v (nil: the review
// writes answer 503, the public GETs keep working).
func Routes(store *Store, v *auth.Verifier, shed *Shedder) http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) {
		if shed != nil {
			h = shed.Wrap(h)
		}
		mux.Handle(pattern, h)
	}
	handle("GET /v1/integrations", httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		values, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			// A bad %-escape, a ';' separator, or more parameters than net/url parses.
			return httpx.BadRequest("malformed query string", httpx.FieldError{Field: "query", Reason: err.Error()})
		}
		q, err := parseQuery(values)
		if err != nil {
			return err
		}
		page, err := store.List(r.Context(), q)
		if err != nil {
			return err
		}
		return writeCached(w, r, listCacheControl, &page)
	}))
	handle("GET /v1/integrations/{name}", httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		name, err := pathName(r)
		if err != nil {
			return err
		}
		d, err := store.Get(r.Context(), name)
		if err != nil {
			return err
		}
		return writeCached(w, r, detailCacheControl, &d)
	}))
	store.reviewRoutes(handle, v)
	return mux
}

// pathName is the {name} segment, checked before any query.
func pathName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !slugRE().MatchString(name) {
		return "", httpx.BadRequest("invalid integration name", httpx.FieldError{Field: "name",
			Reason: "must be lower-case letters, digits and dashes, starting with a letter or digit"})
	}
	return name, nil
}
