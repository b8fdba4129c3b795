package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/webhook"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/fanout"
	"github.com/myscrollr/connect/shared/outbox"
	"github.com/myscrollr/connect/shared/ssrf"
)

// maxAnswerBytes bounds how much of an integration's answer is read (the start of it is kept
// as the last error); maxErrorText bounds last_error.
const (
	maxAnswerBytes = 4 << 10
	maxErrorText   = 300
)

// ContentType is the content type of a delivery: the CloudEvent in structured JSON mode.
const ContentType = "application/cloudevents+json; charset=utf-8"

// wakeBudget bounds one wake-up: a tick every minute, so a wake-up that has worked for this
// long stops claiming (the next tick continues).
const wakeBudget = 45 * time.Second

// claimed is one delivery attempt a worker holds the lease of.
type claimed struct {
	EventID, Type, Body, Integration, IntegrationName, BaseURL string
	Attempt                                                    int
	Token                                                      uuid.UUID
	At                                                         time.Time
}

func (c claimed) url() (string, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("base_url is not an http(s) URL")
	}
	return u.JoinPath("lifecycle", events.LifecycleVerb(c.Type)).String(), nil
}

// Summary says what a wake-up did.
type Summary struct {
	Attempted, Delivered, Retrying, Disabled, Failed int
}

func (s *Summary) add(o Summary) {
	s.Attempted += o.Attempted
	s.Delivered += o.Delivered
	s.Retrying += o.Retrying
	s.Disabled += o.Disabled
	s.Failed += o.Failed
}

// Wake makes every due attempt: it finishes deliveries whose last attempt was cut short,
// then claims due deliveries in batches (FOR UPDATE SKIP LOCKED, with a lease) and attempts
// them, until none is due or the wake-up's budget is spent.
func (s *Service) Wake(ctx context.Context) (Summary, error) {
	var sum Summary
	n, err := s.finishAbandoned(ctx)
	if err != nil {
		return sum, err
	}
	sum.Failed += n
	start := time.Now()
	for time.Since(start) < wakeBudget {
		got, err := s.deliver(ctx, nil)
		sum.add(got)
		if err != nil {
			return sum, err
		}
		if got.Attempted < s.cfg.Batch {
			break
		}
	}
	if sum.Attempted > 0 || sum.Failed > 0 {
		s.logger(ctx).Info("deliveries attempted", slog.Int("attempted", sum.Attempted), slog.Int("delivered", sum.Delivered),
			slog.Int("retrying", sum.Retrying), slog.Int("disabled", sum.Disabled), slog.Int("failed", sum.Failed))
	}
	return sum, nil
}

// deliver claims due deliveries (only those of ids when ids is not nil, else up to Batch of
// any) and attempts them, at most Concurrency at once and PerHost per host.
func (s *Service) deliver(ctx context.Context, ids []string) (Summary, error) {
	batch, err := s.claim(ctx, ids)
	if err != nil || len(batch) == 0 {
		return Summary{}, err
	}
	results := make([]Summary, len(batch))
	idx := make([]int, len(batch))
	for i := range idx {
		idx[i] = i
	}
	var errs = make([]error, len(batch))
	fanout.Run(ctx, idx, func(i int) string { return hostKey(batch[i].BaseURL) },
		fanout.Limits{Concurrency: s.cfg.Concurrency, PerKey: s.cfg.PerHost},
		func(ctx context.Context, i int) { results[i], errs[i] = s.attempt(ctx, batch[i]) })
	var sum Summary
	for _, r := range results {
		sum.add(r)
	}
	// A delivery left claimed (cut short, or its result not recorded) is retried when its
	// lease ends.
	return sum, errors.Join(errs...)
}

