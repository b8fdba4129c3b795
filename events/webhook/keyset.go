package webhook

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Key statuses in a KeySet.
const (
	// StatusCurrent is the key the platform signs with first (the first configured).
	StatusCurrent = "current"
	// StatusActive keys sign too (a key being rotated in or out).
	StatusActive = "active"
	// StatusRetired keys no longer sign; they are published so a delivery signed shortly
	// before their retirement still verifies, and a verifier may drop them.
	StatusRetired = "retired"
)

// MaxKeySetBytes bounds a key set document a verifier reads.
const MaxKeySetBytes = 64 << 10

// KeySet is the published key set (GET /v1/lifecycle/keys):
//
//	{"keys":[{"kid":"2026-09","alg":"ed25519","status":"current","public_key":"whpk_..."}]}
type KeySet struct {
	Keys []PublishedKey `json:"keys"`
}

// PublishedKey is one public key of a KeySet.
type PublishedKey struct {
	ID        string `json:"kid"`
	Algorithm string `json:"alg"`    // Algorithm
	Status    string `json:"status"` // StatusCurrent, StatusActive, StatusRetired
	PublicKey string `json:"public_key"`
}

// EncodePublicKey serializes k as Standard Webhooks does: "whpk_" + standard base64.
func EncodePublicKey(k ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(k)
}

// NewKeySet publishes signing (first current, the others active) and retired keys.
func NewKeySet(signing []PrivateKey, retired []PublicKey) KeySet {
	ks := KeySet{Keys: []PublishedKey{}}
	for i, k := range signing {
		status := StatusActive
		if i == 0 {
			status = StatusCurrent
		}
		ks.Keys = append(ks.Keys, PublishedKey{ID: k.ID, Algorithm: Algorithm, Status: status,
			PublicKey: EncodePublicKey(k.Public().Key)})
	}
	for _, k := range retired {
		ks.Keys = append(ks.Keys, PublishedKey{ID: k.ID, Algorithm: Algorithm, Status: StatusRetired,
			PublicKey: EncodePublicKey(k.Key)})
	}
	return ks
}

// PublicKeys decodes the key set's ed25519 keys (every status), refusing a key that is not
// well formed, with its position and id.
func (ks KeySet) PublicKeys() ([]PublicKey, error) {
	out := make([]PublicKey, 0, len(ks.Keys))
	for i, k := range ks.Keys {
		if k.Algorithm != Algorithm {
			return nil, fmt.Errorf("webhook: key set: keys[%d] (%q): alg %q, want %q", i, clipText(k.ID), clipText(k.Algorithm), Algorithm)
		}
		if !validKeyID(k.ID) {
			return nil, fmt.Errorf("webhook: key set: keys[%d]: kid %q is not a key id", i, clipText(k.ID))
		}
		b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(k.PublicKey, PublicKeyPrefix))
		if err != nil || !strings.HasPrefix(k.PublicKey, PublicKeyPrefix) || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("webhook: key set: keys[%d] (%s): public_key must be %q + base64 of %d bytes", i, k.ID, PublicKeyPrefix, ed25519.PublicKeySize)
		}
		out = append(out, PublicKey{ID: k.ID, Key: ed25519.PublicKey(b)})
	}
	return out, nil
}

// ParseKeySet decodes a published key set document and its keys.
func ParseKeySet(data []byte) ([]PublicKey, error) {
	if len(data) > MaxKeySetBytes {
		return nil, fmt.Errorf("webhook: key set exceeds %d bytes", MaxKeySetBytes)
	}
	var ks KeySet
	if err := json.Unmarshal(data, &ks); err != nil {
		return nil, fmt.Errorf("webhook: key set: %w", err)
	}
	return ks.PublicKeys()
}

// ParsePublicKeys parses comma-separated "kid:key" entries, key being "whpk_" (optional) +
// the standard base64 of a 32-byte ed25519 public key.
func ParsePublicKeys(s string) ([]PublicKey, error) {
	var out []PublicKey
	seen := map[string]bool{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, raw, ok := strings.Cut(entry, ":")
		id = strings.TrimSpace(id)
		if !ok || !validKeyID(id) || seen[id] {
			return nil, fmt.Errorf("webhook: public key %d: want kid:whpk_base64 with a unique kid of 1-64 letters, digits, '.', '_' or '-'", i+1)
		}
		seen[id] = true
		b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(strings.TrimSpace(raw), PublicKeyPrefix))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("webhook: public key %d (%s): not the base64 of %d bytes", i+1, id, ed25519.PublicKeySize)
		}
		out = append(out, PublicKey{ID: id, Key: ed25519.PublicKey(b)})
	}
	return out, nil
}
