package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/myscrollr/connect/shared/clip"
)

// maxJWKSBytes bounds the JWKS and discovery response bodies.
const maxJWKSBytes = 1 << 20

// fetchTimeout bounds one discovery or JWKS request; it is detached from the
// caller's context because every waiting caller shares the result.
const fetchTimeout = 10 * time.Second

// coldInterval is the longest the rate limit holds back a fetch while no key
// set has been loaded yet, so a cold start during an identity server blip
// recovers quickly.
const coldInterval = time.Second

// keySet is an oidc.KeySet over a remote JWKS. It fetches at most once per
// minInterval, whatever the number of unknown key ids or bad signatures
// presented, and concurrent callers share one fetch. A fetched set is trusted
// until its refresh time (the response's Cache-Control max-age, clamped to
// [minInterval, maxAge]); past it the next use refreshes first, and if that
// fails the old keys keep verifying for grace more, then nothing does. The
// JWKS URL is discovered lazily: until discovery succeeds every fetch attempt
// retries it and no key is trusted.
type keySet struct {
	issuer      string
	client      *http.Client
	algs        []jose.SignatureAlgorithm
	minInterval time.Duration
	maxAge      time.Duration
	grace       time.Duration
	now         func() time.Time
	log         *slog.Logger

	group singleflight.Group

	mu          sync.RWMutex
	url         string                       // "" until discovery succeeds
	keys        map[string][]jose.JSONWebKey // by kid ("" for keys without one)
	digest      [sha256.Size]byte            // of the JWKS body the keys came from
	gen         uint64                       // increments whenever the published keys change
	fetched     time.Time                    // last successful fetch
	expires     time.Time                    // refresh time of the keys
	lastAttempt time.Time
	fetching    bool  // a fetch is in flight: callers join it rather than skip it
	lastErr     error // of the last fetch attempt; nil after a success
	loaded      bool  // at least one fetch succeeded
}

// verifyNote carries what the key set learned back through go-oidc, which
// flattens the errors of a key set into strings: the typed reason of a
// failure, and the generation of the key set that verified the signature.
type verifyNote struct {
	err error
	gen uint64
}

type verifyNoteKey struct{}

func newKeySet(cfg Config, client *http.Client, algs []jose.SignatureAlgorithm) *keySet {
	return &keySet{
		issuer: cfg.Issuer, url: cfg.JWKSURL, client: client, algs: algs,
		minInterval: cfg.MinRefreshInterval, maxAge: cfg.JWKSMaxAge, grace: cfg.JWKSGrace,
		now: cfg.Clock, log: cfg.Logger,
	}
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, gen, err := k.verify(ctx, raw)
	if n, ok := ctx.Value(verifyNoteKey{}).(*verifyNote); ok {
		n.err, n.gen = err, gen
	}
	return payload, err
}

func (k *keySet) verify(ctx context.Context, raw string) ([]byte, uint64, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, 0, fmt.Errorf("%w: want exactly one signature", ErrMalformed)
	}
	hdr := jws.Signatures[0].Protected
	v, err := k.lookup(ctx, hdr.KeyID)
	if err != nil {
		return nil, 0, err
	}
	if payload, ok := tryKeys(jws, hdr.Algorithm, v.keys); ok {
		return payload, v.gen, nil
	}
	// The kid is known but its key does not verify: the identity provider may
	// have replaced the key under the same kid. Refresh (rate-limited exactly
	// like an unknown kid, shared by concurrent callers) and retry once if the
	// published keys changed meanwhile.
	if k.refreshAllowed(k.now()) {
		if err := k.refresh(ctx); err != nil {
			return nil, 0, err
		}
	}
	again := k.view(hdr.KeyID, k.now())
	if again.gen == v.gen {
		return nil, 0, ErrSignature
	}
	if err := k.check(again, hdr.KeyID); err != nil {
		return nil, 0, err
	}
	if payload, ok := tryKeys(jws, hdr.Algorithm, again.keys); ok {
		return payload, again.gen, nil
	}
	return nil, 0, ErrSignature
}

