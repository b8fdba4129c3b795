package conformance

// Result is the outcome of one automated check of an integration, stored by the registry with
// the version it checked and shown to the developer.
type Result struct {
	// Name identifies the check, stable across versions: "schema", "base_url", "health",
	// "pull_schema", "pull_data", "push_schema", "widget_manifest", "widget_bundle",
	// "lifecycle", "mixed_content" (the Check* constants).
	Name string `json:"name"`
	// Required checks must pass before the version can be published.
	Required bool `json:"required"`
	// Passed says whether it passed.
	Passed bool `json:"passed"`
	// Reason says why it failed (or what was seen when it passed), for the developer: short,
	// never containing secrets.
	Reason string `json:"reason,omitempty"`
	// ResponseTimeMS is how long the integration took to answer, when the check called it.
	ResponseTimeMS *int64 `json:"response_time_ms,omitempty"`
}
