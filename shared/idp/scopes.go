package idp

// scopeWords says what each scope allows, in words, for the consent page.
var scopeWords = []struct{ scope, words string }{
	{"profile:read", "Read your MyScrollr profile"},
	{"dashboard:read", "Read your dashboard"},
	{"dashboard:write", "Write to your dashboard"},
	{"fantasy:read", "Read your fantasy leagues"},
	{"data:write", "Send data to MyScrollr"},
	{"integrations:write", "Publish and manage your integrations"},
	{"integrations:admin", "Administer the marketplace"},
	{"openid", "Know who you are"},
	{"profile", "See your name and picture"},
	{"email", "See your email address"},
	{"offline_access", "Stay connected when you are away"},
}

func scopeNames() []string {
	var out []string
	for _, s := range scopeWords[:7] {
		out = append(out, s.scope)
	}
	return out
}

// describeScope returns the words for scope, or the scope itself.
func describeScope(scope string) string {
	for _, s := range scopeWords {
		if s.scope == scope {
			return s.words
		}
	}
	return scope
}

// oidcScope reports whether scope is an OpenID Connect scope rather than an
// API resource scope.
func oidcScope(scope string) bool {
	switch scope {
	case "openid", "profile", "email", "phone", "address", "offline_access":
		return true
	}
	return false
}
