// Package health is the health contract of an integration, schemas/json/health.json, as code:
// how the answer to GET {base_url}/health is read. The health probe (functions/health-probe,
// every minute) and the registry's automated checks (package conformance, on registration and
// each new version) both judge a body with [Judge], so an integration is never healthy for one
// and failing for the other.
//
// Timing is not part of Judge: the probe calls an answer over its threshold degraded, the
// registry's check fails it; each says so in its own reason.
package health

import (
	"encoding/json"
	"fmt"

	"github.com/myscrollr/connect/events"
)

// Path is probed below each integration's base_url.
const Path = "health"

// MaxBodyBytes bounds the body of a health answer: the contract is a small JSON object; a
// longer body fails the check.
const MaxBodyBytes = 4 << 10

// statuses maps the status values of the health contract to a check's result. They follow the
// IETF draft "Health Check Response Format for HTTP APIs" (pass/warn/fail, with ok/up and
// error/down accepted for pass and fail) plus our own healthy/degraded.
var statuses = map[string]string{
	"ok": events.HealthHealthy, "pass": events.HealthHealthy, "up": events.HealthHealthy, "healthy": events.HealthHealthy,
	"degraded": events.HealthDegraded, "warn": events.HealthDegraded,
	"down": events.HealthOffline, "fail": events.HealthOffline, "error": events.HealthOffline,
}

// Judge reads a 2xx answer's body by the health contract: a JSON object whose "status" is one
// of the contract's values. It returns events.HealthHealthy, events.HealthDegraded or
// events.HealthOffline, and a short reason when not healthy: "body: ..." when the body is not
// the contract's document, `reported "down"` when the integration says it is not working.
// Anything off the contract is offline: an integration that does not speak the contract cannot
// be told apart from a web server answering for a dead one.
func Judge(body []byte) (status, reason string) {
	var doc struct {
		Status *string `json:"status"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return events.HealthOffline, "body: not a JSON object"
	}
	if doc.Status == nil {
		return events.HealthOffline, `body: no "status"`
	}
	s, ok := statuses[*doc.Status]
	if !ok {
		return events.HealthOffline, `body: unknown "status"`
	}
	if s != events.HealthHealthy {
		return s, fmt.Sprintf("reported %q", *doc.Status)
	}
	return s, ""
}
