package records

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/outbox"
)

// Defaults of Store.
const (
	DefaultMaxEventRecords = 500
	DefaultMaxEventBytes   = 512 << 10
	DefaultMaxRejections   = 1000
	DefaultKeepRejections  = 1000
	// MaxSampleBytes bounds the sample of a rejected record (the table checks it).
	MaxSampleBytes = 4096
)

// Store writes batches of records: in the caller's transaction it upserts the good records,
// announces those that changed on connect.data through the outbox, and records the rejections.
// The zero value uses the defaults.
type Store struct {
	// Function names the CloudEvent source of the announcements (events.Source): "poll".
	Function string
	// Now stamps records, events and rejections; default time.Now.
	Now func() time.Time
	// MaxEventRecords and MaxEventBytes bound one data.received event: a stream's changed
	// records are split over as many events as needed (default 500 records, 512 KiB of data).
	MaxEventRecords int
	MaxEventBytes   int
	// MaxRejections bounds the rejection rows (one per problem) written for one batch
	// (default 1000); KeepRejections is how many of an integration's newest rejection rows are
	// kept, older ones are deleted as new ones arrive (default 1000).
	MaxRejections  int
	KeepRejections int
}

// Batch is what one poll (or one push) delivered.
type Batch struct {
	Source     Source
	Records    []Record
	Rejections []Rejection
}

// Result says what Write did.
type Result struct {
	Stored   int // records upserted (after dropping repeated keys)
	Changed  int // records whose data was new or different, announced
	Events   int // data.received events written
	Rejected int // rejection rows written
}

// Write stores b in tx. A record repeated (same stream and key) in the batch is stored once,
// with its last data. Only records whose data is new or differs from what is stored are
// announced.
func (s Store) Write(ctx context.Context, tx pgx.Tx, b Batch) (Result, error) {
	s = s.withDefaults()
	now := s.Now().UTC()
	var res Result
	recs := dedupe(b.Records)
	res.Stored = len(recs)
	if len(recs) > 0 {
		n := len(recs)
		streams, keys, data := make([]string, n), make([]string, n), make([]string, n)
		users, versions, observed := make([]*string, n), make([]*string, n), make([]time.Time, n)
		for i := range recs {
			r := &recs[i]
			if r.ObservedAt.IsZero() {
				r.ObservedAt = now
			}
			r.ObservedAt = r.ObservedAt.UTC()
			streams[i], keys[i], data[i], observed[i] = r.Stream, r.Key, string(r.Data), r.ObservedAt
			if r.User != "" {
				users[i] = &r.User
			}
			if r.SchemaVersion != "" {
				versions[i] = &r.SchemaVersion
			}
		}
		// A record is changed (updated and announced) when its data or its user differ; a
		// later observation of the same data is not news.
		rows, err := tx.Query(ctx, `INSERT INTO records AS r (integration_id, stream, key, data, user_id, observed_at, schema_version, created_at, updated_at)
			SELECT $1, t.stream, t.key, t.data::jsonb, t.user_id, t.observed_at, t.schema_version, $5, $5
			FROM unnest($2::text[], $3::text[], $4::text[], $6::text[], $7::timestamptz[], $8::text[])
				AS t(stream, key, data, user_id, observed_at, schema_version)
			ON CONFLICT (integration_id, stream, key) DO UPDATE SET data = EXCLUDED.data, user_id = EXCLUDED.user_id,
				observed_at = EXCLUDED.observed_at, schema_version = EXCLUDED.schema_version, updated_at = EXCLUDED.updated_at
			WHERE r.data IS DISTINCT FROM EXCLUDED.data OR r.user_id IS DISTINCT FROM EXCLUDED.user_id
			RETURNING r.stream, r.key`, b.Source.IntegrationID, streams, keys, data, now, users, observed, versions)
		if err != nil {
			return res, fmt.Errorf("records: upsert: %w", err)
		}
		changed := map[[2]string]bool{}
		for rows.Next() {
			var st, k string
			if err := rows.Scan(&st, &k); err != nil {
				rows.Close()
				return res, fmt.Errorf("records: upsert: %w", err)
			}
			changed[[2]string{st, k}] = true
		}
		if err := rows.Err(); err != nil {
			return res, fmt.Errorf("records: upsert: %w", err)
		}
		var announce []Record
		for _, r := range recs {
			if changed[[2]string{r.Stream, r.Key}] {
				announce = append(announce, r)
			}
		}
		res.Changed = len(announce)
		sent, err := s.announce(ctx, tx, b.Source, announce, now)
		res.Events = sent
		if err != nil {
			return res, err
		}
	}
	n, err := s.reject(ctx, tx, b.Source, b.Rejections, now)
	res.Rejected = n
	return res, err
}

