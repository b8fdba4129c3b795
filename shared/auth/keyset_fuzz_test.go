package auth

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// FuzzFreshness: whatever Cache-Control and Age an identity provider sends, the key set is
// trusted for between MinRefreshInterval and JWKSMaxAge, and the parser never panics.
func FuzzFreshness(f *testing.F) {
	for _, s := range []string{"", "max-age=60", "no-cache", "no-store", "public, max-age=600", `max-age="90"`,
		"max-age=99999999999999999999", "max-age=-1", "max-age", "=,=,", "MAX-AGE=5"} {
		f.Add(s, "")
	}
	f.Add("max-age=600", "300")
	f.Add("max-age=600", "18446744073709551616")
	f.Fuzz(func(t *testing.T, cacheControl, age string) {
		h := http.Header{}
		h.Set("Cache-Control", cacheControl)
		h.Set("Age", age)
		const minInterval, maxAge = 30 * time.Second, 15 * time.Minute
		d := freshness(h, minInterval, maxAge)
		if d < minInterval || d > maxAge {
			t.Fatalf("freshness(%q, age %q) = %s, outside [%s, %s]", cacheControl, age, d, minInterval, maxAge)
		}
	})
}

// FuzzCheckJWKSURL: a jwks_uri is accepted only if it is an absolute http(s) URL with a host and
// no user information, https when the issuer is.
func FuzzCheckJWKSURL(f *testing.F) {
	for _, s := range []string{"https://idp.example/oidc/jwks", "http://127.0.0.1:3001/oidc/jwks", "file:///etc/passwd",
		"/oidc/jwks", "http://u:p@h/", "javascript:alert(1)", "HTTPS://IDP.EXAMPLE/", "http:///x", "http://%zz/"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, httpsIssuer bool) {
		issuer := "http://idp.example/oidc"
		if httpsIssuer {
			issuer = "https://idp.example/oidc"
		}
		if checkJWKSURL(raw, issuer) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && (httpsIssuer || u.Scheme != "http")) {
			t.Fatalf("accepted %q (issuer %s)", raw, issuer)
		}
	})
}
