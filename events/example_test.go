package events_test

import (
	"encoding/json"
	"fmt"

	"github.com/myscrollr/connect/events"
)

// Decode a payload by event type, as a consumer of connect.events does.
func ExampleDataFor() {
	data := []byte(`{"install_id":"7d1c","integration_id":"0b7e","name":"weather","user_id":"u_1","reason":"user_request","revoked_at":"2026-01-02T03:04:05Z"}`)
	payload := events.DataFor(events.TypeInstallRevoked)
	if err := json.Unmarshal(data, payload); err != nil {
		fmt.Println(err)
		return
	}
	revoked := payload.(*events.InstallRevoked)
	fmt.Println(revoked.UserID, revoked.Reason, events.LifecycleTopic(revoked.Name))
	// Output: u_1 user_request integrations.weather.lifecycle
}
