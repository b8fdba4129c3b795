package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/runtime"
)

type reviewBundle struct {
	bundle
	idp *idp.Server
}

// setupReviews is the catalog with review writes: a real database and the development identity
// server, the routes behind the runtime's handler.
func setupReviews(t *testing.T) reviewBundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: s.Issuer(), Audience: idp.DefaultAPIResource,
		Logger: slog.New(slog.DiscardHandler)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := pgtest.Pool(t)
	h, err := runtime.NewHandler(runtime.Function{Name: "catalog", HTTP: Routes(&Store{pool: pool}, v, nil)},
		runtime.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return reviewBundle{bundle: bundle{srv: srv, pool: pool}, idp: s}
}

func (b reviewBundle) token(t testing.TB, sub string) string {
	t.Helper()
	tok, err := b.idp.Mint(idp.TokenRequest{Subject: sub})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (b reviewBundle) install(t testing.TB, user, name string) {
	t.Helper()
	b.exec(t, `INSERT INTO user_integrations (user_id, integration_id) SELECT $1, id FROM integrations WHERE name = $2`, user, name)
}

// send makes a request with a bearer token (none when tok is "") and a JSON body (none when
// body is nil; a string is sent as is).
func (b reviewBundle) send(t testing.TB, method, path, tok string, body any) (int, []byte) {
	t.Helper()
	var rd *bytes.Reader
	switch v := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(v))
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, buf.Bytes()
}

func (b reviewBundle) rating(t testing.TB, name string) (avg float64, n int) {
	t.Helper()
	if err := b.pool.QueryRow(context.Background(), `SELECT rating_avg::float8, rating_count FROM integrations WHERE name = $1`, name).Scan(&avg, &n); err != nil {
		t.Fatal(err)
	}
	return avg, n
}

const mine = "/v1/integrations/crypto-ticker/reviews/mine"

func TestReviewsAuthAndInstalledOnly(t *testing.T) {
	t.Parallel()
	b := setupReviews(t)
	b.insert(t, seed{name: "crypto-ticker", published: true})
	b.insert(t, seed{name: "draft", published: false})
	b.install(t, "user-a", "crypto-ticker")
	b.install(t, "user-a", "draft")
	body := map[string]any{"rating": 4, "text": "good"}
	if code, _ := b.send(t, http.MethodPut, mine, "", body); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := b.send(t, http.MethodPut, mine, "not-a-jwt", body); code != http.StatusUnauthorized {
		t.Errorf("bad token: %d, want 401", code)
	}
	if code, _ := b.send(t, http.MethodPut, mine, b.token(t, "user-b"), body); code != http.StatusForbidden {
		t.Errorf("not installed: %d, want 403", code)
	}
	if code, _ := b.send(t, http.MethodDelete, mine, b.token(t, "user-b"), nil); code != http.StatusForbidden {
		t.Errorf("delete, not installed: %d, want 403", code)
	}
	// An application's own token (sub = client_id) is not a user's.
	app, err := b.idp.Mint(idp.TokenRequest{Subject: "app-1", ClientID: "app-1"})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := b.send(t, http.MethodPut, mine, app, body); code != http.StatusForbidden {
		t.Errorf("application token: %d, want 403", code)
	}
	if code, _ := b.send(t, http.MethodPut, "/v1/integrations/draft/reviews/mine", b.token(t, "user-a"), body); code != http.StatusNotFound {
		t.Errorf("unpublished: %d, want 404", code)
	}
	if code, _ := b.send(t, http.MethodPut, "/v1/integrations/Bad%20Name/reviews/mine", b.token(t, "user-a"), body); code != http.StatusBadRequest {
		t.Errorf("bad name: %d, want 400", code)
	}
	if avg, n := b.rating(t, "crypto-ticker"); avg != 0 || n != 0 {
		t.Errorf("after refused writes: rating %v over %d", avg, n)
	}
}

