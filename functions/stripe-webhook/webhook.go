package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/webhook"

	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/logging"
)

// SignatureHeader carries Stripe's signature: t=<unix time>,v1=<hex HMAC-SHA256>[,v1=...].
const SignatureHeader = "Stripe-Signature"

// Path is where Stripe posts its webhooks (platform and connected-account events alike).
const Path = "/v1/webhooks/stripe"

// Handler receives Stripe webhooks.
type Handler struct {
	cfg  Config
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time
}

// New returns a Handler. now is the clock of outbox events and grace periods (nil: time.Now).
// Signature times are checked by stripe-go against the real clock.
func New(cfg Config, pool *pgxpool.Pool, log *slog.Logger, now func() time.Time) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if pool == nil {
		return nil, errors.New("stripe-webhook: a database pool is required")
	}
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Handler{cfg: cfg, pool: pool, log: log, now: now}, nil
}

// Routes serves POST /v1/webhooks/stripe.
func (h *Handler) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+Path, httpx.HandlerFunc(h.serve))
	return mux
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	log := logging.From(r.Context())
	body, p := httpx.ReadBody(w, r, h.cfg.MaxBody)
	if p != nil {
		return p
	}
	if reason := h.verify(body, r.Header.Get(SignatureHeader)); reason != "" {
		log.Warn("stripe webhook rejected", slog.String("reason", reason), slog.Int("bytes", len(body)))
		return httpx.BadRequest("the webhook is not signed by Stripe with this endpoint's secret",
			httpx.FieldError{Field: SignatureHeader, Reason: reason})
	}
	ev, p := h.parse(body)
	if p != nil {
		log.Warn("stripe webhook refused", slog.String("detail", p.Detail))
		return p
	}
	log = log.With(slog.String("stripe_event", ev.ID), slog.String("type", string(ev.Type)))
	if !handled(ev.Type) {
		log.Debug("stripe webhook ignored")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	res, err := h.apply(r.Context(), log, ev)
	if err != nil {
		var pe *httpx.Problem
		if errors.As(err, &pe) {
			return pe
		}
		if r.Context().Err() != nil {
			return err
		}
		return httpx.Unavailable("the event could not be stored; retry later", err)
	}
	log.Info("stripe webhook applied", slog.Bool("duplicate", res.duplicate), slog.Int("events", res.events),
		slog.Bool("stale", res.stale), slog.String("note", res.note))
	w.WriteHeader(http.StatusOK)
	return nil
}

// verify checks the signature with each secret; "" means one matched, else the reason (for
// the log and the problem's field; it never says which secret is configured).
func (h *Handler) verify(body []byte, header string) string {
	if strings.TrimSpace(header) == "" {
		return "missing"
	}
	var err error
	for _, s := range h.cfg.Secrets {
		if err = webhook.ValidatePayloadWithTolerance(body, header, s, h.cfg.Tolerance); err == nil {
			return ""
		}
		if errors.Is(err, webhook.ErrTooOld) || errors.Is(err, webhook.ErrInvalidHeader) || errors.Is(err, webhook.ErrNotSigned) {
			break // the same for every secret
		}
	}
	switch {
	case errors.Is(err, webhook.ErrTooOld):
		return "timestamp outside the tolerance"
	case errors.Is(err, webhook.ErrInvalidHeader):
		return "malformed"
	default:
		return "no valid v1 signature"
	}
}

// parse decodes the signed body as a Stripe event and checks what the handlers rely on.
func (h *Handler) parse(body []byte) (*stripe.Event, *httpx.Problem) {
	bad := func(field, reason string) *httpx.Problem {
		return httpx.BadRequest("the event cannot be processed", httpx.FieldError{Field: field, Reason: reason})
	}
	if !utf8.Valid(body) {
		return nil, bad("body", "not UTF-8")
	}
	if d := httpx.JSONDepth(body, 64); d > 64 {
		return nil, bad("body", "JSON nested too deeply")
	}
	var ev stripe.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, bad("body", "not a Stripe event: "+clipErr(err))
	}
	switch {
	case ev.ID == "" || len(ev.ID) > 255 || !strings.HasPrefix(ev.ID, "evt_"):
		return nil, bad("id", "must be a Stripe event id (evt_...)")
	case ev.Type == "":
		return nil, bad("type", "missing")
	case ev.APIVersion != stripe.APIVersion:
		return nil, bad("api_version", "must be "+stripe.APIVersion+" (the endpoint's pinned version)")
	case ev.Livemode != h.cfg.Livemode:
		return nil, bad("livemode", "does not match this endpoint's mode")
	case ev.Created <= 0:
		return nil, bad("created", "missing")
	case handled(ev.Type) && (ev.Data == nil || len(ev.Data.Raw) == 0 || ev.Data.Raw[0] != '{'):
		return nil, bad("data.object", "missing")
	}
	return &ev, nil
}

func clipErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}
