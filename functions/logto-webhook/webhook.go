package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/logging"
)

// SignatureHeader carries hex(HMAC-SHA256(signing key, raw body)).
const SignatureHeader = "logto-signature-sha-256"

// Path is where Logto posts its webhooks.
const Path = "/v1/webhooks/logto"

// Handler receives Logto webhooks.
type Handler struct {
	cfg      Config
	keys     [][]byte
	platform map[string]bool
	pool     *pgxpool.Pool
	log      *slog.Logger
	now      func() time.Time
}

// New returns a Handler. now is the clock stamped on outbox events (nil: time.Now).
func New(cfg Config, pool *pgxpool.Pool, log *slog.Logger, now func() time.Time) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if pool == nil {
		return nil, errors.New("logto-webhook: a database pool is required")
	}
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	h := &Handler{cfg: cfg, pool: pool, log: log, now: now, platform: map[string]bool{}}
	for _, k := range cfg.SigningKeys {
		h.keys = append(h.keys, []byte(k))
	}
	for _, r := range cfg.PlatformRoles {
		h.platform[r] = true
	}
	return h, nil
}

// Routes serves POST /v1/webhooks/logto.
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
	if reason := verify(h.keys, body, r.Header.Get(SignatureHeader)); reason != "" {
		log.Warn("logto webhook rejected", slog.String("reason", reason), slog.Int("bytes", len(body)))
		return httpx.Unauthorized("missing or invalid " + SignatureHeader + " header")
	}
	if p := checkContentType(r.Header.Get("Content-Type")); p != nil {
		return p
	}
	ev, err := parseEvent(body)
	if err != nil {
		return err
	}
	log = log.With(slog.String("hook_id", ev.HookID), slog.String("event", ev.Event))
	if !ev.handled() {
		log.Debug("logto webhook ignored")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	sum := sha256.Sum256(body)
	res, err := h.apply(r.Context(), log, ev, hex.EncodeToString(sum[:]))
	if err != nil {
		if r.Context().Err() != nil {
			return err
		}
		return httpx.Unavailable("the event could not be stored; retry later", err)
	}
	log.Info("logto webhook applied", slog.Bool("duplicate", res.duplicate), slog.Int("events", res.events),
		slog.Int("ignored", res.ignored))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// verify checks the signature header against every key in constant time. It returns "" when
// one matches, else the reason (for the log, never for the client).
func verify(keys [][]byte, body []byte, header string) string {
	header = strings.TrimSpace(header)
	if header == "" {
		return "signature header missing"
	}
	if len(header) != 2*sha256.Size {
		return "signature header is not 64 hex digits"
	}
	got, err := hex.DecodeString(header)
	if err != nil {
		return "signature header is not hex"
	}
	ok := false
	for _, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write(body)
		// Check every key (no early exit), so timing does not tell which key matched.
		if hmac.Equal(m.Sum(nil), got) {
			ok = true
		}
	}
	if !ok {
		return "signature does not match"
	}
	return ""
}

func checkContentType(ct string) *httpx.Problem {
	field := func(reason string) *httpx.Problem {
		return httpx.BadRequest("Content-Type must be application/json", httpx.FieldError{Field: "Content-Type", Reason: reason})
	}
	if ct == "" {
		return field("missing")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return field("malformed media type")
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		if len(mt) > 64 {
			mt = mt[:64]
		}
		return field(fmt.Sprintf("unsupported media type %q", mt))
	}
	return nil
}

type result struct {
	duplicate bool
	events    int // outbox events written
	ignored   int // changes that lost against newer state (see doc.go, Ordering)
}

// apply stores the effects of ev and its outbox events in one transaction, claiming the
// delivery (identified by the body hash) first.
func (h *Handler) apply(ctx context.Context, log *slog.Logger, ev *hookEvent, bodyHash string) (result, error) {
	var res result
	err := pgx.BeginFunc(ctx, h.pool, func(tx pgx.Tx) error {
		res = result{}
		w := &writer{h: h, tx: tx, ev: ev, hash: bodyHash, log: log}
		claimed, err := w.claim(ctx)
		if err != nil {
			return err
		}
		if !claimed {
			res.duplicate = true
			return nil
		}
		switch ev.Event {
		case eventUserDeleted:
			err = w.userDeleted(ctx)
		case eventUserRolesUpdated:
			err = w.userRolesUpdated(ctx)
		case eventRoleDeleted:
			err = w.roleDeleted(ctx)
		}
		res.events, res.ignored = w.events, w.ignored
		return err
	})
	return res, err
}