func TestReviewLifecycle(t *testing.T) {
	t.Parallel()
	b := setupReviews(t)
	b.insert(t, seed{name: "crypto-ticker", published: true})
	for _, u := range []string{"user-a", "user-b"} {
		b.install(t, u, "crypto-ticker")
	}
	a, bb := b.token(t, "user-a"), b.token(t, "user-b")

	code, raw := b.send(t, http.MethodPut, mine, a, map[string]any{"rating": 5, "text": "Great ticker"})
	var got MyReview
	if code != http.StatusCreated || json.Unmarshal(raw, &got) != nil || got.Review.Rating != 5 || got.Review.Text != "Great ticker" ||
		got.IntegrationRating != (Rating{Average: 5, Count: 1}) {
		t.Fatalf("create = %d %s", code, raw)
	}
	first := got.Review
	code, raw = b.send(t, http.MethodPut, mine, bb, map[string]any{"rating": 2})
	if code != http.StatusCreated || json.Unmarshal(raw, &got) != nil || got.IntegrationRating != (Rating{Average: 3.5, Count: 2}) {
		t.Fatalf("second = %d %s", code, raw)
	}
	// Editing replaces the one review of the user.
	code, raw = b.send(t, http.MethodPut, mine, a, map[string]any{"rating": 3, "text": "Fine"})
	if code != http.StatusOK || json.Unmarshal(raw, &got) != nil || got.Review.ID != first.ID || got.Review.Rating != 3 ||
		!got.Review.CreatedAt.Equal(first.CreatedAt) || got.IntegrationRating != (Rating{Average: 2.5, Count: 2}) {
		t.Fatalf("edit = %d %s", code, raw)
	}
	if avg, n := b.rating(t, "crypto-ticker"); avg != 2.5 || n != 2 {
		t.Fatalf("stored rating %v over %d, want 2.5 over 2", avg, n)
	}
	// The public list, newest first, paged, with the aggregate.
	code, listRaw, _ := b.get(t, "/v1/integrations/crypto-ticker/reviews?limit=1")
	var page ReviewsPage
	if code != http.StatusOK || json.Unmarshal(listRaw, &page) != nil || len(page.Items) != 1 || page.Items[0].Rating != 2 ||
		page.NextCursor == "" || page.Rating != (Rating{Average: 2.5, Count: 2}) || strings.Contains(string(listRaw), "user-") {
		t.Fatalf("reviews page 1 = %d %s", code, listRaw)
	}
	code, listRaw, _ = b.get(t, "/v1/integrations/crypto-ticker/reviews?limit=1&cursor="+page.NextCursor)
	var page2 ReviewsPage
	if code != http.StatusOK || json.Unmarshal(listRaw, &page2) != nil || len(page2.Items) != 1 || page2.Items[0].ID != first.ID || page2.NextCursor != "" {
		t.Fatalf("reviews page 2 = %d %s", code, listRaw)
	}
	// Delete, then again: 404.
	if code, raw := b.send(t, http.MethodDelete, mine, a, nil); code != http.StatusNoContent {
		t.Fatalf("delete = %d %s", code, raw)
	}
	if code, _ := b.send(t, http.MethodDelete, mine, a, nil); code != http.StatusNotFound {
		t.Fatalf("delete again = %d, want 404", code)
	}
	if avg, n := b.rating(t, "crypto-ticker"); avg != 2 || n != 1 {
		t.Fatalf("after delete: rating %v over %d, want 2 over 1", avg, n)
	}
	if code, _ := b.send(t, http.MethodDelete, mine, bb, nil); code != http.StatusNoContent {
		t.Fatal("delete b")
	}
	if avg, n := b.rating(t, "crypto-ticker"); avg != 0 || n != 0 {
		t.Fatalf("no reviews left: rating %v over %d, want 0 over 0", avg, n)
	}
}

