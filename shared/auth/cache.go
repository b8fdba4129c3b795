package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCache remembers tokens that passed every check, so a token presented again (a user's
// access token is typically reused for every request of its hour-long life) costs a hash and a
// map lookup instead of a signature verification. Only successes are cached; an entry is used
// only while the token is unexpired and for at most ttl after it was verified, which bounds how
// long a token signed with a key since withdrawn from the JWKS stays accepted. Scopes are still
// checked per route on the cached principal.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]cacheEntry
	max     int
	ttl     time.Duration
}

type cacheEntry struct {
	p        Principal
	verified time.Time
}

func newVerifiedCache(max int, ttl time.Duration) *verifiedCache {
	if max <= 0 || ttl <= 0 {
		return nil
	}
	return &verifiedCache{entries: make(map[[sha256.Size]byte]cacheEntry), max: max, ttl: ttl}
}

func (c *verifiedCache) get(key [sha256.Size]byte, now time.Time) (*Principal, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && (!now.Before(e.p.ExpiresAt) || now.Sub(e.verified) >= c.ttl || now.Before(e.verified)) {
		delete(c.entries, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	p := e.p
	p.Scopes = append([]string(nil), e.p.Scopes...)
	p.Audience = append([]string(nil), e.p.Audience...)
	return &p, true
}

func (c *verifiedCache) put(key [sha256.Size]byte, p *Principal, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Drop expired entries; if the cache is still full, drop an arbitrary half (map order
		// is random), which keeps the cost amortized and the memory bounded.
		for k, e := range c.entries {
			if !now.Before(e.p.ExpiresAt) || now.Sub(e.verified) >= c.ttl {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max/2 {
				break
			}
			delete(c.entries, k)
		}
	}
	cp := *p
	cp.Scopes = append([]string(nil), p.Scopes...)
	cp.Audience = append([]string(nil), p.Audience...)
	c.entries[key] = cacheEntry{p: cp, verified: now}
}
