package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCache remembers tokens that passed every check, so a token presented again (a user's
// access token is typically reused for every request of its hour-long life) costs a hash and a
// map lookup instead of a signature verification. Only successes are cached; an entry is used
// only while the token is unexpired (now < exp), for at most ttl after it was verified, and only
// while the key set is still the generation that verified it: any change of the published keys
// (a key removed, or replaced under the same kid) makes every entry a miss, so a cached token
// is never accepted on a key a fresh verification would refuse. Scopes are still checked per
// route on the cached principal.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]cacheEntry
	max     int
	ttl     time.Duration
}

type cacheEntry struct {
	p        Principal
	verified time.Time
	gen      uint64 // key set generation that verified the signature
}

func newVerifiedCache(max int, ttl time.Duration) *verifiedCache {
	if max <= 0 || ttl <= 0 {
		return nil
	}
	return &verifiedCache{entries: make(map[[sha256.Size]byte]cacheEntry), max: max, ttl: ttl}
}

// get returns the principal remembered for key if it is still valid at now
// and was verified by key set generation gen.
func (c *verifiedCache) get(key [sha256.Size]byte, now time.Time, gen uint64) (*Principal, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && (e.gen != gen || !now.Before(e.p.ExpiresAt) || now.Sub(e.verified) >= c.ttl || now.Before(e.verified)) {
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

func (c *verifiedCache) put(key [sha256.Size]byte, p *Principal, now time.Time, gen uint64) {
	if c == nil || !now.Before(p.ExpiresAt) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Drop expired entries; if the cache is still full, drop an arbitrary half (map order
		// is random), which keeps the cost amortized and the memory bounded.
		for k, e := range c.entries {
			if e.gen != gen || !now.Before(e.p.ExpiresAt) || now.Sub(e.verified) >= c.ttl {
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
	c.entries[key] = cacheEntry{p: cp, verified: now, gen: gen}
}
