package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/idp"
)

// The rejections route: integrations:write, only the integration's developer (anyone else: 404),
// newest first, cursor paging, with the source's poll status.
func TestRejectionsRoute(t *testing.T) {
	e := newEnv(t, nil)
	src := newSource(t, pricesSchema(60), price("AAA", -1), price("BBB", "x"), price("CCC", 3),
		map[string]any{"stream": "prices", "data": map[string]any{"price_cents": 4}})
	e.seed(t, "mine", "dev-owner", src.srv.URL)
	e.tick(t)
	// Then the source breaks: its error shows beside the rejections.
	src.mu.Lock()
	src.dataStatus = http.StatusServiceUnavailable
	src.mu.Unlock()
	e.clock.Add(61 * time.Second)
	e.tick(t)

	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{Logger: discard()})
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
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: s.Issuer(), Audience: idp.DefaultAPIResource, Logger: discard()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.svc.Routes(v))
	t.Cleanup(srv.Close)
	token := func(sub string, scopes ...string) string {
		tok, err := s.Mint(idp.TokenRequest{Subject: sub, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	get := func(path, tok string, into any) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if into != nil {
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatalf("%s: decode: %v", path, err)
			}
		}
		return resp.StatusCode
	}
	const path = "/v1/developer/integrations/mine/rejections"
	owner := token("dev-owner", auth.ScopeIntegrationsWrite)
	if code := get(path, "", nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code := get(path, token("dev-owner", "profile:read"), nil); code != http.StatusForbidden {
		t.Errorf("without integrations:write: %d, want 403", code)
	}
	var prob httpx.Problem
	if code := get(path, token("dev-other", auth.ScopeIntegrationsWrite), &prob); code != http.StatusNotFound {
		t.Errorf("another developer: %d, want 404", code)
	}
	if code := get("/v1/developer/integrations/nobody/rejections", owner, nil); code != http.StatusNotFound {
		t.Errorf("unknown integration: %d, want 404", code)
	}

	var page RejectionsPage
	if code := get(path, owner, &page); code != http.StatusOK {
		t.Fatalf("owner: %d", code)
	}
	if page.Source == nil || page.Source.LastError == nil || !strings.Contains(*page.Source.LastError, "HTTP 503") ||
		page.Source.ConsecutiveFailures != 1 || page.Source.LastSuccessAt == nil || !page.Source.NextPollAt.After(e.clock.Now()) {
		t.Errorf("source status = %+v", page.Source)
	}
	if len(page.Items) != 3 || page.NextCursor != "" {
		t.Fatalf("items = %+v, next %q", page.Items, page.NextCursor)
	}
	// Newest first: the record without its key member came last in /data.
	if it := page.Items[0]; it.Key != nil || it.Field != "/data/symbol" || it.Reason != "required" || *it.Stream != "prices" {
		t.Errorf("item 0 = %+v", it)
	}
	if it := page.Items[2]; *it.Key != "AAA" || it.Field != "/data/price_cents" || !strings.Contains(it.Sample, `"AAA"`) || !it.RejectedAt.Equal(t0) {
		t.Errorf("item 2 = %+v", it)
	}

	// Paging: one at a time, the same items in the same order.
	var all []Rejection
	cursor := ""
	for i := 0; i < 5; i++ {
		var p RejectionsPage
		q := path + "?limit=1"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		if code := get(q, owner, &p); code != http.StatusOK {
			t.Fatalf("page %d: %d", i, code)
		}
		all = append(all, p.Items...)
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if len(all) != 3 || all[0].Field != page.Items[0].Field || *all[2].Key != "AAA" {
		t.Errorf("paged items = %+v", all)
	}
	for _, q := range []struct{ query, field string }{{"?limit=0", "limit"}, {"?limit=101", "limit"}, {"?cursor=abc", "cursor"}, {"?cursor=r" + "MDAx", "cursor"}} {
		var p httpx.Problem
		if code := get(path+q.query, owner, &p); code != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != q.field {
			t.Errorf("%s: %d %+v, want 400 naming %s", q.query, code, p, q.field)
		}
	}
}
