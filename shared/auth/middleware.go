package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
)

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the middleware stored in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header
// value (scheme case-insensitive), or "" if there is none.
func BearerToken(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// Require returns middleware that admits a request only with a valid bearer
// token holding every one of scopes. It answers 401 with
// `WWW-Authenticate: Bearer error="invalid_token"` (no error code when the
// token is missing, per RFC 6750 §3.1) or 403 with
// `error="insufficient_scope"`, and logs the reason, never the token. The
// principal is available to the next handler through PrincipalFrom.
func (v *Verifier) Require(scopes ...string) func(http.Handler) http.Handler {
	return v.require(nil, scopes)
}

// RequireClient is Require for integration routes: the token's `client_id`
// must also equal the integration's Logto application id, as returned by
// clientID for the request. An error from clientID that is a *httpx.Problem
// (for example 404 for an unknown integration) is written as is; any other
// error answers 503.
func (v *Verifier) RequireClient(clientID func(r *http.Request) (string, error), scopes ...string) func(http.Handler) http.Handler {
	if clientID == nil {
		panic("auth: RequireClient needs a clientID function")
	}
	return v.require(clientID, scopes)
}

func (v *Verifier) require(clientID func(*http.Request) (string, error), scopes []string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := v.Verify(r.Context(), BearerToken(r.Header.Get("Authorization")))
			if err == nil {
				err = checkScopes(p, scopes)
			}
			if err == nil && clientID != nil {
				want, cerr := clientID(r)
				if cerr != nil {
					var prob *httpx.Problem
					if !errors.As(cerr, &prob) {
						prob = httpx.Unavailable("cannot resolve the integration", cerr)
					}
					httpx.WriteProblem(w, r, prob)
					return
				}
				if want == "" || p.ClientID != want {
					err = fmt.Errorf("%w: token client_id %q is not the integration's application", ErrClient, clip.Ellipsis(p.ClientID, 64))
				}
			}
			if err != nil {
				v.reject(w, r, err, scopes)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

func checkScopes(p *Principal, scopes []string) error {
	for _, s := range scopes {
		if !p.Has(s) {
			return fmt.Errorf("%w: missing %q", ErrScope, s)
		}
	}
	return nil
}

func (v *Verifier) reject(w http.ResponseWriter, r *http.Request, err error, scopes []string) {
	reason := Reason(err)
	v.log.LogAttrs(r.Context(), slog.LevelInfo, "auth: request rejected",
		slog.String("reason", reason), slog.String("detail", err.Error()),
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
	switch {
	case errors.Is(err, ErrScope) || errors.Is(err, ErrClient):
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q`, strings.Join(scopes, " ")))
		httpx.WriteProblem(w, r, httpx.Forbidden(reason))
	case errors.Is(err, ErrMissingToken):
		w.Header().Set("WWW-Authenticate", `Bearer`)
		httpx.WriteProblem(w, r, httpx.Unauthorized("a bearer token is required"))
	default:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="invalid_token", error_description=%q`, reason))
		httpx.WriteProblem(w, r, httpx.Unauthorized("invalid token: "+reason))
	}
}
