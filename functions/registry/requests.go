package main

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/myscrollr/connect/shared/httpx"
)

// maxSmallBody bounds the small JSON bodies of the lifecycle and admin routes.
const maxSmallBody = 16 << 10

// Verification tiers.
const (
	TierUnverified = "unverified"
	TierVerified   = "verified"
	TierFeatured   = "featured"
)

var integrationName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// DeprecateRequest is the body of POST .../{name}/deprecate.
type DeprecateRequest struct {
	Message     string `json:"message"`               // 1-1000 characters, shown to users
	Sunset      string `json:"sunset,omitempty"`      // YYYY-MM-DD, not before today (UTC)
	Replacement string `json:"replacement,omitempty"` // the name of another integration
}

// UnpublishRequest is the optional body of POST .../{name}/unpublish.
type UnpublishRequest struct {
	Reason string `json:"reason,omitempty"` // up to 1000 characters
}

// VerificationRequest is the optional body of POST .../{name}/verification.
type VerificationRequest struct {
	Note string `json:"note,omitempty"` // up to 2000 characters, for the reviewer
}

// TierRequest is the body of POST /v1/admin/integrations/{name}/tier.
type TierRequest struct {
	Tier   string `json:"tier"`   // unverified, verified or featured
	Reason string `json:"reason"` // 1-1000 characters, recorded
}

// text says why s is not acceptable free text of at most max characters ("" when it is).
func text(s string, min, max int) string {
	n := utf8.RuneCountInString(s)
	switch {
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL character"
	case min > 0 && strings.TrimSpace(s) == "":
		return "required"
	case n < min:
		return "too short"
	case n > max:
		return "at most " + strconv.Itoa(max) + " characters"
	}
	return ""
}

// hasBody reports whether the request carries a body to decode: optional bodies may be left
// out entirely.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && (r.ContentLength != 0 || r.Header.Get("Content-Type") != "")
}

func decodeDeprecate(r *http.Request, today time.Time) (DeprecateRequest, error) {
	var d DeprecateRequest
	if err := httpx.DecodeJSON(r, &d, maxSmallBody); err != nil {
		return d, err
	}
	var fields []httpx.FieldError
	if reason := text(d.Message, 1, 1000); reason != "" {
		fields = append(fields, httpx.FieldError{Field: "message", Reason: reason})
	}
	if d.Sunset != "" {
		t, err := time.Parse(time.DateOnly, d.Sunset)
		switch {
		case err != nil:
			fields = append(fields, httpx.FieldError{Field: "sunset", Reason: "must be a date, YYYY-MM-DD"})
		case t.Before(today.UTC().Truncate(24 * time.Hour)):
			fields = append(fields, httpx.FieldError{Field: "sunset", Reason: "must not be in the past"})
		}
	}
	if d.Replacement != "" && !integrationName.MatchString(d.Replacement) {
		fields = append(fields, httpx.FieldError{Field: "replacement", Reason: "must be an integration's name"})
	}
	if len(fields) > 0 {
		return d, httpx.BadRequest("invalid request", fields...)
	}
	return d, nil
}

func decodeUnpublish(r *http.Request) (UnpublishRequest, error) {
	var u UnpublishRequest
	if !hasBody(r) {
		return u, nil
	}
	if err := httpx.DecodeJSON(r, &u, maxSmallBody); err != nil {
		return u, err
	}
	if reason := text(u.Reason, 0, 1000); reason != "" {
		return u, httpx.BadRequest("invalid request", httpx.FieldError{Field: "reason", Reason: reason})
	}
	return u, nil
}

func decodeVerification(r *http.Request) (VerificationRequest, error) {
	var v VerificationRequest
	if !hasBody(r) {
		return v, nil
	}
	if err := httpx.DecodeJSON(r, &v, maxSmallBody); err != nil {
		return v, err
	}
	if reason := text(v.Note, 0, 2000); reason != "" {
		return v, httpx.BadRequest("invalid request", httpx.FieldError{Field: "note", Reason: reason})
	}
	return v, nil
}

func decodeTier(r *http.Request) (TierRequest, error) {
	var t TierRequest
	if err := httpx.DecodeJSON(r, &t, maxSmallBody); err != nil {
		return t, err
	}
	var fields []httpx.FieldError
	switch t.Tier {
	case TierUnverified, TierVerified, TierFeatured:
	case "":
		fields = append(fields, httpx.FieldError{Field: "tier", Reason: "required"})
	default:
		fields = append(fields, httpx.FieldError{Field: "tier", Reason: "must be unverified, verified or featured"})
	}
	if reason := text(t.Reason, 1, 1000); reason != "" {
		fields = append(fields, httpx.FieldError{Field: "reason", Reason: reason})
	}
	if len(fields) > 0 {
		return t, httpx.BadRequest("invalid request", fields...)
	}
	return t, nil
}
