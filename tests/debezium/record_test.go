package debezium

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/shared/outbox"
	"github.com/myscrollr/connect/shared/pgtest"
)

// row is one outbox row as Debezium's PostgreSQL connector holds it: the Connect value of each
// column, all of them strings for the outbox's types (nil for NULL).
type row struct {
	vals  map[string]*string
	types map[string]uint32 // column type OIDs, for the columns the model cannot render
}

// get is the value of column col; a column that is missing, or of a type whose Debezium
// rendering is not modelled, fails the test (EventRouter would fail the connector, or this
// model would guess).
func (r row) get(t *testing.T, col string) *string {
	t.Helper()
	v, ok := r.vals[col]
	if !ok {
		if oid, ok := r.types[col]; ok {
			t.Fatalf("outbox column %s has type OID %d: work out how Debezium renders it before the connector uses it", col, oid)
		}
		t.Fatalf("the connector uses outbox column %s, which does not exist", col)
	}
	return v
}

// zonedTimestamp is Debezium's rendering of a timestamptz (io.debezium.time.ZonedTimestamp,
// from the value at UTC): ISO 8601 with offset Z and either exactly width fractional digits
// (the column's precision, when the connector knows it) or, for width 0,
// DateTimeFormatter.ISO_OFFSET_DATE_TIME's as-many-as-needed (none for a whole second).
func zonedTimestamp(t time.Time, width int) string {
	t = t.UTC()
	if width <= 0 || width > 9 {
		return t.Format(time.RFC3339Nano) // trailing zeros dropped, as ISO_OFFSET_DATE_TIME does
	}
	return t.Format("2006-01-02T15:04:05." + strings.Repeat("0", width) + "Z07:00")
}

// readRow reads the outbox row with id the way pgoutput sends it (each column's text output;
// the simple protocol returns exactly that) and renders each column as Debezium does, with
// timestamptz fractions of width digits (see zonedTimestamp).
func readRow(t *testing.T, ctx context.Context, pool *pgxpool.Pool, id string, width int) row {
	t.Helper()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET TIME ZONE 'UTC'"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT * FROM outbox WHERE id = $1", pgx.QueryExecModeSimpleProtocol, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("outbox row %s not found", id)
	}
	r := row{vals: map[string]*string{}, types: map[string]uint32{}}
	for i, fd := range rows.FieldDescriptions() {
		raw := rows.RawValues()[i]
		var v *string
		if raw != nil {
			s := string(raw)
			v = &s
		}
		switch fd.DataTypeOID {
		case pgtype.TextOID, pgtype.VarcharOID, pgtype.UUIDOID, pgtype.JSONOID, pgtype.JSONBOID:
			// Debezium keeps the text of these (ReplicationMessageColumnValueResolver: asString).
			r.vals[fd.Name] = v
		case pgtype.TimestamptzOID:
			if v == nil {
				r.vals[fd.Name] = nil
				break
			}
			ts, err := time.Parse("2006-01-02 15:04:05.999999-07", *v)
			if err != nil {
				t.Fatalf("column %s: %v", fd.Name, err)
			}
			s := zonedTimestamp(ts, width)
			r.vals[fd.Name] = &s
		default:
			r.types[fd.Name] = fd.DataTypeOID
		}
	}
	if rows.Next() {
		t.Fatalf("more than one outbox row with id %s", id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// emit is the record Debezium's outbox event router makes of the insert of rw, as written to
// Kafka by the converters (EventRouterDelegate.apply): Debezium's context headers when
// enabled, then an "id" header with the event id, then one header per placement in its order
// (a NULL column gives a header with a null value); the key is the key column; the value is
// the payload column as it is (no envelope when every placement is a header); the topic is
// the route-by column through the RegexRouter. StringConverter writes strings as UTF-8 and
// null as null; SimpleHeaderConverter writes a string header value as its UTF-8 bytes.
func (r router) emit(t *testing.T, rw row) *kgo.Record {
	t.Helper()
	raw := func(v *string) []byte {
		if v == nil {
			return nil
		}
		return []byte(*v)
	}
	rec := &kgo.Record{}
	if r.contextHeaders {
		for _, h := range [][2]string{
			{"__debezium.context.connectorLogicalName", "connect"},
			{"__debezium.context.taskId", "0"},
			{"__debezium.context.connectorName", "postgresql"},
			{"__debezium.context.runId", "5f0c1d2e-0000-4000-8000-000000000000"},
		} {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
	}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "id", Value: raw(rw.get(t, r.idField))})
	for _, p := range r.headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: p.header, Value: raw(rw.get(t, p.column))})
	}
	rec.Key = raw(rw.get(t, r.keyField))
	rec.Value = raw(rw.get(t, r.payloadField))
	by := rw.get(t, r.routeBy)
	if by == nil {
		t.Fatalf("route.by.field %s is NULL: EventRouter cannot name a topic", r.routeBy)
	}
	rec.Topic = *by
	if r.topicRE.MatchString(rec.Topic) {
		rec.Topic = r.topicRE.ReplaceAllString(rec.Topic, r.replacement)
	}
	return rec
}

