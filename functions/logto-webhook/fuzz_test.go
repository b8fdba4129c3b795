package main

import (
	"errors"
	"net/http"
	"testing"

	"github.com/myscrollr/connect/shared/httpx"
)

var fuzzSeeds = []string{
	`{"hookId":"h","event":"User.Deleted","createdAt":"2026-09-01T12:00:00.000Z","data":{"id":"u_1"}}`,
	`{"hookId":"h","event":"User.Deleted","createdAt":"2026-09-01T12:00:00.000Z","params":{"userId":"u_1"}}`,
	`{"hookId":"h","event":"User.Roles.Updated","createdAt":"2026-09-01T12:00:00Z","data":{"id":"u"},"roles":[{"id":"r","name":"developer"}],"addedRoleIds":["r"]}`,
	`{"hookId":"h","event":"User.Roles.Updated","createdAt":"2026-09-01T12:00:00Z","data":{"id":"u"},"removedRoleIds":["r"]}`,
	`{"hookId":"h","event":"Role.Deleted","createdAt":"2026-09-01T12:00:00Z","params":{"id":"r"}}`,
	`{"hookId":"h","event":"PostSignIn","createdAt":"2026-09-01T12:00:00Z","user":{"id":"u"}}`,
	`{"hookId":"h","event":"User.Roles.Updated","createdAt":"2026-09-01T12:00:00Z","data":{"id":"u"},"roles":[{"id":1}]}`,
	`{"hookId":"h","event":"User.Deleted","createdAt":"2026-09-01T12:00:00Z","data":null}`,
	`{"hookId":null}`,
	`[]`, `null`, `"x"`, `{`, ``, `{"event":"\ud800"}`, `{"hookId":"h","event":"User.Deleted","createdAt":"2026-09-01T12:00:00Z","data":{"id":"u"}}{}`,
}

// FuzzParseEvent: the parser never panics, and every failure is a 400 problem.
func FuzzParseEvent(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := parseEvent(body)
		if err != nil {
			var p *httpx.Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400 problem", err)
			}
			return
		}
		if ev.HookID == "" || ev.Event == "" || ev.CreatedAt.IsZero() {
			t.Fatalf("accepted without required fields: %+v", ev)
		}
		if (ev.Event == eventUserDeleted || ev.Event == eventUserRolesUpdated) && ev.UserID == "" {
			t.Fatalf("accepted %s without a user id", ev.Event)
		}
	})
}

// FuzzWebhook drives the whole handler with real PostgreSQL: any body, signed or not, is
// answered 204, 400, 401 or 413, never 5xx.
func FuzzWebhook(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), true)
	}
	f.Add([]byte(fuzzSeeds[0]), false)
	b := setupWebhook(f)
	f.Fuzz(func(t *testing.T, body []byte, signed bool) {
		sig := ""
		if signed {
			sig = sign(testKey, body)
		}
		status, p := b.post(t, body, sig)
		switch status {
		case http.StatusNoContent, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if !signed && status != http.StatusRequestEntityTooLarge {
				t.Fatalf("unsigned body answered %d", status)
			}
		case http.StatusUnauthorized:
			if signed {
				t.Fatalf("signed body answered 401: %+v", p)
			}
		default:
			t.Fatalf("status %d %+v for %q", status, p, body)
		}
	})
}
