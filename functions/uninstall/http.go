package main

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
)

// maxNameBytes bounds the integration name of a request before it reaches the database; a
// name is a short slug, far under it.
const maxNameBytes = 128

// Routes serves the user's uninstall: DELETE /v1/installs/{integration}, with any user token
// of the API resource (no scope: a user may always remove what they installed).
func (s *Service) Routes(v *auth.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("DELETE /v1/installs/{integration}", v.Require()(httpx.HandlerFunc(s.deleteInstall)))
	return mux
}

// deleteInstall answers 204 once the user has no install of the integration: revoked now, or
// never installed, or revoked by an earlier request (which then writes nothing more). 404
// names an unknown integration; 503 says Logto failed, nothing was deleted and the request may
// be repeated.
func (s *Service) deleteInstall(w http.ResponseWriter, r *http.Request) error {
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok {
		return httpx.Unauthorized("a bearer token is required")
	}
	// An application's own token (client credentials: its sub is its client id) has no installs.
	if p.Subject == "" || p.Subject == p.ClientID {
		return httpx.Forbidden("a user's token is required to uninstall")
	}
	if badText(p.Subject, maxUserIDBytes) != "" {
		return httpx.Forbidden("the token's subject is not a user id")
	}
	name := r.PathValue("integration")
	if reason := badText(name, maxNameBytes); reason != "" {
		return unknownIntegration(name, reason)
	}
	ref, err := integrationByName(r.Context(), s.pool, name)
	if errors.Is(err, pgx.ErrNoRows) {
		return unknownIntegration(name, "no such integration")
	}
	if err != nil {
		return err
	}
	res, err := s.revokeInstall(r.Context(), revocation{UserID: p.Subject, Integration: ref, Reason: events.RevokeUserRequest})
	if errors.Is(err, ErrLogto) {
		return httpx.Unavailable("the identity provider could not revoke the grant; nothing was removed, try again", err)
	}
	if err != nil {
		return err
	}
	if res.Revoked {
		s.logger(r.Context()).Info("install revoked on request", "user_id", p.Subject, "integration", ref.Name, "install_id", res.InstallID)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func unknownIntegration(name, reason string) *httpx.Problem {
	p := httpx.NotFound("no integration is called " + strconv.Quote(clip.Ellipsis(name, 64)))
	p.Errors = []httpx.FieldError{{Field: "integration", Reason: reason}}
	return p
}
