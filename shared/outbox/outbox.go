// Package outbox writes CloudEvents into the transactional outbox: a row in the outbox table,
// inserted in the caller's transaction, so a state change and the event that announces it
// commit together or not at all. The relay function streams committed rows to Kafka through
// logical replication; a transaction that rolls back leaves no row and so no event.
//
// The table uses the column names of Debezium's outbox event router (id, aggregatetype,
// aggregateid, type, payload) plus the CloudEvent attributes, so Debezium can replace the relay
// without changing consumers. The aggregate id is the Kafka record key (the CloudEvent
// partitionkey extension): events of one aggregate stay in order.
//
// Data must be JSON (datacontenttype application/json): the payload column is jsonb. The data
// of a platform event type (package events) must match its JSON Schema (package eventschema);
// Write refuses it otherwise, naming the field.
//
// Checking a large payload against its schema costs more than building it: the data.received
// of a 500-record push spent most of its outbox time re-parsing its own JSON for the
// validator. A producer that builds such a payload from typed values it controls may hand
// Write the value instead (Event.Data, a SchemaChecked): Write marshals it itself and asks the
// value to check itself against its type's schema, a check in Go whose equality with the JSON
// Schema its package proves by test (shared/records does so for data.received). The schema
// stays the contract; data set on the CloudEvent is validated against it as before, so the
// promise holds for every caller that does not opt in with a checked type.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/myscrollr/connect/events/eventschema"
)

// DefaultTopic is where platform events go.
const DefaultTopic = "connect.events"

// Execer is what Write needs of a transaction (pgx.Tx satisfies it).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Event is one outbox entry.
type Event struct {
	// AggregateType names the kind of thing that changed ("integration", "install").
	AggregateType string
	// AggregateID is the id of the thing that changed; it becomes the Kafka key.
	AggregateID string
	// Topic is the Kafka topic; default DefaultTopic.
	Topic string
	// CloudEvent carries type, source and JSON data. An empty id gets a new UUIDv7 and a zero
	// time gets the time of Write.
	CloudEvent cloudevents.Event
	// Data, when set, is the event's data instead of the CloudEvent's: Write marshals it
	// (application/json) and checks it with Data.CheckSchema instead of the JSON Schema
	// validator. Leave it nil unless the type's check is proven equal to its schema.
	Data SchemaChecked
}

// SchemaChecked is a payload that checks itself against the JSON Schema of its event type
// (package eventschema), with the same outcome as validating its JSON, proven by a test of
// the package that defines it.
type SchemaChecked interface {
	// CheckSchema returns nil when the value, marshalled as JSON, matches the schema of
	// eventType, otherwise an error naming the field.
	CheckSchema(eventType string) error
}

// Write inserts e into the outbox in tx. It returns the CloudEvent id.
func Write(ctx context.Context, tx Execer, e Event) (string, error) {
	ce := e.CloudEvent.Clone()
	if e.Data != nil {
		if !eventschema.Has(ce.Type()) {
			return "", fmt.Errorf("outbox: %s has no schema: checked data is for platform event types", ce.Type())
		}
		if err := ce.SetData(cloudevents.ApplicationJSON, e.Data); err != nil {
			return "", fmt.Errorf("outbox: data of %s: %w", ce.Type(), err)
		}
	}
	if e.AggregateType == "" {
		return "", errors.New("outbox: AggregateType is empty")
	}
	if e.AggregateID == "" {
		return "", errors.New("outbox: AggregateID is empty")
	}
	if ce.ID() == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return "", fmt.Errorf("outbox: new id: %w", err)
		}
		ce.SetID(id.String())
	}
	id, err := uuid.Parse(ce.ID())
	if err != nil {
		return "", fmt.Errorf("outbox: CloudEvent id %q is not a UUID", ce.ID())
	}
	if ce.Time().IsZero() {
		ce.SetTime(time.Now().UTC())
	}
	if ce.DataContentType() == "" && ce.Data() != nil {
		ce.SetDataContentType(cloudevents.ApplicationJSON)
	}
	if err := ce.Validate(); err != nil {
		return "", fmt.Errorf("outbox: invalid CloudEvent: %w", err)
	}
	var payload []byte
	if data := ce.Data(); data != nil {
		if !strings.HasPrefix(ce.DataContentType(), "application/json") {
			return "", fmt.Errorf("outbox: datacontenttype %q: only application/json data is stored", ce.DataContentType())
		}
		if e.Data == nil && !json.Valid(data) { // what json.Marshal made is valid
			return "", errors.New("outbox: data is not valid JSON")
		}
		payload = data
	}
	// Platform events must match their schema: a bad payload is refused here, at its source.
	if eventschema.Has(ce.Type()) {
		if payload == nil {
			return "", fmt.Errorf("outbox: %s needs JSON data", ce.Type())
		}
		check := func() error { return eventschema.Validate(ce.Type(), payload) }
		if e.Data != nil {
			check = func() error { return e.Data.CheckSchema(ce.Type()) }
		}
		if err := check(); err != nil {
			return "", fmt.Errorf("outbox: %w", err)
		}
	}
	ext := map[string]any{}
	for k, v := range ce.Extensions() {
		if k == "partitionkey" {
			continue // always the aggregate id
		}
		ext[k] = v
	}
	extJSON, err := json.Marshal(ext)
	if err != nil {
		return "", fmt.Errorf("outbox: extensions: %w", err)
	}
	topic := e.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	var schema, subject *string
	if s := ce.DataSchema(); s != "" {
		schema = &s
	}
	if s := ce.Subject(); s != "" {
		subject = &s
	}
	_, err = tx.Exec(ctx, `INSERT INTO outbox
		(id, aggregatetype, aggregateid, type, payload, source, specversion, datacontenttype, dataschema, subject, time, extensions, topic)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		id, e.AggregateType, e.AggregateID, ce.Type(), nullableJSON(payload), ce.Source(), ce.SpecVersion(),
		ce.DataContentType(), schema, subject, ce.Time(), extJSON, topic)
	if err != nil {
		return "", fmt.Errorf("outbox: insert: %w", err)
	}
	return id.String(), nil
}

// New builds a CloudEvent of type typ from source with data marshalled as JSON.
func New(source, typ string, data any) (cloudevents.Event, error) {
	ce := cloudevents.NewEvent()
	ce.SetSource(source)
	ce.SetType(typ)
	if err := ce.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return ce, fmt.Errorf("outbox: data of %s: %w", typ, err)
	}
	return ce, nil
}

func nullableJSON(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
