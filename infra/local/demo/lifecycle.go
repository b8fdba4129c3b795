package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/myscrollr/connect/events/webhook"
)

// Lifecycle deliveries, the integration side: a demo integration verifies each delivery with
// only the platform's published public keys (fetched from the keys URL, GET
// /v1/lifecycle/keys behind the front door; SetLifecycleKeysURL), dedupes by webhook-id, and
// keeps what it accepted for GET /lifecycle/received, where a test asks what it got.
//
//	POST /lifecycle/install|uninstall|redact  204 accepted (a repeated webhook-id too: counted, not kept twice)
//	                                          401 problem+json: unsigned, badly signed, too old, or no keys yet
//	GET  /lifecycle/received                  {"received":[{webhook_id, path, type, key_id, deliveries, first_at, event}]}
//
// The key set is fetched on the first delivery and again, at most every keyRefetch, when a
// signature verifies under none of the known keys (a rotation added one).

// keyRefetch is the least time between two fetches of the key set.
const keyRefetch = 10 * time.Second

// maxDelivery bounds a delivery body.
const maxDelivery = 64 << 10

// Received is one lifecycle event a demo integration accepted.
type Received struct {
	WebhookID  string          `json:"webhook_id"`
	Path       string          `json:"path"`
	Type       string          `json:"type"`
	KeyID      string          `json:"key_id"`     // the platform key whose signature verified
	Deliveries int             `json:"deliveries"` // how many times it came (duplicates included)
	FirstAt    time.Time       `json:"first_at"`
	Event      json.RawMessage `json:"event"` // the CloudEvent as delivered
}

// receiver is one demo integration's lifecycle endpoint state.
type receiver struct {
	now     func() time.Time
	client  *http.Client
	refetch time.Duration // least time between two fetches: keyRefetch

	mu       sync.Mutex
	keysURL  string
	keys     []webhook.PublicKey
	fetched  time.Time
	byID     map[string]int // webhook-id -> index in got
	got      []Received
	fetching sync.Mutex // one fetch at a time
}

func newReceiver(now func() time.Time) *receiver {
	return &receiver{now: now, client: &http.Client{Timeout: 5 * time.Second}, refetch: keyRefetch, byID: map[string]int{}}
}

func (rc *receiver) setKeysURL(u string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.keysURL, rc.keys, rc.fetched = u, nil, time.Time{}
}

// publicKeys returns the known keys, fetching them when there are none or when refresh is
// asked and the last fetch is old enough.
func (rc *receiver) publicKeys(ctx context.Context, refresh bool) ([]webhook.PublicKey, error) {
	rc.fetching.Lock()
	defer rc.fetching.Unlock()
	rc.mu.Lock()
	u, keys, fetched := rc.keysURL, rc.keys, rc.fetched
	rc.mu.Unlock()
	if len(keys) > 0 && (!refresh || time.Since(fetched) < rc.refetch) {
		return keys, nil
	}
	if u == "" {
		return keys, errors.New("the platform's keys URL is not set")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return keys, err
	}
	resp, err := rc.client.Do(req)
	if err != nil {
		return keys, fmt.Errorf("fetch the key set: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, webhook.MaxKeySetBytes+1))
	if err != nil || resp.StatusCode != http.StatusOK {
		return keys, fmt.Errorf("fetch the key set: status %d", resp.StatusCode)
	}
	fresh, err := webhook.ParseKeySet(body)
	if err != nil {
		return keys, err
	}
	rc.mu.Lock()
	rc.keys, rc.fetched = fresh, time.Now()
	rc.mu.Unlock()
	return fresh, nil
}

func refuse(w http.ResponseWriter, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusUnauthorized)
	b, _ := json.Marshal(map[string]any{"title": "Unauthorized", "status": 401, "detail": detail})
	_, _ = w.Write(b)
}

// deliver is POST /lifecycle/<verb>.
func (rc *receiver) deliver(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDelivery+1))
	if err != nil || len(body) > maxDelivery {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	if r.Header.Get(webhook.HeaderSignature) == "" {
		refuse(w, "unsigned delivery: webhook-signature is required")
		return
	}
	keys, err := rc.publicKeys(r.Context(), false)
	if err != nil && len(keys) == 0 {
		refuse(w, "cannot verify: "+err.Error())
		return
	}
	v, err := webhook.Verify(r.Header, body, keys, rc.now())
	if errors.Is(err, webhook.ErrNoSignature) {
		if fresh, ferr := rc.publicKeys(r.Context(), true); ferr == nil {
			v, err = webhook.Verify(r.Header, body, fresh, rc.now())
		}
	}
	if err != nil {
		refuse(w, err.Error())
		return
	}
	var ce struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &ce)
	rc.mu.Lock()
	if i, ok := rc.byID[v.ID]; ok {
		rc.got[i].Deliveries++
	} else {
		rc.byID[v.ID] = len(rc.got)
		rc.got = append(rc.got, Received{WebhookID: v.ID, Path: r.URL.Path, Type: ce.Type, KeyID: v.KeyID,
			Deliveries: 1, FirstAt: rc.now().UTC(), Event: json.RawMessage(body)})
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// received is GET /lifecycle/received.
func (rc *receiver) received(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	list := append([]Received{}, rc.got...)
	rc.mu.Unlock()
	writeJSON(w, map[string]any{"received": list})
}

func (rc *receiver) routes(mux *http.ServeMux) {
	for _, verb := range []string{"install", "uninstall", "redact"} {
		mux.HandleFunc("POST /lifecycle/"+verb, rc.deliver)
	}
	mux.HandleFunc("GET /lifecycle/received", rc.received)
}

// SetLifecycleKeysURL sets the platform's key set URL (e.g.
// http://127.0.0.1:8080/v1/lifecycle/keys) every demo integration verifies deliveries with.
// Until it is set, every delivery is refused 401.
func (s *Servers) SetLifecycleKeysURL(u string) {
	for _, rc := range s.receivers {
		rc.setKeysURL(u)
	}
}
