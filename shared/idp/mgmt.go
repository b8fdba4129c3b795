package idp

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// mountManagement registers the Logto Management API routes the
// marketplace uses. Answers follow Logto's shapes; errors are
// {"code","message"} like Logto's.
func (s *Server) mountManagement(mux *http.ServeMux) {
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, s.managementAuth(f))
	}
	h("POST /api/applications", s.createApplication)
	h("GET /api/applications/{id}", s.getApplication)
	h("DELETE /api/applications/{id}", s.deleteApplication)
	h("POST /api/applications/{id}/user-consent-scopes", s.assignConsentScopes)
	h("GET /api/applications/{id}/user-consent-scopes", s.listConsentScopes)
	h("GET /api/applications/{id}/secrets", s.listSecrets)
	h("POST /api/applications/{id}/secrets", s.addSecret)
	h("DELETE /api/applications/{id}/secrets/{name}", s.deleteSecret)
	h("DELETE /api/applications/{id}/legacy-secret", s.deleteLegacySecret)
	h("GET /api/users/{userId}/grants", s.listGrants)
	h("DELETE /api/users/{userId}/grants/{grantId}", s.deleteGrant)
	h("GET /api/resources", s.listResources)
	h("GET /api/resources/{id}/scopes", s.listResourceScopes)
	s.mountRoles(mux)
}

func (s *Server) managementAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.verifyAccessToken(bearer(r), ManagementResource, "all"); err != nil {
			s.log.Info("idp: management API request rejected", "path", r.URL.Path, "reason", err.Error())
			apiError(w, http.StatusUnauthorized, "auth.unauthorized", "Unauthorized: "+err.Error())
			return
		}
		next(w, r)
	}
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "guard.invalid_input", "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func (s *Server) appJSON(a *application, withSecret bool) map[string]any {
	out := map[string]any{
		"tenantId": "default", "id": a.ID, "name": a.Name, "description": a.Description, "type": a.Type,
		"oidcClientMetadata":   map[string]any{"redirectUris": nonNil(a.RedirectURIs), "postLogoutRedirectUris": []string{}},
		"customClientMetadata": map[string]any{}, "protectedAppMetadata": nil,
		"isThirdParty": a.ThirdParty, "isAdmin": false, "createdAt": ms(a.CreatedAt),
	}
	if withSecret && a.LegacySecret != "" {
		out["secret"] = a.LegacySecret
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) createApplication(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name               string `json:"name"`
		Description        string `json:"description"`
		Type               string `json:"type"`
		IsThirdParty       bool   `json:"isThirdParty"`
		OIDCClientMetadata struct {
			RedirectURIs []string `json:"redirectUris"`
		} `json:"oidcClientMetadata"`
	}
	if !decode(w, r, &in) {
		return
	}
	switch {
	case in.Name == "":
		apiError(w, 400, "guard.invalid_input", "name: required")
		return
	case !slices.Contains([]string{"Traditional", "SPA", "MachineToMachine", "Native"}, in.Type):
		apiError(w, 400, "guard.invalid_input", "type: invalid enum value")
		return
	case in.IsThirdParty && in.Type != "Traditional" && in.Type != "SPA":
		apiError(w, 422, "application.invalid_third_party_application_type", "Only traditional web applications can be marked as a third-party app.")
		return
	}
	typ := in.Type
	if typ == "Native" {
		typ = "SPA"
	}
	a := &application{
		Client: Client{ID: randomID(21), Secret: randomID(32), Name: in.Name, Type: typ,
			RedirectURIs: in.OIDCClientMetadata.RedirectURIs, ThirdParty: in.IsThirdParty, Scopes: []string{}},
		Description: in.Description, CreatedAt: s.now(),
	}
	a.LegacySecret = a.Secret
	s.store.mu.Lock()
	s.store.apps[a.ID] = a
	out := s.appJSON(a, true)
	s.store.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// withApp runs f on the application named by {id} under the store lock.
func (s *Server) withApp(w http.ResponseWriter, r *http.Request, f func(a *application)) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	a, ok := s.store.apps[r.PathValue("id")]
	if !ok {
		apiError(w, 404, "entity.not_exists_with_id", fmt.Sprintf("The application with ID `%s` does not exist.", r.PathValue("id")))
		return
	}
	f(a)
}

func (s *Server) getApplication(w http.ResponseWriter, r *http.Request) {
	s.withApp(w, r, func(a *application) { writeJSON(w, 200, s.appJSON(a, true)) })
}

