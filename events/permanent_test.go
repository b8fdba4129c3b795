package events_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/myscrollr/connect/events"
)

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("bad payload")
	err := events.Permanent(base)
	if !events.IsPermanent(err) || !errors.Is(err, base) || err.Error() != "bad payload" {
		t.Fatalf("Permanent(%v) = %v: not permanent, or hides its cause", base, err)
	}
	if !events.IsPermanent(fmt.Errorf("handle: %w", err)) {
		t.Error("a wrapped permanent error is not recognised")
	}
	if events.IsPermanent(base) || events.IsPermanent(nil) || events.Permanent(nil) != nil {
		t.Error("a plain error or nil is permanent, or Permanent(nil) != nil")
	}
	if !events.IsPermanent(foreignPermanent{permanent: true}) || events.IsPermanent(foreignPermanent{}) {
		t.Error("an error's own Permanent() bool is not what decides")
	}
}

type foreignPermanent struct{ permanent bool }

func (foreignPermanent) Error() string     { return "foreign" }
func (f foreignPermanent) Permanent() bool { return f.permanent }