// claim takes the lease of due deliveries: attempts + 1, the next attempt's due time set
// already (so an attempt cut short by a crash is retried on schedule), lease_until the
// attempt's timeout plus a margin.
func (s *Service) claim(ctx context.Context, ids []string) ([]claimed, error) {
	now := s.now().UTC()
	token := uuid.New()
	lease := now.Add(s.cfg.Timeout + leaseMargin)
	limit := s.cfg.Batch
	if ids != nil {
		limit = len(ids)
	}
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT d.event_id FROM lifecycle_deliveries d
			WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until <= $1)
			  AND d.attempts < $2 AND ($5::uuid[] IS NULL OR d.event_id = ANY($5))
			ORDER BY d.next_attempt_at LIMIT $3 FOR UPDATE OF d SKIP LOCKED)
		UPDATE lifecycle_deliveries d SET attempts = d.attempts + 1, lease_until = $4, lease_token = $6,
			last_attempt_at = $1, updated_at = $1
		FROM due, lifecycle_events e, integrations i
		WHERE d.event_id = due.event_id AND e.id = d.event_id AND i.id = d.integration_id
		RETURNING d.event_id::text, e.type, e.body, i.id::text, i.name, i.base_url, d.attempts`,
		now, MaxAttempts, limit, lease, ids, token)
	if err != nil {
		return nil, fmt.Errorf("notify: claim due deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		c := claimed{Token: token, At: now}
		err := r.Scan(&c.EventID, &c.Type, &c.Body, &c.Integration, &c.IntegrationName, &c.BaseURL, &c.Attempt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("notify: claim due deliveries: %w", err)
	}
	// The next attempt's due time, per delivery (its own jitter).
	for _, c := range out {
		next := now
		if c.Attempt < MaxAttempts {
			next = now.Add(s.delay(c.Attempt))
		} else {
			next = lease // the last attempt: nothing after it; finishAbandoned ends it if we die
		}
		if _, err := s.pool.Exec(ctx, `UPDATE lifecycle_deliveries SET next_attempt_at = $3
			WHERE event_id = $1 AND lease_token = $2`, c.EventID, c.Token, next); err != nil {
			return nil, fmt.Errorf("notify: schedule %s: %w", c.EventID, err)
		}
	}
	return out, nil
}

// outcome is what one attempt got.
type outcome struct {
	code int    // HTTP status, 0 without an answer
	err  string // why it failed, "" when delivered
}

// attempt sends one delivery and records its outcome.
func (s *Service) attempt(ctx context.Context, c claimed) (Summary, error) {
	o := s.send(ctx, c)
	switch {
	case o.err == "":
		return Summary{Attempted: 1, Delivered: 1}, s.record(ctx, c, `UPDATE lifecycle_deliveries SET status = 'delivered',
			next_attempt_at = NULL, lease_until = NULL, lease_token = NULL, last_status_code = $3, last_error = NULL,
			delivered_at = $4, updated_at = $4 WHERE event_id = $1 AND lease_token = $2`, nullCode(o.code), s.now().UTC())
	case o.code == http.StatusGone:
		return Summary{Attempted: 1, Disabled: 1}, s.disable(ctx, c, o)
	case c.Attempt >= MaxAttempts:
		return Summary{Attempted: 1, Failed: 1}, s.fail(ctx, c, o)
	default:
		return Summary{Attempted: 1, Retrying: 1}, s.record(ctx, c, `UPDATE lifecycle_deliveries SET
			lease_until = NULL, lease_token = NULL, last_status_code = $3, last_error = $5, updated_at = $4
			WHERE event_id = $1 AND lease_token = $2`, nullCode(o.code), s.now().UTC(), o.err)
	}
}

// resultCtx outlives a cancelled request: an attempt that was made is recorded.
func resultCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

func nullCode(code int) any {
	if code == 0 {
		return nil
	}
	return code
}

// record runs sql, whose $1 and $2 are the event id and the lease token, then args.
func (s *Service) record(ctx context.Context, c claimed, sql string, args ...any) error {
	ctx, cancel := resultCtx(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, sql, append([]any{c.EventID, c.Token}, args...)...); err != nil {
		return fmt.Errorf("notify: record attempt of %s: %w", c.EventID, err)
	}
	return nil
}

// disable records a 410: the endpoint is disabled, this delivery and every other pending one
// of the integration not held by a worker now are disabled.
func (s *Service) disable(ctx context.Context, c claimed, o outcome) error {
	ctx, cancel := resultCtx(ctx)
	defer cancel()
	now := s.now().UTC()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE lifecycle_deliveries SET status = 'disabled', next_attempt_at = NULL,
			lease_until = NULL, lease_token = NULL, last_status_code = 410, last_error = $3, updated_at = $4
			WHERE event_id = $1 AND lease_token = $2`, c.EventID, c.Token, o.err, now)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO lifecycle_endpoints_disabled (integration_id, disabled_at, event_id)
			VALUES ($1, $2, $3) ON CONFLICT (integration_id) DO NOTHING`, c.Integration, now, c.EventID); err != nil {
			return fmt.Errorf("notify: disable endpoint of %s: %w", c.IntegrationName, err)
		}
		_, err = tx.Exec(ctx, `UPDATE lifecycle_deliveries SET status = 'disabled', next_attempt_at = NULL, updated_at = $2
			WHERE integration_id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2)`, c.Integration, now)
		return err
	})
}

// fail records the last failed attempt: status failed and the dead letter, in one transaction.
func (s *Service) fail(ctx context.Context, c claimed, o outcome) error {
	ctx, cancel := resultCtx(ctx)
	defer cancel()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE lifecycle_deliveries SET status = 'failed', next_attempt_at = NULL,
			lease_until = NULL, lease_token = NULL, last_status_code = $3, last_error = $5, updated_at = $4
			WHERE event_id = $1 AND lease_token = $2`, c.EventID, c.Token, nullCode(o.code), s.now().UTC(), o.err)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return s.deadLetter(ctx, tx, c, o)
	})
}