func tryKeys(jws *jose.JSONWebSignature, alg string, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, key := range keys {
		if key.Algorithm != "" && key.Algorithm != alg {
			continue
		}
		if payload, err := jws.Verify(key.Key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// keyView is what one verification sees of the key set at one instant.
type keyView struct {
	keys    []jose.JSONWebKey
	found   bool
	gen     uint64
	loaded  bool
	expired bool // past the refresh time: refresh before use when the rate limit allows
	usable  bool // loaded and not past the refresh time plus the grace
}

func (k *keySet) view(kid string, now time.Time) keyView {
	k.mu.RLock()
	defer k.mu.RUnlock()
	v := k.stateLocked(now)
	if !v.usable {
		return v
	}
	if kid == "" {
		// A token without kid may be verified by any published key.
		for _, ks := range k.keys {
			v.keys = append(v.keys, ks...)
		}
		v.found = len(v.keys) > 0
		return v
	}
	v.keys, v.found = k.keys[kid]
	return v
}

func (k *keySet) stateLocked(now time.Time) keyView {
	return keyView{
		gen:     k.gen,
		loaded:  k.loaded,
		expired: k.loaded && !now.Before(k.expires),
		usable:  k.loaded && now.Before(k.expires.Add(k.grace)),
	}
}

// current returns the generation of the keys a verification would use now,
// refreshing first when they are past their refresh time and the rate limit
// allows, and whether those keys may be used at all. Verify calls it before
// consulting the verified-token cache, so a cached token is never accepted on
// keys a verification would not use.
func (k *keySet) current(ctx context.Context) (gen uint64, usable bool) {
	now := k.now()
	k.mu.RLock()
	v := k.stateLocked(now)
	k.mu.RUnlock()
	if v.expired && k.refreshAllowed(now) {
		if k.refresh(ctx) != nil {
			return 0, false
		}
		now = k.now()
		k.mu.RLock()
		v = k.stateLocked(now)
		k.mu.RUnlock()
	}
	return v.gen, v.usable
}

// lookup returns the keys for kid, refreshing the set first when kid is
// unknown or the set is past its refresh time, and the rate limit allows.
func (k *keySet) lookup(ctx context.Context, kid string) (keyView, error) {
	now := k.now()
	v := k.view(kid, now)
	if (!v.found || v.expired || !v.usable) && k.refreshAllowed(now) {
		if err := k.refresh(ctx); err != nil {
			return keyView{}, err
		}
		v = k.view(kid, k.now())
	}
	return v, k.check(v, kid)
}

func (k *keySet) check(v keyView, kid string) error {
	if !v.usable {
		k.mu.RLock()
		last := k.lastErr
		k.mu.RUnlock()
		switch {
		case last != nil:
			return fmt.Errorf("%w: last fetch: %v", ErrJWKSUnavailable, last)
		case v.loaded:
			return fmt.Errorf("%w: the key set is past its refresh time and no refresh succeeded", ErrJWKSUnavailable)
		default:
			return fmt.Errorf("%w: no key set fetched yet", ErrJWKSUnavailable)
		}
	}
	if !v.found {
		if kid == "" {
			return fmt.Errorf("%w: token has no kid and no key without kid is published", ErrUnknownKey)
		}
		return fmt.Errorf("%w: kid %q", ErrUnknownKey, clip.Ellipsis(kid, 64))
	}
	return nil
}

// interval is the least time between two fetch attempts.
func (k *keySet) intervalLocked() time.Duration {
	if !k.loaded && k.minInterval > coldInterval {
		return coldInterval
	}
	return k.minInterval
}

// refreshAllowed reports, without recording anything, whether a fetch is in
// flight or the rate limit would let one start at now. It keeps the common
// case (limit reached, nothing in flight) from entering the singleflight group.
func (k *keySet) refreshAllowed(now time.Time) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.fetching || k.lastAttempt.IsZero() || now.Sub(k.lastAttempt) >= k.intervalLocked()
}

// due reports whether a fetch may start now and, if so, records the attempt.
func (k *keySet) due() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if !k.lastAttempt.IsZero() && now.Sub(k.lastAttempt) < k.intervalLocked() {
		return false
	}
	k.lastAttempt = now
	k.fetching = true
	return true
}

// refresh fetches the key set if the rate limit allows, sharing one fetch
// among concurrent callers, and waits for it. It returns an error only when
// ctx ends first; the outcome of the fetch is recorded in the key set (a
// failure in lastErr, and logged).
func (k *keySet) refresh(ctx context.Context) error {
	ch := k.group.DoChan("jwks", func() (any, error) {
		if !k.due() {
			return nil, nil
		}
		return nil, k.fetchKeys()
	})
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrJWKSUnavailable, ctx.Err())
	case <-ch:
		return nil
	}
}

