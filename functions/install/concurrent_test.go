package main

import (
	"net/http"
	"sync"
	"testing"
)

// 1,000 concurrent duplicate install requests for one user and integration agree on one
// attempt (one install.requested); then 1,000 concurrent callbacks, spread over several codes
// the identity server issued for that attempt's state, give one install and one
// install.completed: the state is consumed once and the install row is unique.
func TestConcurrentDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 requests")
	}
	b := setupInstall(t)
	in := b.integration(t, "ticker", listingOpts{published: true})
	alice := b.userToken(t, "alice")
	const n = 1000

	var wg sync.WaitGroup
	results := make([]StartResponse, n)
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			st, out, _ := b.do(t, "POST", "/v1/installs", alice, map[string]any{"integration": "ticker"})
			statuses[i] = st
			if st < 300 {
				results[i] = decodeStart(t, out)
			}
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		switch {
		case statuses[i] == http.StatusCreated:
			created++
		case statuses[i] != http.StatusOK:
			t.Fatalf("request %d: %d", i, statuses[i])
		}
		if results[i].ConsentURL != results[0].ConsentURL || results[i].PendingInstallID != results[0].PendingInstallID {
			t.Fatalf("request %d got another attempt: %+v vs %+v", i, results[i], results[0])
		}
	}
	if s := b.state(t, in); created != 1 || s.Requested != 1 {
		t.Fatalf("created %d, state %+v", created, s)
	}

	// Several consents on the same page (the user reloading, several tabs): codes that share
	// the state.
	var callbacks []string
	for range 5 {
		callbacks = append(callbacks, b.consent(t, results[0].ConsentURL, "alice", true))
	}
	outcomes := make([]string, n)
	for i := range n {
		wg.Go(func() {
			q := b.callbackAt(t, callbacks[i%len(callbacks)])
			outcomes[i] = q.Get("installed") + "|" + q.Get("install_error")
		})
	}
	wg.Wait()
	counts := map[string]int{}
	for _, o := range outcomes {
		counts[o]++
	}
	if counts["ticker|"] != 1 || counts["ticker|"]+counts["|"+ReasonStateUsed]+counts["|"+ReasonUnknownState] != n {
		t.Fatalf("callback outcomes: %v", counts)
	}
	if s := b.state(t, in); s != (state{Installs: 1, Tokens: 1, Completed: 1, Requested: 1, InstallCount: 1}) {
		t.Fatalf("after the callbacks: %+v", s)
	}
}