func (s Store) withDefaults() Store {
	if s.Function == "" {
		s.Function = "records"
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.MaxEventRecords <= 0 {
		s.MaxEventRecords = DefaultMaxEventRecords
	}
	if s.MaxEventBytes <= 0 {
		s.MaxEventBytes = DefaultMaxEventBytes
	}
	if s.MaxRejections <= 0 {
		s.MaxRejections = DefaultMaxRejections
	}
	if s.KeepRejections <= 0 {
		s.KeepRejections = DefaultKeepRejections
	}
	return s
}

// dedupe keeps the last record of each stream and key, in the order of first appearance.
func dedupe(in []Record) []Record {
	idx := make(map[[2]string]int, len(in))
	out := make([]Record, 0, len(in))
	for _, r := range in {
		k := [2]string{r.Stream, r.Key}
		if i, ok := idx[k]; ok {
			out[i] = r
			continue
		}
		idx[k] = len(out)
		out = append(out, r)
	}
	return out
}

// announce writes the data.received events of changed records: per stream, in chunks bounded
// by record count and bytes.
func (s Store) announce(ctx context.Context, tx pgx.Tx, src Source, recs []Record, now time.Time) (int, error) {
	var order []string
	byStream := map[string][]Record{}
	for _, r := range recs {
		if _, ok := byStream[r.Stream]; !ok {
			order = append(order, r.Stream)
		}
		byStream[r.Stream] = append(byStream[r.Stream], r)
	}
	n := 0
	for _, stream := range order {
		for _, chunk := range chunks(byStream[stream], s.MaxEventRecords, s.MaxEventBytes) {
			items := make([]events.DataRecord, len(chunk))
			for i, r := range chunk {
				items[i] = events.DataRecord{Stream: r.Stream, Key: r.Key, User: r.User, ObservedAt: r.ObservedAt,
					SchemaVersion: r.SchemaVersion, Data: r.Data}
			}
			ce := cloudevents.NewEvent()
			ce.SetSource(events.Source(s.Function))
			ce.SetType(events.TypeDataReceived)
			ce.SetTime(now)
			ce.SetSubject(stream)
			// Typed data: the outbox marshals it and it checks itself against the schema
			// (received.go), instead of the validator re-parsing 500 records.
			if _, err := outbox.Write(ctx, tx, outbox.Event{
				AggregateType: "integration", AggregateID: src.IntegrationID, Topic: events.TopicData, CloudEvent: ce,
				Data: dataReceived{IntegrationID: src.IntegrationID, Name: src.Name, DeliveryMode: src.DeliveryMode,
					RecordCount: len(items), Records: items, ReceivedAt: now},
			}); err != nil {
				return n, fmt.Errorf("records: announce: %w", err)
			}
			n++
		}
	}
	return n, nil
}

// chunks splits recs into runs of at most maxRecords records and about maxBytes of data (a
// run always holds at least one record).
func chunks(recs []Record, maxRecords, maxBytes int) [][]Record {
	var out [][]Record
	start, size := 0, 0
	for i, r := range recs {
		if i > start && (i-start >= maxRecords || size+len(r.Data) > maxBytes) {
			out = append(out, recs[start:i])
			start, size = i, 0
		}
		size += len(r.Data)
	}
	if start < len(recs) {
		out = append(out, recs[start:])
	}
	return out
}

// reject writes one row per problem of every rejection (at most MaxRejections rows) and
// trims the integration's rows to the newest KeepRejections.
func (s Store) reject(ctx context.Context, tx pgx.Tx, src Source, rejs []Rejection, now time.Time) (int, error) {
	var streams, keys, fields, reasons, samples []*string
	opt := func(v string, n int) *string {
		if v == "" {
			return nil
		}
		v = Clean(v, n)
		return &v
	}
	for _, r := range rejs {
		sample := Clean(r.Sample, MaxSampleBytes)
		problems := r.Problems
		if len(problems) == 0 {
			problems = []Problem{{Reason: "refused"}}
		}
		for _, p := range problems {
			if len(reasons) >= s.MaxRejections {
				break
			}
			reason := Clean(p.Reason, 1000)
			if reason == "" {
				reason = "refused"
			}
			field := Clean(p.Field, 1000)
			streams, keys = append(streams, opt(r.Stream, 256)), append(keys, opt(r.Key, 256))
			fields, reasons, samples = append(fields, &field), append(reasons, &reason), append(samples, &sample)
		}
	}
	if len(reasons) == 0 {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO record_rejections (integration_id, delivery_mode, stream, key, field, reason, sample, rejected_at)
		SELECT $1, $2, t.stream, t.key, t.field, t.reason, t.sample, $8
		FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS t(stream, key, field, reason, sample)`,
		src.IntegrationID, src.DeliveryMode, streams, keys, fields, reasons, samples, now); err != nil {
		return 0, fmt.Errorf("records: rejections: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM record_rejections WHERE integration_id = $1 AND id <= (
			SELECT id FROM record_rejections WHERE integration_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)`,
		src.IntegrationID, s.KeepRejections); err != nil {
		return 0, fmt.Errorf("records: trim rejections: %w", err)
	}
	return len(reasons), nil
}

// Execer runs a statement (a pool, a connection or a transaction).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// PruneRejections deletes the rejections recorded before before (the retention) and returns
// how many.
func PruneRejections(ctx context.Context, db Execer, before time.Time) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM record_rejections WHERE rejected_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("records: prune rejections: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Clean makes s storable as PostgreSQL text of at most n bytes: invalid UTF-8 and NUL become
// U+FFFD, and it is cut on a character boundary.
func Clean(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return clip.String(s, n)
}
