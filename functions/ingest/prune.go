package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/clip"
)

// Replay-key pruning. A PingSource ticks ingest's /events (infra/knative: PingSource
// ingest-prune, schedule "17 * * * *", data {"job":"ingest-prune"}); each tick deletes the
// replay keys older than INGEST_REPLAY_RETENTION. A missed tick is covered by the next one,
// so the PingSource needs no dead-letter sink, and two ticks at once only delete nothing
// twice.
const (
	// PingType is the CloudEvent type of a PingSource tick.
	PingType = "dev.knative.sources.ping"
	// PruneJob is the job a tick's data names: {"job":"ingest-prune"}.
	PruneJob = "ingest-prune"
	// pruneBatch bounds one DELETE, so a large backlog (after the retention was shortened)
	// never holds row locks on the table for long; ticks run batches until none is left.
	pruneBatch = 10000
)

// handleTick is the PingSource path of /events.
func (s *Service) handleTick(ctx context.Context, e event.Event) error {
	var t struct {
		Job string `json:"job"`
	}
	if err := json.Unmarshal(e.Data(), &t); err != nil {
		return events.Permanent(fmt.Errorf("ingest: data of %s: not a JSON object with \"job\"", PingType))
	}
	if t.Job != PruneJob {
		return events.Permanent(fmt.Errorf("ingest: data of %s: field \"job\": %q is not %q", PingType, clip.Ellipsis(t.Job, 64), PruneJob))
	}
	n, err := s.Prune(ctx)
	if err != nil {
		return err
	}
	s.log.Info("replay keys pruned", slog.String("event_id", e.ID()), slog.Int64("deleted", n))
	return nil
}

// Prune deletes the replay keys older than the retention, in batches of pruneBatch, and
// returns how many it deleted. An error leaves what was deleted deleted (each batch commits).
func (s *Service) Prune(ctx context.Context) (int64, error) {
	cutoff := s.now().Add(-s.cfg.ReplayRetention)
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM ingest_events WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM ingest_events WHERE received_at < $1 LIMIT $2))`, cutoff, pruneBatch)
		if err != nil {
			return total, fmt.Errorf("ingest: prune replay keys: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}