// finishAbandoned fails (and dead-letters) deliveries whose last attempt was claimed by a
// worker that never recorded it (it died) once the lease is over.
func (s *Service) finishAbandoned(ctx context.Context) (int, error) {
	now := s.now().UTC()
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE lifecycle_deliveries d SET status = 'failed', next_attempt_at = NULL,
				lease_until = NULL, lease_token = NULL, last_error = coalesce(d.last_error, 'the last attempt was cut short'), updated_at = $1
			FROM lifecycle_events e, integrations i
			WHERE d.event_id IN (SELECT event_id FROM lifecycle_deliveries WHERE status = 'pending' AND attempts >= $2
				AND lease_until <= $1 FOR UPDATE SKIP LOCKED)
			  AND e.id = d.event_id AND i.id = d.integration_id
			RETURNING d.event_id::text, e.type, e.body, i.id::text, i.name, i.base_url, d.attempts, coalesce(d.last_status_code, 0), d.last_error`,
			now, MaxAttempts)
		if err != nil {
			return fmt.Errorf("notify: abandoned deliveries: %w", err)
		}
		type row struct {
			c claimed
			o outcome
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			err := r.Scan(&x.c.EventID, &x.c.Type, &x.c.Body, &x.c.Integration, &x.c.IntegrationName, &x.c.BaseURL,
				&x.c.Attempt, &x.o.code, &x.o.err)
			x.c.Token = uuid.New()
			return x, err
		})
		if err != nil {
			return fmt.Errorf("notify: abandoned deliveries: %w", err)
		}
		for _, x := range list {
			if err := s.deadLetter(ctx, tx, x.c, x.o); err != nil {
				return err
			}
		}
		n = len(list)
		return nil
	})
	return n, err
}

// deadLetter writes the lifecycle event to integrations.{name}.lifecycle.dlq through the
// outbox, with the dead-letter extensions (events.DeadLetter). Its id is name-based on the
// event id and the failed attempt's lease, so each failure (a redelivery may fail again) is
// one dead letter; the lifecycle event's own id is the extension lifecycleid.
func (s *Service) deadLetter(ctx context.Context, tx pgx.Tx, c claimed, o outcome) error {
	ce := event.New()
	if err := json.Unmarshal([]byte(c.Body), &ce); err != nil {
		return fmt.Errorf("notify: dead letter of %s: stored event: %w", c.EventID, err)
	}
	dest, err := c.url()
	if err != nil {
		dest = events.DestTopic(events.LifecycleTopic(c.IntegrationName))
	}
	dl := events.DeadLetter{Dest: dest, Code: o.code, Data: []byte(o.err), Attempts: c.Attempt}
	for k, v := range dl.Extensions() {
		ce.SetExtension(k, v)
	}
	ce.SetExtension(ExtLifecycleID, c.EventID)
	ce.SetID(uuid.NewSHA1(eventIDSpace, []byte(c.EventID+"\ndead-letter\n"+c.Token.String())).String())
	_, err = outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: ce.Subject(),
		Topic: events.DLQ(events.LifecycleTopic(c.IntegrationName)), CloudEvent: ce})
	if err != nil {
		return fmt.Errorf("notify: dead letter of %s: %w", c.EventID, err)
	}
	return nil
}

// ExtLifecycleID is the extension of a dead letter naming the lifecycle event it carries.
const ExtLifecycleID = "lifecycleid"

// send makes one attempt: POST {base_url}/lifecycle/<verb>, signed by every signing key.
func (s *Service) send(ctx context.Context, c claimed) outcome {
	target, err := c.url()
	if err != nil {
		return outcome{err: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	body := []byte(c.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return outcome{err: "base_url is not an http(s) URL"}
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "MyScrollr-Connect-Lifecycle/1")
	if err := webhook.SetHeaders(req.Header, c.EventID, s.now(), body, s.signers); err != nil {
		return outcome{err: "signing failed"} // the keys were checked at start: not reached
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = context.DeadlineExceeded
		}
		return outcome{err: ssrf.Describe(err, s.cfg.Timeout)}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return outcome{code: resp.StatusCode}
	}
	msg := fmt.Sprintf("HTTP status %d", resp.StatusCode)
	if t := printable(string(answer)); t != "" {
		msg += ": " + t
	}
	return outcome{code: resp.StatusCode, err: clip.Ellipsis(msg, maxErrorText)}
}

// hostKey is the fairness key of a base URL: its host name, lower case.
func hostKey(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// printable is text as one line of valid UTF-8 without control characters (an answer can
// hold anything; PostgreSQL's text refuses NUL).
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	return strings.Join(strings.Fields(s), " ")
}
