package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/logging"
)

// ClaimResponse is the answer of POST /v1/integration/installs/{id}/token: the user's tokens,
// given once.
type ClaimResponse struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type"`
	ExpiresAt    time.Time `json:"expires_at"` // of the access token
	Scope        string    `json:"scope"`
}

// installClient is auth.RequireClient's lookup: the integration client of the install's
// integration (integrations.m2m_app_id, made by the registry: the machine-to-machine
// application with which the integration calls as itself; its main application, the consent's
// OIDC client, cannot use client credentials). An id that is not a UUID or not an install
// answers "" (then the token's client can match nothing and the answer is 403), so an install
// of another integration and an install that does not exist look the same to the caller.
func (s *Service) installClient(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return "", nil
	}
	var app *string
	err := s.pool.QueryRow(r.Context(), `SELECT i.m2m_app_id FROM user_integrations ui JOIN integrations i ON i.id = ui.integration_id
		WHERE ui.id = $1`, id).Scan(&app)
	if errors.Is(err, pgx.ErrNoRows) || app == nil {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return *app, nil
}

// claim hands the install's tokens to its integration once: they are deleted in the
// transaction that reads them. A second claim, or one after INSTALL_TOKEN_TTL, answers 410.
func (s *Service) claim(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	s.sweep(ctx, logging.From(ctx))
	now := s.now().UTC()
	var sealedTokens string
	var expires time.Time
	err := s.pool.QueryRow(ctx, `DELETE FROM install_tokens WHERE install_id = $1 RETURNING sealed, expires_at`, id).
		Scan(&sealedTokens, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return gone("the tokens of this install were claimed already or have expired")
	}
	if err != nil {
		return fmt.Errorf("install: claim %s: %w", id, err)
	}
	if !expires.After(now) {
		return gone("the tokens of this install have expired")
	}
	plain, err := s.keys.Open(sealedTokens, tokensAAD(id))
	if err != nil {
		return fmt.Errorf("install: open the tokens of %s: %w", id, err)
	}
	var t tokenSet
	err = json.Unmarshal(plain, &t)
	clear(plain)
	if err != nil {
		return fmt.Errorf("install: the tokens of %s do not decode", id)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	logging.From(ctx).Info("install tokens claimed", "install_id", id)
	httpx.WriteJSON(w, http.StatusOK, ClaimResponse{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken,
		TokenType: t.TokenType, ExpiresAt: t.ExpiresAt, Scope: t.Scope})
	return nil
}

func gone(detail string) *httpx.Problem {
	return &httpx.Problem{Title: http.StatusText(http.StatusGone), Status: http.StatusGone, Detail: detail}
}
