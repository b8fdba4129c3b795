// Package inbox makes event consumers idempotent. Events are delivered at least once; a
// consumer claims each event (CloudEvent source + id) in the same transaction as its effects,
// and skips it when the claim already exists, so a redelivered event changes nothing.
package inbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// Execer is what Claim needs of a transaction (pgx.Tx satisfies it).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Claim records that consumer handles the event (source, id). It returns false when the event
// was already claimed: the caller must then do nothing and commit (or roll back).
func Claim(ctx context.Context, tx Execer, consumer, source, id string) (bool, error) {
	if consumer == "" || source == "" || id == "" {
		return false, errors.New("inbox: consumer, source and id are required")
	}
	tag, err := tx.Exec(ctx, `INSERT INTO processed_events (consumer, source, id) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, consumer, source, id)
	if err != nil {
		return false, fmt.Errorf("inbox: claim %s %s/%s: %w", consumer, source, id, err)
	}
	return tag.RowsAffected() == 1, nil
}
