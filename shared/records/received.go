package records

import (
	"bytes"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/eventschema"
)

// dataReceived is the data.received payload Store builds from typed values. It checks itself
// against the event's JSON Schema (events/eventschema, the contract) in Go, so the outbox
// does not re-parse 500 records to validate them (outbox.SchemaChecked). The check follows the
// schema rule by rule; TestDataReceivedCheckEqualsSchema and FuzzDataReceivedCheck prove it
// agrees with the validator. One deliberate narrowing: times must be in UTC (Store stamps them
// so), since the validator's date-time rules for offsets are not repeated here.
type dataReceived events.DataReceived

var (
	integrationName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)
	uuidHex         = []int{8, 4, 4, 4, 12}
)

// schemaError is an error of the check, worded as eventschema's.
func schemaError(field, format string, args ...any) error {
	return &eventschema.Error{Type: events.TypeDataReceived, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// CheckSchema implements outbox.SchemaChecked.
func (d dataReceived) CheckSchema(eventType string) error {
	if eventType != events.TypeDataReceived {
		return fmt.Errorf("records: a data.received payload cannot be a %s", eventType)
	}
	if !isUUID(d.IntegrationID) {
		return schemaError("integration_id", "not a uuid")
	}
	if !integrationName.MatchString(d.Name) {
		return schemaError("name", "does not match %s", integrationName)
	}
	if d.DeliveryMode != events.DeliveryPull && d.DeliveryMode != events.DeliveryPush {
		return schemaError("delivery_mode", "must be pull or push")
	}
	if d.RecordCount < 0 {
		return schemaError("record_count", "must be >= 0")
	}
	if d.Records == nil {
		return schemaError("records", "got null, want array")
	}
	if err := utcTime("received_at", d.ReceivedAt); err != nil {
		return err
	}
	for i, r := range d.Records {
		at := func(f string) string { return fmt.Sprintf("records.%d.%s", i, f) }
		switch {
		case !StreamName.MatchString(r.Stream):
			return schemaError(at("stream"), "does not match %s", StreamName)
		case !runesIn(r.Key, 1, 256):
			return schemaError(at("key"), "must be 1 to 256 characters")
		case r.User != "" && !runesIn(r.User, 1, 128):
			return schemaError(at("user"), "must be 1 to 128 characters")
		case r.SchemaVersion != "" && !runesIn(r.SchemaVersion, 1, 128):
			return schemaError(at("schema_version"), "must be 1 to 128 characters")
		case len(bytes.TrimLeft(r.Data, " \t\r\n")) == 0 || bytes.TrimLeft(r.Data, " \t\r\n")[0] != '{':
			return schemaError(at("data"), "want object")
		}
		if !r.ObservedAt.IsZero() {
			if err := utcTime(at("observed_at"), r.ObservedAt); err != nil {
				return err
			}
		}
	}
	return nil
}

// utcTime accepts a time that marshals as an RFC 3339 date-time in UTC.
func utcTime(field string, t time.Time) error {
	if t.Location() != time.UTC {
		return schemaError(field, "not in UTC")
	}
	if y := t.Year(); y < 0 || y > 9999 {
		return schemaError(field, "year %d is not a date-time", y)
	}
	return nil
}

// runesIn: the JSON string s becomes has between lo and hi characters (encoding/json turns
// each invalid byte into one U+FFFD, which RuneCountInString counts as one too).
func runesIn(s string, lo, hi int) bool {
	n := utf8.RuneCountInString(s)
	return n >= lo && n <= hi
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	i := 0
	for g, n := range uuidHex {
		if g > 0 {
			if s[i] != '-' {
				return false
			}
			i++
		}
		for range n {
			c := s[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
			i++
		}
	}
	return true
}
