package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// maxJWKSBytes bounds the JWKS response body.
const maxJWKSBytes = 1 << 20

// fetchTimeout bounds one JWKS request; it is detached from the caller's
// context because every waiting caller shares the result.
const fetchTimeout = 10 * time.Second

// keySet is an oidc.KeySet over a remote JWKS that refreshes at most once per
// minInterval, whatever the number of unknown key ids presented.
type keySet struct {
	url         string
	client      *http.Client
	algs        []jose.SignatureAlgorithm
	minInterval time.Duration
	now         func() time.Time

	group singleflight.Group

	mu          sync.RWMutex
	keys        map[string][]jose.JSONWebKey // by kid ("" for keys without one)
	lastAttempt time.Time
	loaded      bool // at least one fetch succeeded
}

// errHolderKey carries a *error through go-oidc, which flattens the errors
// of a key set into strings, so Verify can still report a typed reason.
type errHolderKey struct{}

func newKeySet(url string, client *http.Client, algs []jose.SignatureAlgorithm, minInterval time.Duration, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, algs: algs, minInterval: minInterval, now: now}
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, err := k.verify(ctx, raw)
	if err != nil {
		if h, ok := ctx.Value(errHolderKey{}).(*error); ok {
			*h = err
		}
	}
	return payload, err
}

func (k *keySet) verify(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", ErrMalformed)
	}
	hdr := jws.Signatures[0].Protected
	keys, err := k.lookup(ctx, hdr.KeyID)
	if err != nil {
		return nil, err
	}
	for _, key := range keys {
		if key.Algorithm != "" && key.Algorithm != hdr.Algorithm {
			continue
		}
		if payload, err := jws.Verify(key.Key); err == nil {
			return payload, nil
		}
	}
	return nil, ErrSignature
}

// lookup returns the keys for kid, refreshing the set when kid is unknown and
// the rate limit allows.
func (k *keySet) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if keys, ok := k.cached(kid); ok {
		return keys, nil
	}
	ch := k.group.DoChan("jwks", func() (any, error) {
		if !k.due() {
			return nil, nil
		}
		return nil, k.refresh()
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrJWKSUnavailable, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			// Keys fetched earlier still verify tokens signed with them.
			if keys, ok := k.cached(kid); ok {
				return keys, nil
			}
			return nil, res.Err
		}
	}
	if keys, ok := k.cached(kid); ok {
		return keys, nil
	}
	if kid == "" {
		return nil, fmt.Errorf("%w: token has no kid and no key without kid is published", ErrUnknownKey)
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, truncate(kid, 64))
}

func (k *keySet) cached(kid string) ([]jose.JSONWebKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if kid == "" {
		// A token without kid may be verified by any published key.
		var all []jose.JSONWebKey
		for _, ks := range k.keys {
			all = append(all, ks...)
		}
		return all, len(all) > 0
	}
	keys, ok := k.keys[kid]
	return keys, ok
}

// due reports whether a fetch may start now and, if so, records the attempt.
// Before the first successful fetch the interval is at most one second, so a
// cold start during an identity server blip recovers quickly.
func (k *keySet) due() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	interval := k.minInterval
	if !k.loaded && interval > time.Second {
		interval = time.Second
	}
	now := k.now()
	if !k.lastAttempt.IsZero() && now.Sub(k.lastAttempt) < interval {
		return false
	}
	k.lastAttempt = now
	return true
}

func (k *keySet) refresh() error {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJWKSUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJWKSUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%w: GET %s: status %d", ErrJWKSUnavailable, k.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("%w: reading %s: %v", ErrJWKSUnavailable, k.url, err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("%w: %s larger than %d bytes", ErrJWKSUnavailable, k.url, maxJWKSBytes)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("%w: decoding %s: %v", ErrJWKSUnavailable, k.url, err)
	}
	keys := make(map[string][]jose.JSONWebKey, len(set.Keys))
	for _, key := range set.Keys {
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		// Only the public half is ever used, even if a private key leaked
		// into the document.
		pub := key.Public()
		if !pub.Valid() {
			continue
		}
		keys[key.KeyID] = append(keys[key.KeyID], pub)
	}
	k.mu.Lock()
	k.keys = keys
	k.loaded = true
	k.mu.Unlock()
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