func TestReviewBadInput(t *testing.T) {
	t.Parallel()
	b := setupReviews(t)
	b.insert(t, seed{name: "crypto-ticker", published: true})
	b.install(t, "user-a", "crypto-ticker")
	tok := b.token(t, "user-a")
	for body, field := range map[string]string{
		`{"rating":0}`:                   "rating",
		`{"rating":6}`:                   "rating",
		`{"rating":-1}`:                  "rating",
		`{"text":"no rating"}`:           "rating",
		`{"rating":null}`:                "rating",
		`{"rating":"5"}`:                 "rating",
		`{"rating":4.5}`:                 "rating",
		`{"rating":3,"text":"a\u0000b"}`: "text",
		`{"rating":3,"text":"` + strings.Repeat("é", MaxReviewText+1) + `"}`: "text",
	} {
		code, raw := b.send(t, http.MethodPut, mine, tok, body)
		checkProblem(t, "PUT "+clip.Ellipsis(body, 40), code, raw, http.Header{"Content-Type": {"application/problem+json"}}, field)
	}
	for _, body := range []string{`{"rating":3,"extra":1}`, `not json`, `{"rating":3} {}`} {
		if code, raw := b.send(t, http.MethodPut, mine, tok, body); code != http.StatusBadRequest {
			t.Errorf("PUT %s = %d %s, want 400", body, code, raw)
		}
	}
	if code, _ := b.send(t, http.MethodPut, mine, tok, `{"rating":3,"text":"`+strings.Repeat("a", 20<<10)+`"}`); code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body = %d, want 413", code)
	}
	// Exactly MaxReviewText characters is fine.
	if code, raw := b.send(t, http.MethodPut, mine, tok, map[string]any{"rating": 1, "text": strings.Repeat("é", MaxReviewText)}); code != http.StatusCreated {
		t.Errorf("longest text = %d %s", code, raw)
	}
	for query, field := range map[string]string{
		"limit=0": "limit", "limit=101": "limit", "limit=x": "limit", "cursor=abc": "cursor",
		"cursor=" + b64("2026-01-01T00:00:00Z|nope"): "cursor", "sort=new": "sort", "limit=1&limit=2": "limit",
	} {
		code, raw, h := b.get(t, "/v1/integrations/crypto-ticker/reviews?"+query)
		checkProblem(t, "reviews ?"+query, code, raw, h, field)
	}
	if code, _, _ := b.get(t, "/v1/integrations/missing/reviews"); code != http.StatusNotFound {
		t.Errorf("reviews of a missing listing = %d", code)
	}
}

// Concurrent reviews keep the aggregate exact: 40 users review at once, then 20 of them edit
// and 10 delete at once; the stored average and count equal those of the reviews.
func TestReviewAggregatesUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	b := setupReviews(t)
	b.insert(t, seed{name: "crypto-ticker", published: true})
	const users = 40
	toks := make([]string, users)
	for i := range users {
		u := fmt.Sprintf("user-%02d", i)
		b.install(t, u, "crypto-ticker")
		toks[i] = b.token(t, u)
	}
	run := func(f func(i int) (int, []byte), want int, which func(i int) bool) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan string, users)
		start := make(chan struct{})
		for i := range users {
			if !which(i) {
				continue
			}
			wg.Go(func() {
				<-start
				if code, raw := f(i); code != want {
					errs <- fmt.Sprintf("user %d: %d %s", i, code, raw)
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
	all := func(int) bool { return true }
	run(func(i int) (int, []byte) {
		return b.send(t, http.MethodPut, mine, toks[i], map[string]any{"rating": 1 + i%5})
	}, http.StatusCreated, all)
	run(func(i int) (int, []byte) {
		return b.send(t, http.MethodPut, mine, toks[i], map[string]any{"rating": 5})
	}, http.StatusOK, func(i int) bool { return i%2 == 0 })
	run(func(i int) (int, []byte) {
		return b.send(t, http.MethodDelete, mine, toks[i], nil)
	}, http.StatusNoContent, func(i int) bool { return i%4 == 1 })
	var wantAvg float64
	var wantN int
	if err := b.pool.QueryRow(context.Background(), `SELECT round(avg(rating), 2)::float8, count(*) FROM integration_reviews r
		JOIN integrations i ON i.id = r.integration_id WHERE i.name = 'crypto-ticker'`).Scan(&wantAvg, &wantN); err != nil {
		t.Fatal(err)
	}
	if wantN != 30 {
		t.Fatalf("%d reviews stored, want 30", wantN)
	}
	if avg, n := b.rating(t, "crypto-ticker"); avg != wantAvg || n != wantN {
		t.Fatalf("aggregate %v over %d, reviews say %v over %d", avg, n, wantAvg, wantN)
	}
}

// Without an identity provider the review writes answer 503 and the public GETs work.
func TestReviewWritesWithoutIdentityProvider(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "crypto-ticker", published: true})
	req, err := http.NewRequest(http.MethodDelete, b.srv.URL+mine, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, raw, _ := b.do(t, req)
	var p httpx.Problem
	if code != http.StatusServiceUnavailable || json.Unmarshal(raw, &p) != nil || !strings.Contains(p.Detail, "LOGTO_ENDPOINT") {
		t.Fatalf("review write without identity provider = %d %s", code, raw)
	}
	if code, _, _ := b.get(t, "/v1/integrations/crypto-ticker/reviews"); code != http.StatusOK {
		t.Fatalf("reviews list = %d", code)
	}
}
