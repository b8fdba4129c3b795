package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/runtime"
)

// A request that finds every slot taken and no room to wait is answered 503 with Retry-After
// at once; one that may wait is answered 503 when its wait is over; once a slot is free,
// requests are served again.
func TestShedding(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "crypto-ticker", published: true})
	for _, tc := range []struct {
		name       string
		maxWaiting int
		wait       time.Duration
	}{{"no room to wait", 0, time.Hour}, {"wait over", 4, time.Millisecond}} {
		sh := NewShedder(1, tc.maxWaiting, tc.wait, 2*time.Second)
		h, err := runtime.NewHandler(runtime.Function{Name: "catalog", HTTP: Routes(&Store{pool: b.pool}, nil, sh)},
			runtime.Deps{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		sb := bundle{srv: srv, pool: b.pool}
		if !sh.acquire(nil) { // hold the only slot
			t.Fatal("the first acquire failed")
		}
		for _, path := range []string{"/v1/integrations", "/v1/integrations/crypto-ticker", "/v1/integrations/crypto-ticker/reviews"} {
			code, body, hdr := sb.get(t, path)
			var p httpx.Problem
			if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "2" || hdr.Get("Content-Type") != "application/problem+json" ||
				json.Unmarshal(body, &p) != nil || p.Status != 503 || p.Detail == "" {
				t.Errorf("%s: %s while saturated = %d retry-after %q %s", tc.name, path, code, hdr.Get("Retry-After"), body)
			}
		}
		if got := sh.Shed(); got != 3 {
			t.Errorf("%s: Shed() = %d, want 3", tc.name, got)
		}
		sh.release()
		if code, body, _ := sb.get(t, "/v1/integrations"); code != http.StatusOK {
			t.Errorf("%s: after release = %d %s", tc.name, code, body)
		}
	}
}

// A waiter gets the slot when it is released within its wait, whichever comes first.
func TestShedderWaiterGetsReleasedSlot(t *testing.T) {
	t.Parallel()
	sh := NewShedder(1, 1, time.Hour, time.Second)
	if !sh.acquire(nil) {
		t.Fatal("first acquire")
	}
	got := make(chan bool)
	go func() { got <- sh.acquire(nil) }()
	sh.release()
	if !<-got {
		t.Fatal("the waiter did not get the released slot")
	}
	// A waiter whose request ends gives up.
	done := make(chan struct{})
	go func() { got <- sh.acquire(done) }()
	close(done)
	if <-got {
		t.Fatal("a cancelled waiter got a slot that was never released")
	}
}
