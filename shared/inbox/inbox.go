// Package inbox makes event consumers idempotent. Events are delivered at least once; a
// consumer claims each event (CloudEvent source + id) in the same transaction as its effects,
// and skips it when the claim already exists, so a redelivered event changes nothing.
//
// The package owns the table processed_events: consumers claim (Claim) and look up (Seen)
// through it and never query the table themselves, so its shape and its retention are decided
// in one place.
//
// # Retention
//
// A claim only has to outlive every redelivery of its event. Knative retries a delivery for
// minutes (the longest delivery spec in infra/knative: 9 retries waiting 2 s .. 512 s, the
// Kafka dispatcher's first retry waiting twice the 1 s backoffDelay, about 17 minutes),
// Logto retries a webhook 3 times, and a dead letter may be replayed by an operator later.
// Claims older than DefaultRetention (7 days) are deleted by Prune; an event redelivered or
// replayed after that is processed again, so dead letters must be replayed within the
// retention. Prune deletes in batches of PruneBatch rows, each its own short statement, so it
// never holds many row locks or a long transaction, and it is idempotent: running it twice, or
// from two processes at once, deletes each row once (concurrent pruners skip each other's
// locked rows).
//
// Who runs it: the relay, the one long-running function (exactly one replica), from its
// maintenance loop (functions/relay, RELAY_INBOX_RETENTION). Functions scaled to zero do not
// run it.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultRetention is how long claims are kept (see the package doc).
const DefaultRetention = 7 * 24 * time.Hour

// PruneBatch is how many claims one DELETE statement of Prune removes at most.
const PruneBatch = 5000

// Execer is what Claim and Prune need of a transaction or pool (pgx.Tx and *pgxpool.Pool
// satisfy it).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Querier is what Seen needs of a transaction or pool (pgx.Tx and *pgxpool.Pool satisfy it).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func checkKey(consumer, source, id string) error {
	if consumer == "" || source == "" || id == "" {
		return errors.New("inbox: consumer, source and id are required")
	}
	return nil
}

// Claim records that consumer handles the event (source, id). It returns false when the event
// was already claimed: the caller must then do nothing and commit (or roll back).
func Claim(ctx context.Context, tx Execer, consumer, source, id string) (bool, error) {
	if err := checkKey(consumer, source, id); err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO processed_events (consumer, source, id) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, consumer, source, id)
	if err != nil {
		return false, fmt.Errorf("inbox: claim %s %s/%s: %w", consumer, source, id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Seen reports whether consumer has already claimed the event (source, id) in a committed
// transaction (or in q's own). It lets a consumer skip work that must happen outside the
// claiming transaction (a call to another service) for an event it has finished; the claim
// itself still decides, since two deliveries may both see false.
func Seen(ctx context.Context, q Querier, consumer, source, id string) (bool, error) {
	if err := checkKey(consumer, source, id); err != nil {
		return false, err
	}
	var seen bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM processed_events
		WHERE consumer = $1 AND source = $2 AND id = $3)`, consumer, source, id).Scan(&seen); err != nil {
		return false, fmt.Errorf("inbox: seen %s %s/%s: %w", consumer, source, id, err)
	}
	return seen, nil
}

// Prune deletes the claims made before olderThan, PruneBatch rows per statement, until none
// is left or ctx ends, and returns how many it deleted. Pass a pool, not a transaction, so
// each batch commits on its own.
func Prune(ctx context.Context, db Execer, olderThan time.Time) (int64, error) {
	return prune(ctx, db, olderThan, PruneBatch)
}

func prune(ctx context.Context, db Execer, olderThan time.Time, batch int) (int64, error) {
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		// The subquery walks processed_events_age_idx; ctid names the rows without a second
		// lookup of the three-column key. SKIP LOCKED gives concurrent pruners disjoint rows,
		// so a short batch means every old row is deleted or being deleted by another pruner.
		tag, err := db.Exec(ctx, `DELETE FROM processed_events WHERE ctid IN
			(SELECT ctid FROM processed_events WHERE processed_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, olderThan, batch)
		if err != nil {
			return total, fmt.Errorf("inbox: prune claims before %s: %w", olderThan.Format(time.RFC3339), err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}
