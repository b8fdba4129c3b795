package auth

import (
	"context"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/myscrollr/connect/shared/clip"
)

// EventAuthExtension is the CloudEvents extension attribute that carries the
// bearer token of an event sent by an integration (push ingestion): its value
// is "Bearer <token>" or the bare token. On HTTP it travels as the
// `ce-authorization` header, on Kafka as the `ce_authorization` header.
const EventAuthExtension = "authorization"

// VerifyEvent verifies the token an event carries in its authorization
// extension and checks scopes. A missing scope wraps ErrScope. Callers
// usually turn any error into a permanent (not retried) failure.
func (v *Verifier) VerifyEvent(ctx context.Context, e cloudevents.Event, scopes ...string) (*Principal, error) {
	raw, _ := e.Extensions()[EventAuthExtension].(string)
	token := BearerToken(raw)
	if token == "" {
		token = raw
	}
	p, err := v.Verify(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("event %s from %s: %w", clip.Ellipsis(e.ID(), 64), clip.Ellipsis(e.Source(), 128), err)
	}
	if err := checkScopes(p, scopes); err != nil {
		return nil, fmt.Errorf("event %s from %s: %w", clip.Ellipsis(e.ID(), 64), clip.Ellipsis(e.Source(), 128), err)
	}
	return p, nil
}
