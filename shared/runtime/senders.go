package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
)

// SenderVerifier checks the bearer token that comes with a CloudEvent at POST /events. An
// *auth.Verifier configured with the sender issuer and the function's own audience is one.
type SenderVerifier interface {
	Verify(ctx context.Context, rawToken string) (*auth.Principal, error)
}

// SenderConfig says whose events a function accepts: Knative Eventing sender identity
// (feature flag authentication-oidc). Eventing attaches to every delivery an OIDC token issued
// for the receiver's audience; the function accepts the event only with such a token.
type SenderConfig struct {
	// Issuer is the OIDC issuer of sender tokens (EVENTS_OIDC_ISSUER): the cluster's service
	// account issuer on Knative; the development identity server's issuer locally.
	Issuer string
	// Audience is this function's own audience (EVENTS_OIDC_AUDIENCE), the `audience` its
	// Triggers and sources declare, e.g. serving.knative.dev/service/connect/uninstall.
	Audience string
	// JWKSURL is where the issuer's keys are (EVENTS_OIDC_JWKS_URL); empty uses discovery.
	JWKSURL string
	// Subjects, when set, are the only token subjects accepted (EVENTS_OIDC_SUBJECTS,
	// comma-separated): the service accounts of the senders.
	Subjects []string
	// Algorithms are the accepted JWS algorithms (EVENTS_OIDC_ALGORITHMS, comma-separated);
	// default RS256 (Kubernetes service account tokens), ES256 and ES384.
	Algorithms []string
}

// Enabled reports whether sender verification is configured.
func (c SenderConfig) Enabled() bool { return c.Issuer != "" || c.Audience != "" }

func (c SenderConfig) validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("EVENTS_OIDC_ISSUER: required with EVENTS_OIDC_AUDIENCE (the issuer of Knative Eventing sender tokens)"))
	} else if !strings.HasPrefix(c.Issuer, "https://") && !strings.HasPrefix(c.Issuer, "http://") {
		errs = append(errs, fmt.Errorf("EVENTS_OIDC_ISSUER %q: want an http(s) URL", c.Issuer))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("EVENTS_OIDC_AUDIENCE: required with EVENTS_OIDC_ISSUER (this function's own audience)"))
	}
	return errors.Join(errs...)
}

// NewSenderVerifier returns the verifier of sender tokens for c. Discovery and key fetches go
// through client (nil: a client with a 10s timeout).
func NewSenderVerifier(ctx context.Context, c SenderConfig, log *slog.Logger, client *http.Client) (SenderVerifier, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	algs := c.Algorithms
	if len(algs) == 0 {
		algs = []string{"RS256", "ES256", "ES384"}
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: c.Issuer, Audience: c.Audience, JWKSURL: c.JWKSURL,
		Algorithms: algs, Logger: log}, client)
	if err != nil {
		return nil, err
	}
	if len(c.Subjects) == 0 {
		return v, nil
	}
	return subjectVerifier{v: v, subjects: slices.Clone(c.Subjects)}, nil
}

// subjectVerifier admits only the listed subjects.
type subjectVerifier struct {
	v        SenderVerifier
	subjects []string
}

// errSubject is the reason an otherwise valid token of an unknown sender is refused.
var errSubject = errors.New("sender not allowed")

func (s subjectVerifier) Verify(ctx context.Context, raw string) (*auth.Principal, error) {
	p, err := s.v.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(s.subjects, p.Subject) {
		return nil, fmt.Errorf("%w: subject %q", errSubject, clip.Ellipsis(p.Subject, 128))
	}
	return p, nil
}

// authenticateSender answers 401 and returns false unless the request carries a valid sender
// token. The token is never logged; the reason is.
func (s *server) authenticateSender(w http.ResponseWriter, r *http.Request) bool {
	if s.d.InsecureEvents {
		return true
	}
	var err error
	if s.d.Senders == nil {
		err = errors.New("sender verification is not configured (EVENTS_OIDC_ISSUER, EVENTS_OIDC_AUDIENCE)")
	} else {
		_, err = s.d.Senders.Verify(r.Context(), auth.BearerToken(r.Header.Get("Authorization")))
	}
	if err == nil {
		return true
	}
	reason := auth.Reason(err)
	switch {
	case errors.Is(err, errSubject):
		reason = errSubject.Error()
	case s.d.Senders == nil:
		reason = "sender verification not configured"
	}
	s.m.event("", OutcomeUnauthenticated)
	s.d.Logger.LogAttrs(r.Context(), slog.LevelWarn, "event refused: sender not authenticated",
		slog.String("reason", reason), slog.String("detail", clip.Ellipsis(err.Error(), 256)))
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	httpx.WriteProblem(w, r, httpx.Unauthorized("events need a sender token issued for this function: "+reason))
	return false
}