// fetchKeys discovers the JWKS URL if it is not known yet, then fetches and
// installs the key set.
func (k *keySet) fetchKeys() (err error) {
	defer func() {
		if err == nil {
			return
		}
		k.mu.Lock()
		k.fetching = false
		k.lastErr = err
		fetched, until, loaded := k.fetched, k.expires.Add(k.grace), k.loaded
		k.mu.Unlock()
		if loaded && k.now().Before(until) {
			k.log.Warn("auth: JWKS refresh failed; keeping the keys fetched earlier for a bounded grace",
				"issuer", k.issuer, "fetched", fetched, "trusted_until", until, "error", err)
		} else {
			k.log.Warn("auth: JWKS refresh failed; tokens are refused until a fetch succeeds",
				"issuer", k.issuer, "error", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	u := k.jwksURL()
	if u == "" {
		if u, err = k.discover(ctx); err != nil {
			return err
		}
		k.mu.Lock()
		k.url = u
		k.mu.Unlock()
		k.log.Info("auth: discovered the JWKS URL", "issuer", k.issuer, "jwks_url", u)
	}
	body, hdr, err := k.get(ctx, u)
	if err != nil {
		return err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("%w: decoding %s: %v", ErrJWKSUnavailable, u, err)
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
	digest := sha256.Sum256(body)
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.loaded || digest != k.digest {
		k.gen++
		k.keys, k.digest = keys, digest
	}
	k.loaded = true
	k.fetched = now
	k.expires = now.Add(freshness(hdr, k.minInterval, k.maxAge))
	k.lastErr = nil
	k.fetching = false
	return nil
}

func (k *keySet) jwksURL() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.url
}

// discover reads the issuer's discovery document (OpenID Connect Discovery
// 1.0 §4) and returns its jwks_uri. The document must name our issuer
// exactly (§4.3) and jwks_uri must be an http(s) URL, https when the issuer
// is.
func (k *keySet) discover(ctx context.Context) (string, error) {
	body, _, err := k.get(ctx, k.issuer+"/.well-known/openid-configuration")
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var d struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return "", fmt.Errorf("%w: discovery: decoding: %v", ErrJWKSUnavailable, err)
	}
	if d.Issuer != k.issuer {
		return "", fmt.Errorf("%w: discovery: issuer %q, want %q", ErrJWKSUnavailable, clip.Ellipsis(d.Issuer, 128), k.issuer)
	}
	if err := checkJWKSURL(d.JWKSURI, k.issuer); err != nil {
		return "", fmt.Errorf("%w: discovery: jwks_uri: %v", ErrJWKSUnavailable, err)
	}
	return d.JWKSURI, nil
}

// checkJWKSURL accepts an absolute http(s) URL with a host and no user
// information; when the issuer is https, the JWKS must be too, so a
// discovery document cannot downgrade the keys to plain HTTP.
func checkJWKSURL(raw, issuer string) error {
	if raw == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", clip.Ellipsis(raw, 128))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q is not an http(s) URL", clip.Ellipsis(raw, 128))
	}
	if strings.HasPrefix(issuer, "https://") && u.Scheme != "https" {
		return fmt.Errorf("%q is not https like the issuer", clip.Ellipsis(raw, 128))
	}
	return nil
}

// get fetches u with a bounded body.
func (k *keySet) get(ctx context.Context, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrJWKSUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrJWKSUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("%w: GET %s: status %d", ErrJWKSUnavailable, u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading %s: %v", ErrJWKSUnavailable, u, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, nil, fmt.Errorf("%w: %s larger than %d bytes", ErrJWKSUnavailable, u, maxJWKSBytes)
	}
	return body, resp.Header, nil
}

// freshness is how long a fetched key set is trusted: the response's
// Cache-Control max-age less its Age (RFC 9111 §4.2), zero for no-store or
// no-cache, maxAge when the response says nothing, always clamped to
// [minInterval, maxAge]: never longer than maxAge, and never shorter than the
// rate limit allows a refresh anyway.
func freshness(h http.Header, minInterval, maxAge time.Duration) time.Duration {
	d := maxAge
	for _, line := range h.Values("Cache-Control") {
		for dir := range strings.SplitSeq(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				d = 0
			case "max-age":
				n, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(val), `"`), 10, 63)
				var ne *strconv.NumError
				switch {
				case err == nil && n < uint64(maxAge/time.Second):
					d = min(d, time.Duration(n)*time.Second)
				case err == nil, errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange):
					// At least maxAge (overflow means "very long", RFC 9111 §1.2.2).
				default:
					// An invalid max-age is ignored.
				}
			}
		}
	}
	if age, err := strconv.ParseUint(strings.TrimSpace(h.Get("Age")), 10, 63); err == nil && d > 0 {
		if age >= uint64(d/time.Second) {
			d = 0
		} else {
			d -= time.Duration(age) * time.Second
		}
	}
	return min(max(d, minInterval), maxAge)
}
