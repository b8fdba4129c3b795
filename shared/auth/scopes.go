package auth

// Scopes of the MyScrollr API resource. Users grant the first four to
// integrations; data:write is for push integrations; the integrations:*
// scopes are platform scopes for developers and admins.
const (
	ScopeProfileRead       = "profile:read"
	ScopeDashboardRead     = "dashboard:read"
	ScopeDashboardWrite    = "dashboard:write"
	ScopeFantasyRead       = "fantasy:read"
	ScopeDataWrite         = "data:write"
	ScopeIntegrationsWrite = "integrations:write"
	ScopeIntegrationsAdmin = "integrations:admin"
)

// AllScopes lists every scope above, in a stable order.
func AllScopes() []string {
	return []string{
		ScopeProfileRead, ScopeDashboardRead, ScopeDashboardWrite, ScopeFantasyRead,
		ScopeDataWrite, ScopeIntegrationsWrite, ScopeIntegrationsAdmin,
	}
}
