package dispatch

import (
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Matches reports whether e passes a Trigger's attributes filter: every attribute named in
// filter must exist on the event (context attribute or extension) with exactly that string
// value. An empty value matches any value, including a missing attribute, as in Knative; an
// empty filter matches every event.
func Matches(filter map[string]string, e cloudevents.Event) bool {
	for name, want := range filter {
		if want == "" {
			continue
		}
		got, ok := Attribute(e, name)
		if !ok || got != want {
			return false
		}
	}
	return true
}

// Attribute returns the canonical string form of a context attribute or extension of e.
func Attribute(e cloudevents.Event, name string) (string, bool) {
	switch name {
	case "specversion":
		return e.SpecVersion(), true
	case "id":
		return e.ID(), true
	case "type":
		return e.Type(), true
	case "source":
		return e.Source(), true
	case "subject":
		return e.Subject(), e.Subject() != ""
	case "datacontenttype":
		return e.DataContentType(), e.DataContentType() != ""
	case "dataschema":
		return e.DataSchema(), e.DataSchema() != ""
	case "time":
		if e.Time().IsZero() {
			return "", false
		}
		return e.Time().UTC().Format(time.RFC3339Nano), true
	}
	v, ok := e.Extensions()[name]
	if !ok {
		return "", false
	}
	s, err := types.Format(v)
	if err != nil {
		return "", false
	}
	return s, true
}
