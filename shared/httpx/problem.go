// Package httpx holds the HTTP conventions every function follows: handlers return errors,
// one adapter (HandlerFunc) turns them into RFC 9457 problem+json responses and logs the
// cause; request bodies are bounded and decoded strictly (DecodeJSON) with errors that name
// the offending field, or bounded and read whole (ReadBody) by handlers that need the raw bytes,
// such as webhooks whose signature covers the body.
//
// The client sees the safe message (Problem.Title/Detail/Errors); the log sees the cause
// (Problem.Cause, or the whole error for unexpected failures), tagged with the request id
// carried by the logger in the request context (see package logging).
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/myscrollr/connect/shared/logging"
)

// DefaultMaxBody is the body limit DecodeJSON applies when given a non-positive limit.
const DefaultMaxBody = 1 << 20

// StatusClientClosedRequest is the non-standard status recorded (never sent in practice) when
// the client went away before the handler finished.
const StatusClientClosedRequest = 499

// Problem is an RFC 9457 problem+json body and an error.
type Problem struct {
	Type     string       `json:"type,omitempty"` // default "about:blank"
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"` // extension member
	Cause    error        `json:"-"`                // logged, never sent
}

// FieldError names one invalid input. Field is a JSON-pointer-ish path such as
// "manifest.scopes[2]", a query parameter or a header name.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Error implements error with the status, title and detail (never the cause's text, so an
// error string is as safe to show as the body).
func (p *Problem) Error() string {
	s := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Unwrap returns the cause, so errors.Is/As see through a Problem.
func (p *Problem) Unwrap() error { return p.Cause }

func newProblem(status int, detail string) *Problem {
	return &Problem{Title: http.StatusText(status), Status: status, Detail: detail}
}

// BadRequest is a 400 problem, optionally listing the invalid fields.
func BadRequest(detail string, fields ...FieldError) *Problem {
	p := newProblem(http.StatusBadRequest, detail)
	p.Errors = fields
	return p
}

// Unauthorized is a 401 problem; WriteProblem adds "WWW-Authenticate: Bearer".
func Unauthorized(detail string) *Problem { return newProblem(http.StatusUnauthorized, detail) }

// Forbidden is a 403 problem.
func Forbidden(detail string) *Problem { return newProblem(http.StatusForbidden, detail) }

// NotFound is a 404 problem.
func NotFound(detail string) *Problem { return newProblem(http.StatusNotFound, detail) }

// Conflict is a 409 problem.
func Conflict(detail string) *Problem { return newProblem(http.StatusConflict, detail) }

// MethodNotAllowed is a 405 problem; WriteProblem does not set Allow, the caller does.
func MethodNotAllowed(method string) *Problem {
	return newProblem(http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed here", method))
}

// TooLarge is a 413 problem naming the limit in bytes.
func TooLarge(limit int64) *Problem {
	return newProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", limit))
}

// Unavailable is a 503 problem; cause is logged, not sent.
func Unavailable(detail string, cause error) *Problem {
	p := newProblem(http.StatusServiceUnavailable, detail)
	p.Cause = cause
	return p
}

// Internal is the 500 problem sent for unexpected errors; cause is logged, not sent.
func Internal(cause error) *Problem {
	p := newProblem(http.StatusInternalServerError, "internal error")
	p.Cause = cause
	return p
}

// HandlerFunc is the signature of every HTTP handler: return an error, the adapter writes it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP runs h and maps its error: a *Problem (found with errors.As) is written with its
// status; context.Canceled while the request's context is done (the client went away) writes
// nothing; anything else is a 500 "internal error" whose cause is logged with the request's
// logger (which carries the request id).
func (h HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := h(w, r)
	if err == nil {
		return
	}
	var p *Problem
	switch {
	case errors.As(err, &p):
		if p.Cause == nil && p != err {
			// Keep the wrapping context for the log.
			cp := *p
			cp.Cause = err
			p = &cp
		}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		logging.From(r.Context()).Debug("client went away", slog.Any("error", err))
		return
	default:
		p = Internal(err)
	}
	WriteProblem(w, r, p)
}

// WriteJSON writes v as JSON with the given status. If v cannot be encoded it writes a 500
// problem instead (and nothing of v).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, nil, Internal(fmt.Errorf("httpx: encode response: %w", err)))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// WriteProblem writes p as application/problem+json with p.Status (500 when unset), logging
// p.Cause when present: at error level for 5xx, at info otherwise. For 401 it sets
// "WWW-Authenticate: Bearer" unless the handler already set it.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	writeProblem(w, r, p)
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p == nil {
		p = Internal(errors.New("httpx: nil problem"))
	}
	body := *p
	if body.Status < 100 || body.Status > 599 {
		body.Status = http.StatusInternalServerError
	}
	if body.Title == "" {
		body.Title = http.StatusText(body.Status)
	}
	if body.Type == "" {
		body.Type = "about:blank"
	}
	if body.Cause != nil || body.Status >= 500 {
		ctx := context.Background()
		if r != nil {
			ctx = r.Context()
		}
		level := slog.LevelInfo
		if body.Status >= 500 {
			level = slog.LevelError
		}
		logging.From(ctx).Log(ctx, level, "request failed",
			slog.Int("status", body.Status), slog.String("detail", body.Detail), slog.Any("error", body.Cause))
	}
	h := w.Header()
	if body.Status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", "Bearer")
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	b, err := json.Marshal(&body)
	if err != nil { // cannot happen: only strings and ints
		b = []byte(`{"title":"Internal Server Error","status":500}`)
		body.Status = http.StatusInternalServerError
	}
	w.WriteHeader(body.Status)
	_, _ = w.Write(append(b, '\n'))
}
