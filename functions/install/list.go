package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/httpx"
)

// Install is one of the user's installs as GET /v1/installs and POST /v1/installs show it.
type Install struct {
	ID            string    `json:"id"`
	Integration   string    `json:"integration"` // the integration's name
	DisplayName   string    `json:"display_name"`
	IntegrationID string    `json:"integration_id"`
	Scopes        []string  `json:"scopes"` // granted at consent
	Sandbox       bool      `json:"sandbox"`
	InstalledAt   time.Time `json:"installed_at"`
	// Subscription: a subscription install's (checkout_subscription.go); null for the others.
	Subscription *Subscription `json:"subscription"`
}

// InstallList is the answer of GET /v1/installs.
type InstallList struct {
	Installs []Install `json:"installs"`
}

// maxInstalls bounds GET /v1/installs: far more than a person installs.
const maxInstalls = 500

const installColumns = `ui.id::text, i.name, i.display_name, i.id::text, ui.scopes, ui.sandbox, ui.installed_at,
	sub.status, sub.current_period_end, sub.cancel_at_period_end, sub.access_ended_at, sub.access_end_reason
	FROM user_integrations ui JOIN integrations i ON i.id = ui.integration_id` + subscriptionJoin

func scanInstall(row pgx.Row) (Install, error) {
	var in Install
	var sub subscriptionRow
	err := row.Scan(append([]any{&in.ID, &in.Integration, &in.DisplayName, &in.IntegrationID, &in.Scopes, &in.Sandbox, &in.InstalledAt},
		sub.dest()...)...)
	in.Subscription = sub.value()
	in.Scopes = nonNil(in.Scopes)
	in.InstalledAt = in.InstalledAt.UTC()
	return in, err
}

// userInstall returns the user's install of the integration, or nil.
func userInstall(ctx context.Context, q querier, userID, integrationID string) (*Install, error) {
	in, err := scanInstall(q.QueryRow(ctx, `SELECT `+installColumns+` WHERE ui.user_id = $1 AND ui.integration_id = $2`, userID, integrationID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &in, nil
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.pool.Query(r.Context(), `SELECT `+installColumns+` WHERE ui.user_id = $1
		ORDER BY ui.installed_at DESC, ui.id LIMIT $2`, userOf(r), maxInstalls)
	if err != nil {
		return fmt.Errorf("install: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Install, error) { return scanInstall(row) })
	if err != nil {
		return fmt.Errorf("install: list: %w", err)
	}
	httpx.WriteJSON(w, http.StatusOK, InstallList{Installs: nonNilInstalls(out)})
	return nil
}

func nonNilInstalls(s []Install) []Install {
	if s == nil {
		return []Install{}
	}
	return s
}
