package logto

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
)

// TestCreateM2MUndoesOnFailure: when assigning the role fails, CreateM2M deletes the role and
// the application it made and returns the failure; the role is named after the application.
func TestCreateM2MUndoesOnFailure(t *testing.T) {
	s := newServer(t)
	var mu sync.Mutex
	var calls []string
	var roleBody map[string]any
	s.respond = func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		switch r.Method + " " + r.URL.Path {
		case "GET /api/resources":
			_, _ = io.WriteString(w, `[{"id":"res1","name":"API","indicator":"https://api.example"}]`)
		case "GET /api/resources/res1/scopes":
			_, _ = io.WriteString(w, `[{"id":"sc1","resourceId":"res1","name":"data:write"},{"id":"sc2","resourceId":"res1","name":"dashboard:read"}]`)
		case "POST /api/applications":
			_, _ = io.WriteString(w, `{"id":"app1","name":"Feed","type":"MachineToMachine","secret":"sec1"}`)
		case "POST /api/roles":
			if err := json.NewDecoder(r.Body).Decode(&roleBody); err != nil {
				t.Error(err)
			}
			_, _ = io.WriteString(w, `{"id":"role1","name":"m2m app1","description":"d","type":"MachineToMachine"}`)
		case "POST /api/roles/role1/applications":
			w.WriteHeader(422)
			_, _ = io.WriteString(w, `{"code":"role.application_exists","message":"no"}`)
		case "DELETE /api/roles/role1", "DELETE /api/applications/app1":
			w.WriteHeader(204)
		default:
			return false
		}
		return true
	}
	c := s.client(t)
	m, err := c.CreateM2M(context.Background(), NewM2M{Name: "Feed", Resource: "https://api.example", Scopes: []string{"data:write"}})
	var ae *APIError
	if m != nil || !errors.As(err, &ae) || ae.Status != 422 {
		t.Fatalf("CreateM2M = %+v, %v; want the 422", m, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"GET /api/resources", "GET /api/resources/res1/scopes", "POST /api/applications", "POST /api/roles",
		"POST /api/roles/role1/applications", "DELETE /api/roles/role1", "DELETE /api/applications/app1"}
	if !slices.Equal(calls, want) {
		t.Fatalf("calls %v\nwant  %v", calls, want)
	}
	if roleBody["name"] != "m2m app1" || roleBody["type"] != RoleTypeMachineToMachine ||
		!slices.Equal(toStrings(roleBody["scopeIds"]), []string{"sc1"}) {
		t.Fatalf("role body %v", roleBody)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
