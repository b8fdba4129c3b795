package idp

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Roles of the Management API, as Logto's RBAC has them for machine-to-machine applications:
// a role carries API resource scopes, and an application that has MachineToMachine roles
// obtains, by client credentials for a resource, the scopes of its roles on that resource.
//
// Served: POST /api/roles, GET and DELETE /api/roles/{id}, GET and POST
// /api/roles/{id}/applications, DELETE /api/roles/{id}/applications/{applicationId}. A scope's
// id is its name (as everywhere in this server). Differences from Logto: no pagination; roles
// of type User are stored but nothing assigns them to users.

// role is a role of the tenant.
type role struct {
	ID          string
	Name        string
	Description string
	Type        string   // "User" or "MachineToMachine"
	Scopes      []string // scope ids (= names)
	Apps        []string // ids of the applications that have it
}

const (
	roleTypeUser = "User"
	roleTypeM2M  = "MachineToMachine"
)

func (s *Server) mountRoles(mux *http.ServeMux) {
	h := func(pattern string, f http.HandlerFunc) { mux.HandleFunc(pattern, s.managementAuth(f)) }
	h("POST /api/roles", s.createRole)
	h("GET /api/roles/{id}", s.getRole)
	h("DELETE /api/roles/{id}", s.deleteRole)
	h("GET /api/roles/{id}/applications", s.listRoleApplications)
	h("POST /api/roles/{id}/applications", s.assignRoleApplications)
	h("DELETE /api/roles/{id}/applications/{applicationId}", s.removeRoleApplication)
}

func roleJSON(r *role) map[string]any {
	return map[string]any{"tenantId": "default", "id": r.ID, "name": r.Name, "description": r.Description,
		"type": r.Type, "isDefault": false}
}

// resourceScope reports whether id is a scope of an API resource users or applications may
// be given (not a service-only sender audience).
func (s *Server) resourceScope(id string) bool {
	for _, res := range s.cfg.Resources {
		if res.Clients == nil && slices.Contains(res.Scopes, id) {
			return true
		}
	}
	return false
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name        string   `json:"name"`
		Description string   `json:"description"`
		Type        string   `json:"type"`
		ScopeIDs    []string `json:"scopeIds"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Type == "" {
		in.Type = roleTypeUser
	}
	switch {
	case strings.TrimSpace(in.Name) == "" || len(in.Name) > 128:
		apiError(w, 400, "guard.invalid_input", "name: required, at most 128 characters")
		return
	case strings.TrimSpace(in.Description) == "" || len(in.Description) > 128:
		apiError(w, 400, "guard.invalid_input", "description: required, at most 128 characters")
		return
	case in.Type != roleTypeUser && in.Type != roleTypeM2M:
		apiError(w, 400, "guard.invalid_input", "type: invalid enum value, expected User or MachineToMachine")
		return
	}
	for _, id := range in.ScopeIDs {
		if !s.resourceScope(id) {
			apiError(w, 404, "entity.not_exists_with_id", fmt.Sprintf("The scope with ID `%s` does not exist.", id))
			return
		}
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if s.store.roles == nil {
		s.store.roles = map[string]*role{}
	}
	for _, other := range s.store.roles {
		if other.Name == in.Name {
			apiError(w, 422, "role.name_in_use", fmt.Sprintf("This role name %s is already in use", in.Name))
			return
		}
	}
	ro := &role{ID: randomID(21), Name: in.Name, Description: in.Description, Type: in.Type}
	for _, id := range in.ScopeIDs {
		if !slices.Contains(ro.Scopes, id) {
			ro.Scopes = append(ro.Scopes, id)
		}
	}
	s.store.roles[ro.ID] = ro
	writeJSON(w, http.StatusOK, roleJSON(ro))
}

// withRole runs f on the role named by {id} under the store lock.
func (s *Server) withRole(w http.ResponseWriter, r *http.Request, f func(ro *role)) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	ro, ok := s.store.roles[r.PathValue("id")]
	if !ok {
		apiError(w, 404, "entity.not_exists_with_id", fmt.Sprintf("The role with ID `%s` does not exist.", r.PathValue("id")))
		return
	}
	f(ro)
}

func (s *Server) getRole(w http.ResponseWriter, r *http.Request) {
	s.withRole(w, r, func(ro *role) { writeJSON(w, 200, roleJSON(ro)) })
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request) {
	s.withRole(w, r, func(ro *role) {
		delete(s.store.roles, ro.ID)
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) listRoleApplications(w http.ResponseWriter, r *http.Request) {
	s.withRole(w, r, func(ro *role) {
		out := []map[string]any{}
		for _, id := range ro.Apps {
			if a, ok := s.store.apps[id]; ok { // a deleted application has no roles
				out = append(out, s.appJSON(a, false))
			}
		}
		writeJSON(w, 200, out)
	})
}

func (s *Server) assignRoleApplications(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ApplicationIDs []string `json:"applicationIds"`
	}
	if !decode(w, r, &in) {
		return
	}
	if len(in.ApplicationIDs) == 0 {
		apiError(w, 400, "guard.invalid_input", "applicationIds: at least one is required")
		return
	}
	s.withRole(w, r, func(ro *role) {
		if ro.Type != roleTypeM2M {
			apiError(w, 422, "role.type_mismatch", "Only roles of type MachineToMachine can be assigned to applications.")
			return
		}
		for _, id := range in.ApplicationIDs {
			a, ok := s.store.apps[id]
			switch {
			case !ok:
				apiError(w, 404, "entity.not_exists_with_id", fmt.Sprintf("The application with ID `%s` does not exist.", id))
				return
			case a.Type != "MachineToMachine":
				apiError(w, 422, "application.invalid_type", "Only machine-to-machine applications can have roles.")
				return
			case slices.Contains(ro.Apps, id):
				apiError(w, 422, "role.application_exists", fmt.Sprintf("The role is already assigned to the application `%s`.", id))
				return
			}
		}
		for _, id := range in.ApplicationIDs {
			if !slices.Contains(ro.Apps, id) {
				ro.Apps = append(ro.Apps, id)
			}
		}
		w.WriteHeader(http.StatusCreated)
	})
}

func (s *Server) removeRoleApplication(w http.ResponseWriter, r *http.Request) {
	s.withRole(w, r, func(ro *role) {
		i := slices.Index(ro.Apps, r.PathValue("applicationId"))
		if i < 0 {
			apiError(w, 404, "entity.not_found", "The role is not assigned to the application.")
			return
		}
		ro.Apps = slices.Delete(ro.Apps, i, i+1)
		w.WriteHeader(http.StatusNoContent)
	})
}

// clientScopes is what a client with a scope list (Client.Scopes not nil) may obtain by
// client credentials: its own list and the scopes of the MachineToMachine roles it has.
func (st *store) clientScopes(app application) []string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := slices.Clone(app.Scopes)
	for _, ro := range st.roles {
		if ro.Type == roleTypeM2M && slices.Contains(ro.Apps, app.ID) {
			out = append(out, ro.Scopes...)
		}
	}
	return out
}