// relayRecord is the record the relay makes of the row written for e: kafkace.Encode of the
// event with partitionkey = the aggregate id and the payload as PostgreSQL's jsonb gives it
// back (functions/relay builds exactly this, byte for byte), produced to the row's topic.
func relayRecord(t *testing.T, e outbox.Event, payload *string) *kgo.Record {
	t.Helper()
	ce := e.CloudEvent.Clone()
	ce.SetExtension(kafkace.ExtPartitionKey, e.AggregateID)
	if payload != nil {
		// jsonb normalises the text (key order, spaces): the same data, other bytes.
		if !jsonEqual(t, []byte(*payload), ce.Data()) {
			t.Fatalf("payload %s is not the data written, %s", *payload, ce.Data())
		}
		ce.DataEncoded = []byte(*payload)
	}
	rec, err := kafkace.Encode(ce)
	if err != nil {
		t.Fatal(err)
	}
	rec.Topic = e.Topic
	if rec.Topic == "" {
		rec.Topic = outbox.DefaultTopic
	}
	return rec
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// differences names the attributes (and "data") in which a and b differ.
func differences(a, b cloudevents.Event) []string {
	var d []string
	str := map[string][2]string{
		"specversion":     {a.SpecVersion(), b.SpecVersion()},
		"id":              {a.ID(), b.ID()},
		"source":          {a.Source(), b.Source()},
		"type":            {a.Type(), b.Type()},
		"subject":         {a.Subject(), b.Subject()},
		"dataschema":      {a.DataSchema(), b.DataSchema()},
		"datacontenttype": {a.DataContentType(), b.DataContentType()},
	}
	for name, v := range str {
		if v[0] != v[1] {
			d = append(d, name)
		}
	}
	if !a.Time().Equal(b.Time()) {
		d = append(d, "time")
	}
	if !bytes.Equal(a.Data(), b.Data()) {
		d = append(d, "data")
	}
	ea, eb := a.Extensions(), b.Extensions()
	for name, v := range ea {
		if w, ok := eb[name]; !ok || !reflect.DeepEqual(v, w) {
			d = append(d, name)
		}
	}
	for name := range eb {
		if _, ok := ea[name]; !ok {
			d = append(d, name)
		}
	}
	slices.Sort(d)
	return d
}

func header(r *kgo.Record, key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// The ids and times of the events written below: fixed, so a failure is reproducible. Times
// are whole microseconds (PostgreSQL's precision) and cover the three shapes of a fraction.
var (
	integrationID = "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91"
	installID     = "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90"
	sixDigits     = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	trailingZeros = time.Date(2026, 3, 4, 5, 6, 7, 120000000, time.UTC) // .120000 or .12
	wholeSecond   = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

// newEvent is a platform event as the functions build it (outbox.New, then id and time).
func newEvent(t *testing.T, function, typ, id string, at time.Time, data any) cloudevents.Event {
	t.Helper()
	ce, err := outbox.New(events.Source(function), typ, data)
	if err != nil {
		t.Fatal(err)
	}
	ce.SetID(id)
	ce.SetTime(at)
	return ce
}

func TestDebeziumRecordDecodesLikeTheRelays(t *testing.T) {
	c := loadConnector(t)
	r, err := routerOf(c.Config)
	if err != nil {
		t.Fatalf("connector.json: %v", err)
	}
	ctx := context.Background()
	pool := pgtest.Pool(t)

	revoked := func(t *testing.T, id string, at time.Time) cloudevents.Event {
		return newEvent(t, "uninstall", events.TypeInstallRevoked, id, at, events.InstallRevoked{
			InstallID: installID, IntegrationID: integrationID, Name: "crypto-ticker", UserID: "u_1",
			Reason: events.RevokeUserDeleted, RevokedAt: at,
		})
	}
	cases := []struct {
		name  string
		event func(t *testing.T) outbox.Event
		// missing: the attributes Debezium's record does not carry (infra/debezium/README.md,
		// "What the connector does not carry"); empty for every event the functions write today.
		missing []string
		// rejected: the attribute for which kafkace.Decode refuses Debezium's record.
		rejected string
	}{
		{
			name: "install.revoked as uninstall writes it",
			event: func(t *testing.T) outbox.Event {
				ce := revoked(t, "6f1d3c7a-2b4e-5a8f-9c0d-1e2f3a4b5c6d", sixDigits)
				ce.SetSubject(installID)
				return outbox.Event{AggregateType: "integration", AggregateID: integrationID, CloudEvent: ce}
			},
		},
		{
			name: "user.deleted as logto-webhook writes it",
			event: func(t *testing.T) outbox.Event {
				ce := newEvent(t, "logto-webhook", events.TypeUserDeleted, "7a2e4d8b-3c5f-5b9a-8d1e-2f3a4b5c6d7e", trailingZeros,
					events.UserDeleted{UserID: "u_2", DeletedAt: trailingZeros})
				ce.SetSubject("u_2")
				return outbox.Event{AggregateType: "user", AggregateID: "u_2", CloudEvent: ce}
			},
		},
		{
			name: "install.completed on an integration's lifecycle topic",
			event: func(t *testing.T) outbox.Event {
				ce := newEvent(t, "install", events.TypeInstallCompleted, "8b3f5e9c-4d6a-4c0b-9e2f-3a4b5c6d7e8f", wholeSecond,
					events.InstallCompleted{InstallID: installID, IntegrationID: integrationID, Name: "crypto-ticker",
						UserID: "u_3", Scopes: []string{"dashboard:write"}, InstalledAt: wholeSecond})
				ce.SetSubject(installID)
				return outbox.Event{AggregateType: "install", AggregateID: integrationID,
					Topic: "integrations.crypto-ticker.lifecycle", CloudEvent: ce}
			},
		},
		{
			name: "extensions are not carried",
			event: func(t *testing.T) outbox.Event {
				ce := revoked(t, "9c4a6f0d-5e7b-4d1c-8f3a-4b5c6d7e8f90", sixDigits)
				ce.SetSubject(installID)
				ce.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
				return outbox.Event{AggregateType: "integration", AggregateID: integrationID, CloudEvent: ce}
			},
			missing: []string{"traceparent"},
		},
		{
			name: "dataschema is not carried",
			event: func(t *testing.T) outbox.Event {
				ce := revoked(t, "0d5b7a1e-6f8c-4e2d-9a4b-5c6d7e8f9a01", sixDigits)
				ce.SetSubject(installID)
				ce.SetDataSchema("https://schemas.myscrollr.com/events/install.revoked.json")
				return outbox.Event{AggregateType: "integration", AggregateID: integrationID, CloudEvent: ce}
			},
			missing: []string{"dataschema"},
		},
		{
			// A NULL subject becomes a ce_subject header with a null value, which the binding
			// reads as an empty subject and refuses.
			name: "an event without subject is refused",
			event: func(t *testing.T) outbox.Event {
				ce := revoked(t, "1e6c8b2f-7a9d-4f3e-8b5c-6d7e8f9a0b12", sixDigits)
				return outbox.Event{AggregateType: "integration", AggregateID: integrationID, CloudEvent: ce}
			},
			rejected: "subject",
		},
		{
			// outbox.Write stores datacontenttype '' for an event without data; the relay
			// sends application/json, Debezium an empty content-type, which is no media type.
			// (Every platform event has data: outbox.Write requires it.)
			name: "an event without data is refused",
			event: func(t *testing.T) outbox.Event {
				ce := cloudevents.NewEvent()
				ce.SetID("2f7d9c3a-8b0e-4a4f-9c6d-7e8f9a0b1c23")
				ce.SetSource(events.Source("test"))
				ce.SetType("com.myscrollr.connect.test.ping")
				ce.SetTime(sixDigits)
				ce.SetSubject("ping")
				return outbox.Event{AggregateType: "test", AggregateID: "ping", CloudEvent: ce}
			},
			rejected: "datacontenttype",
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.event(t)
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			id, err := outbox.Write(ctx, tx, e)
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			// Debezium renders a timestamptz with the column's precision when it knows it, and
			// as ISO_OFFSET_DATE_TIME otherwise; both must do.
			for _, width := range []int{6, 0} {
				rw := readRow(t, ctx, pool, id, width)
				dbz := r.emit(t, rw)
				relay := relayRecord(t, e, rw.get(t, r.payloadField))
				checkRecord(t, width, dbz, relay, tc.missing, tc.rejected)
			}
		})
	}
}

// checkRecord compares Debezium's record with the relay's: same topic, key and value bytes,
// the relay's ce_ headers and content-type with the same bytes (ce_time the same instant), only
// non-CloudEvents headers besides, and the same event decoded but for the attributes in
// missing; or, when rejected is set, a decode error naming that attribute.
func checkRecord(t *testing.T, width int, dbz, relay *kgo.Record, missing []string, rejected string) {
	t.Helper()
	want, err := kafkace.Decode(relay)
	if err != nil {
		t.Fatalf("relay's record does not decode: %v", err)
	}
	got, err := kafkace.Decode(dbz)
	if rejected != "" {
		var de *kafkace.DecodeError
		if !errors.As(err, &de) || de.Attribute != rejected {
			t.Fatalf("width %d: decode = %v, want a DecodeError on %s (README says so; update both if the binding changed)", width, err, rejected)
		}
		return
	}
	if err != nil {
		t.Fatalf("width %d: Debezium's record does not decode: %v\nheaders: %s", width, err, headerList(dbz))
	}
	if d := differences(want, got); !slices.Equal(d, missing) {
		t.Errorf("width %d: decoded events differ in %v, want %v\nrelay:    %s\ndebezium: %s", width, d, missing, want, got)
	}
	if dbz.Topic != relay.Topic {
		t.Errorf("topic = %q, relay's %q", dbz.Topic, relay.Topic)
	}
	if !bytes.Equal(dbz.Key, relay.Key) {
		t.Errorf("key = %q, relay's %q", dbz.Key, relay.Key)
	}
	if !bytes.Equal(dbz.Value, relay.Value) {
		t.Errorf("value = %q, relay's %q", dbz.Value, relay.Value)
	}
	if id, _ := header(dbz, "id"); !bytes.Equal(id, []byte(want.ID())) {
		t.Errorf("Debezium's id header = %q, want the event id %q", id, want.ID())
	}
	for _, h := range relay.Headers {
		if slices.Contains(missing, strings.TrimPrefix(h.Key, kafkace.HeaderPrefix)) {
			continue
		}
		v, ok := header(dbz, h.Key)
		switch {
		case !ok:
			t.Errorf("width %d: no %s header; the relay writes %q", width, h.Key, h.Value)
		case h.Key == kafkace.HeaderPrefix+"time":
			a, errA := time.Parse(time.RFC3339Nano, string(v))
			b, errB := time.Parse(time.RFC3339Nano, string(h.Value))
			if errA != nil || errB != nil || !a.Equal(b) {
				t.Errorf("width %d: ce_time = %q, relay's %q", width, v, h.Value)
			}
		case !bytes.Equal(v, h.Value):
			t.Errorf("width %d: %s = %q, relay's %q", width, h.Key, v, h.Value)
		}
	}
	for _, h := range dbz.Headers {
		if _, ok := header(relay, h.Key); ok {
			continue
		}
		if strings.HasPrefix(strings.ToLower(h.Key), kafkace.HeaderPrefix) || strings.EqualFold(h.Key, kafkace.HeaderContentType) {
			t.Errorf("width %d: Debezium writes %s = %q, which the relay does not", width, h.Key, h.Value)
		}
	}
}

func headerList(r *kgo.Record) string {
	var b strings.Builder
	for _, h := range r.Headers {
		b.WriteString(h.Key + "=" + string(h.Value) + " ")
	}
	return b.String()
}
