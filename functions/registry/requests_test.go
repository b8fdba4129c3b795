package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/myscrollr/connect/shared/httpx"
)

func request(body []byte, ct string) *http.Request {
	r := httptest.NewRequest("POST", "/x", bytes.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return r
}

// clientError fails unless err is nil or a 4xx problem naming what is wrong.
func clientError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var p *httpx.Problem
	if !errors.As(err, &p) || p.Status < 400 || p.Status > 499 {
		t.Fatalf("not a 4xx problem: %v", err)
	}
}

func TestDecoders(t *testing.T) {
	today := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	d, err := decodeDeprecate(request([]byte(`{"message":"bye","sunset":"2026-09-01","replacement":"new-one"}`), "application/json"), today)
	if err != nil || d.Message != "bye" || d.Sunset != "2026-09-01" || d.Replacement != "new-one" {
		t.Fatalf("deprecate: %+v %v", d, err)
	}
	for body, field := range map[string]string{
		`{"message":""}`:                        "message",
		`{"message":"x","sunset":"2026-8-31"}`:  "sunset",
		`{"message":"x","sunset":"2026-08-31"}`: "sunset",
		`{"message":"x","replacement":"A"}`:     "replacement",
		`{"message":"x","extra":1}`:             "extra",
	} {
		_, err := decodeDeprecate(request([]byte(body), "application/json"), today)
		var p *httpx.Problem
		if !errors.As(err, &p) || p.Status != 400 || !(len(p.Errors) > 0 && p.Errors[0].Field == field || bytes.Contains([]byte(p.Detail), []byte(field))) {
			t.Errorf("%s: %v, want 400 naming %s", body, err, field)
		}
	}
	if u, err := decodeUnpublish(httptest.NewRequest("POST", "/x", nil)); err != nil || u.Reason != "" {
		t.Errorf("unpublish without a body: %v", err)
	}
	if _, err := decodeVerification(request([]byte(`{"note":"`+string(bytes.Repeat([]byte("é"), 2001))+`"}`), "application/json")); err == nil {
		t.Error("a 2001-character note was accepted")
	}
	if tr, err := decodeTier(request([]byte(`{"tier":"featured","reason":"staff pick"}`), "application/json")); err != nil || tr.Tier != "featured" {
		t.Errorf("tier: %+v %v", tr, err)
	}
	_, err = decodeTier(request([]byte(`{"tier":"gold","reason":"  "}`), "application/json"))
	var p *httpx.Problem
	if !errors.As(err, &p) || len(p.Errors) != 2 {
		t.Errorf("bad tier: %v", err)
	}
}

func FuzzDecoders(f *testing.F) {
	today := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{`{"message":"bye","sunset":"2026-09-01","replacement":"new-one"}`, `{"tier":"verified","reason":"ok"}`,
		`{"note":"x"}`, `{"reason":"\u0000"}`, `{`, `[]`, `null`, `{"message":1}`, `{"sunset":"9999-99-99","message":"x"}`} {
		f.Add([]byte(s), "application/json")
	}
	f.Add([]byte(`{}`), "")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		d, err := decodeDeprecate(request(body, ct), today)
		clientError(t, err)
		if err == nil && (d.Message == "" || !utf8.ValidString(d.Message) || (d.Replacement != "" && !integrationName.MatchString(d.Replacement))) {
			t.Fatalf("accepted %+v", d)
		}
		u, err := decodeUnpublish(request(body, ct))
		clientError(t, err)
		if err == nil && text(u.Reason, 0, 1000) != "" {
			t.Fatalf("accepted %+v", u)
		}
		v, err := decodeVerification(request(body, ct))
		clientError(t, err)
		if err == nil && text(v.Note, 0, 2000) != "" {
			t.Fatalf("accepted %+v", v)
		}
		tr, err := decodeTier(request(body, ct))
		clientError(t, err)
		if err == nil && (tr.Tier != TierUnverified && tr.Tier != TierVerified && tr.Tier != TierFeatured || text(tr.Reason, 1, 1000) != "") {
			t.Fatalf("accepted %+v", tr)
		}
	})
}

func FuzzCursors(f *testing.F) {
	f.Add(encodeNameCursor("world-clock"))
	f.Add(encodeQueueCursor(time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), "0b7e6f1c-0000-4000-8000-000000000001"))
	f.Add("q")
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := decodeNameCursor(s); ok && encodeNameCursor(n) != s {
			t.Fatalf("name cursor %q does not round-trip", s)
		}
		if at, id, ok := decodeQueueCursor(s); ok && encodeQueueCursor(at, id) != s {
			t.Fatalf("queue cursor %q does not round-trip", s)
		}
	})
}

func FuzzSemver(f *testing.F) {
	f.Add("1.0.0-alpha.1", "1.0.0")
	f.Add("1.0.0+x", "1.0.0-0")
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := semverCompare(a, b), semverCompare(b, a)
		if ab != -ba || semverCompare(a, a) != 0 {
			t.Fatalf("compare(%q, %q) = %d, reverse %d", a, b, ab, ba)
		}
	})
}