func (s *Server) deleteApplication(w http.ResponseWriter, r *http.Request) {
	s.withApp(w, r, func(a *application) {
		delete(s.store.apps, a.ID)
		for id, g := range s.store.grants {
			if g.AppID == a.ID {
				delete(s.store.grants, id)
			}
		}
		s.store.dropRefreshLocked(func(rt *refreshToken) bool { return rt.ClientID == a.ID })
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) assignConsentScopes(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ResourceScopes []string `json:"resourceScopes"`
		UserScopes     []string `json:"userScopes"`
	}
	if !decode(w, r, &in) {
		return
	}
	for _, sc := range in.ResourceScopes {
		found := false
		for _, res := range s.cfg.Resources {
			found = found || slices.Contains(res.Scopes, sc)
		}
		if !found {
			apiError(w, 422, "application.user_consent_scopes_not_found", "Invalid user consent scopes: "+sc)
			return
		}
	}
	s.withApp(w, r, func(a *application) {
		for _, sc := range in.ResourceScopes {
			if !slices.Contains(a.ConsentScope, sc) {
				a.ConsentScope = append(a.ConsentScope, sc)
			}
		}
		for _, sc := range in.UserScopes {
			if !slices.Contains(a.UserScopes, sc) {
				a.UserScopes = append(a.UserScopes, sc)
			}
		}
		w.WriteHeader(http.StatusCreated)
	})
}

func (s *Server) listConsentScopes(w http.ResponseWriter, r *http.Request) {
	s.withApp(w, r, func(a *application) {
		var rs []map[string]any
		for _, res := range s.cfg.Resources {
			var scopes []map[string]any
			for _, sc := range a.ConsentScope {
				if slices.Contains(res.Scopes, sc) {
					scopes = append(scopes, map[string]any{"id": sc, "name": sc, "description": describeScope(sc)})
				}
			}
			if scopes != nil {
				rs = append(rs, map[string]any{"resource": map[string]any{"id": res.Indicator, "name": res.Name, "indicator": res.Indicator}, "scopes": scopes})
			}
		}
		writeJSON(w, 200, map[string]any{"organizationScopes": []any{}, "resourceScopes": nonNilMaps(rs),
			"organizationResourceScopes": []any{}, "userScopes": nonNil(a.UserScopes)})
	})
}

func nonNilMaps(m []map[string]any) []map[string]any {
	if m == nil {
		return []map[string]any{}
	}
	return m
}

func secretJSON(appID string, sec appSecret) map[string]any {
	var exp any
	if sec.ExpiresAt != nil {
		exp = ms(*sec.ExpiresAt)
	}
	return map[string]any{"tenantId": "default", "applicationId": appID, "name": sec.Name, "value": sec.Value,
		"createdAt": ms(sec.CreatedAt), "expiresAt": exp}
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) {
	s.withApp(w, r, func(a *application) {
		out := []map[string]any{}
		for _, sec := range a.Secrets {
			out = append(out, secretJSON(a.ID, sec))
		}
		writeJSON(w, 200, out)
	})
}

func (s *Server) addSecret(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name      string `json:"name"`
		ExpiresAt *int64 `json:"expiresAt"`
	}
	if !decode(w, r, &in) {
		return
	}
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > 256 {
		apiError(w, 400, "guard.invalid_input", "name: required, at most 256 characters")
		return
	}
	s.withApp(w, r, func(a *application) {
		for _, sec := range a.Secrets {
			if sec.Name == in.Name {
				apiError(w, 422, "application.secret_name_exists", "The secret name is already in use.")
				return
			}
		}
		sec := appSecret{Name: in.Name, Value: randomID(32), CreatedAt: s.now()}
		if in.ExpiresAt != nil {
			t := time.UnixMilli(*in.ExpiresAt)
			sec.ExpiresAt = &t
		}
		a.Secrets = append(a.Secrets, sec)
		writeJSON(w, http.StatusCreated, secretJSON(a.ID, sec))
	})
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request) {
	s.withApp(w, r, func(a *application) {
		i := slices.IndexFunc(a.Secrets, func(sec appSecret) bool { return sec.Name == r.PathValue("name") })
		if i < 0 {
			apiError(w, 404, "entity.not_found", "The secret does not exist.")
			return
		}
		a.Secrets = slices.Delete(a.Secrets, i, i+1)
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) deleteLegacySecret(w http.ResponseWriter, r *http.Request) {
	s.withApp(w, r, func(a *application) {
		if a.LegacySecret == "" {
			apiError(w, 400, "application.no_legacy_secret_found", "The application does not have a legacy secret.")
			return
		}
		a.LegacySecret = ""
		writeJSON(w, http.StatusOK, s.appJSON(a, false))
	})
}

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("userId")
	appType := r.URL.Query().Get("appType")
	if appType != "" && appType != "thirdParty" && appType != "firstParty" {
		apiError(w, 400, "guard.invalid_input", "appType: expected firstParty or thirdParty")
		return
	}
	now := s.now()
	s.store.mu.RLock()
	out := []map[string]any{}
	for _, g := range s.store.grants {
		a, ok := s.store.apps[g.AppID]
		if g.UserID != user || !ok || !g.ExpiresAt.After(now) ||
			(appType == "thirdParty" && !a.ThirdParty) || (appType == "firstParty" && a.ThirdParty) {
			continue
		}
		out = append(out, map[string]any{
			"id": g.ID, "expiresAt": ms(g.ExpiresAt),
			"payload": map[string]any{"exp": g.ExpiresAt.Unix(), "iat": g.CreatedAt.Unix(), "jti": g.JTI,
				"kind": "Grant", "clientId": g.AppID, "accountId": g.UserID},
			"application": map[string]any{"id": a.ID, "name": a.Name},
		})
	}
	s.store.mu.RUnlock()
	slices.SortFunc(out, func(a, b map[string]any) int { return strings.Compare(a["id"].(string), b["id"].(string)) })
	writeJSON(w, 200, map[string]any{"grants": out})
}

func (s *Server) deleteGrant(w http.ResponseWriter, r *http.Request) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	g, ok := s.store.grants[r.PathValue("grantId")]
	if !ok || g.UserID != r.PathValue("userId") {
		apiError(w, 404, "entity.not_found", "The grant does not exist.")
		return
	}
	delete(s.store.grants, g.ID)
	s.store.dropRefreshLocked(func(rt *refreshToken) bool { return rt.GrantID == g.ID })
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listResources(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, res := range s.cfg.Resources {
		out = append(out, map[string]any{"tenantId": "default", "id": res.Indicator, "name": res.Name,
			"indicator": res.Indicator, "isDefault": false, "accessTokenTtl": int(s.cfg.AccessTokenTTL.Seconds())})
	}
	writeJSON(w, 200, out)
}

func (s *Server) listResourceScopes(w http.ResponseWriter, r *http.Request) {
	res, ok := s.resource(r.PathValue("id"))
	if !ok {
		apiError(w, 404, "entity.not_exists_with_id", "The resource does not exist.")
		return
	}
	out := []map[string]any{}
	for _, sc := range res.Scopes {
		out = append(out, map[string]any{"tenantId": "default", "id": sc, "name": sc, "description": describeScope(sc), "resourceId": res.Indicator})
	}
	writeJSON(w, 200, out)
}

// devToken mints a token: {"sub","scope","client_id","aud","ttl_seconds"}.
func (s *Server) devToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Sub        string `json:"sub"`
		Scope      string `json:"scope"`
		ClientID   string `json:"client_id"`
		Aud        string `json:"aud"`
		TTLSeconds int64  `json:"ttl_seconds"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Sub == "" {
		apiError(w, 400, "guard.invalid_input", "sub: required")
		return
	}
	// Sender audiences are for the eventing client only: minting one here would let anyone on
	// the machine forge events.
	if res, ok := s.resource(in.Aud); ok && res.Clients != nil {
		apiError(w, 400, "guard.invalid_input", "aud: a service-only resource; tokens for it come from client credentials of its clients")
		return
	}
	tok, err := s.Mint(TokenRequest{Subject: in.Sub, Scopes: strings.Fields(in.Scope), ClientID: in.ClientID,
		Audience: in.Aud, TTL: time.Duration(in.TTLSeconds) * time.Second})
	if err != nil {
		apiError(w, 500, "dev.mint_failed", err.Error())
		return
	}
	writeJSON(w, 200, map[string]any{"access_token": tok, "token_type": "Bearer"})
}

func (s *Server) devRotateKey(w http.ResponseWriter, r *http.Request) {
	kid, err := s.RotateKey()
	if err != nil {
		apiError(w, 500, "dev.rotate_failed", err.Error())
		return
	}
	writeJSON(w, 200, map[string]any{"kid": kid})
}
