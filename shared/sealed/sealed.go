// Package sealed encrypts small secrets for storage in the database: AES-256-GCM under a key
// chosen by key id, so keys can be rotated without re-encrypting every row at once.
//
// The keys come from one setting, CLIENT_SECRET_KEYS: comma-separated `<kid>:<base64 of 32
// bytes>` entries. The first key seals; every listed key opens, so a rotation is: put the new
// key first and keep the old one after it until every row has been sealed again (the registry
// re-seals a secret whenever it rotates it), then drop the old key.
//
// A sealed value is text, `<kid>.<base64url(nonce || ciphertext || tag)>`, so the key that
// opens it is named by the value itself. Every seal takes additional data (AAD) that binds the
// ciphertext to where it is stored, for example the integration's id: a ciphertext copied to
// another row does not open there.
//
// Key material is never part of an error, a log line or a String method: a Keys value prints
// only its key ids.
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// MaxPlaintext bounds what Seal accepts; client secrets are far shorter.
const MaxPlaintext = 2048

// Errors of Open. None carries key material or plaintext.
var (
	// ErrUnknownKey: the value names a key id that is not configured (dropped too early, or
	// sealed by another environment).
	ErrUnknownKey = errors.New("sealed: sealed with a key id that is not configured")
	// ErrMalformed: the value is not of the form <kid>.<base64url>.
	ErrMalformed = errors.New("sealed: not a sealed value")
	// ErrOpen: authentication failed: the value was changed, or the additional data (the row it
	// is bound to) differs.
	ErrOpen = errors.New("sealed: cannot open: tampered with, or bound to other data")
)

type key struct {
	id   string
	aead cipher.AEAD
}

// Keys holds the configured keys. The zero value has none; use Parse.
type Keys struct {
	keys []key // keys[0] seals
}

// String names the key ids only.
func (k *Keys) String() string {
	ids := make([]string, len(k.keys))
	for i, kk := range k.keys {
		ids[i] = kk.id
	}
	return "sealed.Keys[" + strings.Join(ids, ",") + "]"
}

// GoString is String, so %#v prints no key material either.
func (k *Keys) GoString() string { return k.String() }

// SealingKeyID is the id of the key Seal uses.
func (k *Keys) SealingKeyID() string {
	if len(k.keys) == 0 {
		return ""
	}
	return k.keys[0].id
}

// validKID: 1 to 32 of [A-Za-z0-9_-]; no '.', which separates it from the ciphertext.
func validKID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Parse reads a CLIENT_SECRET_KEYS value. Each problem names the entry by position and key id
// (never the key): an empty list, an entry without ':', a bad key id, a key that is not
// standard base64 of exactly 32 bytes, a key id listed twice.
func Parse(setting string) (*Keys, error) {
	setting = strings.TrimSpace(setting)
	if setting == "" {
		return nil, errors.New("sealed: no keys: want <kid>:<base64 of 32 bytes>[,...]")
	}
	var errs []error
	out := &Keys{}
	seen := map[string]bool{}
	for i, entry := range strings.Split(setting, ",") {
		entry = strings.TrimSpace(entry)
		kid, b64, ok := strings.Cut(entry, ":")
		if !ok {
			errs = append(errs, fmt.Errorf("sealed: entry %d: want <kid>:<base64 of 32 bytes>", i+1))
			continue
		}
		if !validKID(kid) {
			errs = append(errs, fmt.Errorf("sealed: entry %d: key id must be 1-32 of A-Z a-z 0-9 _ -", i+1))
			continue
		}
		if seen[kid] {
			errs = append(errs, fmt.Errorf("sealed: entry %d: key id %q listed twice", i+1, kid))
			continue
		}
		seen[kid] = true
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil {
			errs = append(errs, fmt.Errorf("sealed: key %q: not standard base64", kid))
			continue
		}
		if len(raw) != KeySize {
			errs = append(errs, fmt.Errorf("sealed: key %q: %d bytes, want %d", kid, len(raw), KeySize))
			continue
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("sealed: key %q: %v", kid, err))
			continue
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			errs = append(errs, fmt.Errorf("sealed: key %q: %v", kid, err))
			continue
		}
		out.keys = append(out.keys, key{id: kid, aead: aead})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Seal encrypts plaintext under the first key, bound to aad (e.g. the row's id).
func (k *Keys) Seal(plaintext, aad []byte) (string, error) {
	if k == nil || len(k.keys) == 0 {
		return "", errors.New("sealed: no keys configured")
	}
	if len(plaintext) > MaxPlaintext {
		return "", fmt.Errorf("sealed: plaintext over %d bytes", MaxPlaintext)
	}
	sk := k.keys[0]
	nonce := make([]byte, sk.aead.NonceSize(), sk.aead.NonceSize()+len(plaintext)+sk.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("sealed: nonce: %w", err)
	}
	out := sk.aead.Seal(nonce, nonce, plaintext, sealAAD(sk.id, aad))
	return sk.id + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by Seal with the same aad, with whichever configured key its id
// names. Errors: ErrMalformed, ErrUnknownKey, ErrOpen.
func (k *Keys) Open(sealed string, aad []byte) ([]byte, error) {
	kid, b64, ok := strings.Cut(sealed, ".")
	if !ok || !validKID(kid) || len(b64) > 2*MaxPlaintext+128 {
		return nil, ErrMalformed
	}
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return nil, ErrMalformed
	}
	if k == nil {
		return nil, ErrUnknownKey
	}
	for _, kk := range k.keys {
		if kk.id != kid {
			continue
		}
		ns := kk.aead.NonceSize()
		if len(raw) < ns+kk.aead.Overhead() {
			return nil, ErrMalformed
		}
		pt, err := kk.aead.Open(nil, raw[:ns], raw[ns:], sealAAD(kid, aad))
		if err != nil {
			return nil, ErrOpen
		}
		return pt, nil
	}
	return nil, ErrUnknownKey
}

// NeedsReseal reports whether sealed was made with a key other than the sealing key, so a
// caller that holds the plaintext anyway may seal it again with the current key.
func (k *Keys) NeedsReseal(sealed string) bool {
	kid, _, _ := strings.Cut(sealed, ".")
	return kid != k.SealingKeyID()
}

// sealAAD binds the key id too, so the id in a value cannot be swapped for another key's.
func sealAAD(kid string, aad []byte) []byte {
	b := make([]byte, 0, len(kid)+1+len(aad))
	b = append(b, kid...)
	b = append(b, 0)
	return append(b, aad...)
}
