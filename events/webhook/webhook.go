// Package webhook signs and verifies HTTP lifecycle deliveries per Standard Webhooks 1.0 with
// asymmetric (ed25519, "v1a") signatures, as the platform sends them to an integration's
// POST {base_url}/lifecycle/{install|uninstall|redact}. Integration developers `go get` this
// package (it needs only the standard library) to check a delivery with nothing but the
// platform's published public keys.
//
// # The scheme
//
// A delivery carries three headers:
//
//	webhook-id:        the CloudEvent id (the same on every attempt: dedupe on it)
//	webhook-timestamp: the attempt's time, integer Unix seconds
//	webhook-signature: space-separated "v1a,<base64 ed25519 signature>", one per platform key
//
// The signed content is id + "." + timestamp + "." + body, the body exactly as sent: verify
// the raw bytes before parsing them. Every active platform key signs, so during a key
// rotation a delivery carries one signature per key and a verifier that trusts either key
// accepts it. [Verify] accepts a delivery when any v1a signature verifies under any of the
// trusted keys and the timestamp is within [Tolerance] (5 minutes) of the verifier's clock,
// either way; other signature versions ("v1", HMAC) in the header are skipped.
//
// # Keys
//
// A platform key has an id (kid). The public keys are published as a [KeySet]
// (GET /v1/lifecycle/keys), each serialized as Standard Webhooks says, "whpk_" + standard
// base64 of the 32-byte ed25519 public key. The Standard Webhooks header has no room for a key
// id, so Verify tries every trusted key on every signature (bounded: at most [MaxSignatures]
// signatures are read) and reports which key matched. Signing keys are configured as
// "kid:base64-seed" ([ParsePrivateKeys]); they are secrets and their String and Format
// methods never print them.
//
// Decisions: the id and timestamp may not contain "." (the signed content would become
// ambiguous); the header values are bounded ([MaxIDBytes], [MaxSignatureHeaderBytes]) before
// they are parsed; errors are typed ([ErrMissingHeader], [ErrTimestamp], [ErrTooOld],
// [ErrTooNew], [ErrNoSignature]) so a receiver can log why it refused a delivery.
package webhook

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names (canonical forms; http.Header lookups are case-insensitive).
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
)

// Limits and versions.
const (
	// Tolerance is how far the webhook-timestamp may be from the verifier's clock.
	Tolerance = 5 * time.Minute
	// Version is the Standard Webhooks identifier of ed25519 signatures.
	Version = "v1a"
	// Algorithm names the signature algorithm in a KeySet.
	Algorithm = "ed25519"
	// PublicKeyPrefix and SecretKeyPrefix mark serialized keys, as Standard Webhooks says.
	PublicKeyPrefix = "whpk_"
	SecretKeyPrefix = "whsk_"
	// MaxSignatures is how many signatures of the header Verify reads at most.
	MaxSignatures = 8
	// MaxSignatureHeaderBytes bounds the webhook-signature header.
	MaxSignatureHeaderBytes = 4096
	// MaxIDBytes bounds the webhook-id header.
	MaxIDBytes = 256
)

// Verification errors; Verify wraps them with detail.
var (
	ErrMissingHeader = errors.New("webhook: missing or malformed header")
	ErrTimestamp     = errors.New("webhook: webhook-timestamp is not integer Unix seconds")
	ErrTooOld        = errors.New("webhook: webhook-timestamp is too old")
	ErrTooNew        = errors.New("webhook: webhook-timestamp is too far in the future")
	ErrNoSignature   = errors.New("webhook: no valid signature")
)

// PrivateKey is a platform signing key with its id.
type PrivateKey struct {
	ID  string
	Key ed25519.PrivateKey
}

// String names the key by id only: a key is a secret and never printed.
func (k PrivateKey) String() string { return "webhook.PrivateKey(" + k.ID + ")" }

// GoString is String, so %#v does not print the key either.
func (k PrivateKey) GoString() string { return k.String() }

// Format prints String for every verb, so no fmt verb prints the key.
func (k PrivateKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// Public returns the public half of k.
func (k PrivateKey) Public() PublicKey {
	return PublicKey{ID: k.ID, Key: k.Key.Public().(ed25519.PublicKey)}
}

// PublicKey is a platform verification key with its id.
type PublicKey struct {
	ID  string
	Key ed25519.PublicKey
}

// validKeyID reports whether id is usable as a key id: 1 to 64 of [A-Za-z0-9._-].
func validKeyID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParsePrivateKeys parses comma-separated "kid:key" entries, key being the standard base64
// (optionally prefixed "whsk_") of a 32-byte ed25519 seed or a 64-byte ed25519 private key.
// Key ids must be unique. Errors name the entry by its position and key id, never the key.
func ParsePrivateKeys(s string) ([]PrivateKey, error) {
	var out []PrivateKey
	seen := map[string]bool{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, raw, ok := strings.Cut(entry, ":")
		id = strings.TrimSpace(id)
		if !ok || !validKeyID(id) {
			return nil, fmt.Errorf("webhook: key %d: want kid:base64-seed with a kid of 1-64 letters, digits, '.', '_' or '-'", i+1)
		}
		if seen[id] {
			return nil, fmt.Errorf("webhook: key %d (%s): the key id is listed twice", i+1, id)
		}
		seen[id] = true
		b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(strings.TrimSpace(raw), SecretKeyPrefix))
		if err != nil {
			return nil, fmt.Errorf("webhook: key %d (%s): not standard base64", i+1, id)
		}
		var key ed25519.PrivateKey
		switch len(b) {
		case ed25519.SeedSize:
			key = ed25519.NewKeyFromSeed(b)
		case ed25519.PrivateKeySize:
			key = ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
			if !key.Equal(ed25519.PrivateKey(b)) {
				return nil, fmt.Errorf("webhook: key %d (%s): the public half does not match the seed", i+1, id)
			}
		default:
			return nil, fmt.Errorf("webhook: key %d (%s): %d bytes, want a %d-byte seed", i+1, id, len(b), ed25519.SeedSize)
		}
		out = append(out, PrivateKey{ID: id, Key: key})
	}
	return out, nil
}

// content is the signed content: id.timestamp.body.
func content(id string, ts int64, body []byte) []byte {
	t := strconv.FormatInt(ts, 10)
	b := make([]byte, 0, len(id)+len(t)+len(body)+2)
	b = append(b, id...)
	b = append(b, '.')
	b = append(b, t...)
	b = append(b, '.')
	return append(b, body...)
}

func checkID(id string) error {
	switch {
	case id == "" || len(id) > MaxIDBytes:
		return fmt.Errorf("%w: webhook-id must be 1 to %d bytes", ErrMissingHeader, MaxIDBytes)
	case strings.ContainsAny(id, ". \t\r\n,"):
		return fmt.Errorf("%w: webhook-id may not contain '.', spaces or commas", ErrMissingHeader)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Errorf("%w: webhook-id must be printable ASCII", ErrMissingHeader)
		}
	}
	return nil
}

// Sign returns the webhook-signature value for a delivery of body with webhook-id id at time
// ts: one "v1a,<base64>" per key, space-separated, in the keys' order.
func Sign(id string, ts time.Time, body []byte, keys []PrivateKey) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	if len(keys) == 0 {
		return "", errors.New("webhook: no signing key")
	}
	msg := content(id, ts.Unix(), body)
	var b strings.Builder
	for i, k := range keys {
		if len(k.Key) != ed25519.PrivateKeySize {
			return "", fmt.Errorf("webhook: key %s is not an ed25519 private key", k.ID)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Version + ",")
		b.WriteString(base64.StdEncoding.EncodeToString(ed25519.Sign(k.Key, msg)))
	}
	return b.String(), nil
}

// SetHeaders signs body and sets the three webhook headers on h.
func SetHeaders(h http.Header, id string, ts time.Time, body []byte, keys []PrivateKey) error {
	sig, err := Sign(id, ts, body, keys)
	if err != nil {
		return err
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// Verified is what Verify learned of a delivery it accepted.
type Verified struct {
	ID        string    // webhook-id: the idempotency key
	Timestamp time.Time // webhook-timestamp
	KeyID     string    // the trusted key whose signature verified
}

// Verify checks a delivery: its headers, its raw body and at least one v1a signature by one
// of keys, with the timestamp within Tolerance of now.
func Verify(h http.Header, body []byte, keys []PublicKey, now time.Time) (Verified, error) {
	id := h.Get(HeaderID)
	if err := checkID(id); err != nil {
		return Verified{}, err
	}
	tsText := h.Get(HeaderTimestamp)
	ts, err := parseTimestamp(tsText)
	if err != nil {
		return Verified{}, err
	}
	at := time.Unix(ts, 0)
	if d := now.Sub(at); d > Tolerance {
		return Verified{}, fmt.Errorf("%w: %s before now, more than %s", ErrTooOld, d.Round(time.Second), Tolerance)
	} else if -d > Tolerance {
		return Verified{}, fmt.Errorf("%w: %s after now, more than %s", ErrTooNew, (-d).Round(time.Second), Tolerance)
	}
	sigs, err := parseSignatures(h.Get(HeaderSignature))
	if err != nil {
		return Verified{}, err
	}
	if len(sigs) == 0 {
		return Verified{}, fmt.Errorf("%w: no %s signature in webhook-signature", ErrNoSignature, Version)
	}
	msg := content(id, ts, body)
	for _, sig := range sigs {
		for _, k := range keys {
			if len(k.Key) == ed25519.PublicKeySize && ed25519.Verify(k.Key, msg, sig) {
				return Verified{ID: id, Timestamp: at, KeyID: k.ID}, nil
			}
		}
	}
	return Verified{}, fmt.Errorf("%w: none of %d signatures verifies under the %d trusted keys", ErrNoSignature, len(sigs), len(keys))
}

// parseTimestamp reads integer Unix seconds: 1 to 12 ASCII digits, nothing else.
func parseTimestamp(s string) (int64, error) {
	if s == "" || len(s) > 12 {
		return 0, fmt.Errorf("%w: %q", ErrTimestamp, clipText(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q", ErrTimestamp, clipText(s))
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseSignatures returns the decoded v1a signatures of a webhook-signature value, at most
// MaxSignatures; entries of other versions are skipped, malformed v1a entries refused.
func parseSignatures(s string) ([][]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: webhook-signature is empty", ErrMissingHeader)
	}
	if len(s) > MaxSignatureHeaderBytes {
		return nil, fmt.Errorf("%w: webhook-signature exceeds %d bytes", ErrMissingHeader, MaxSignatureHeaderBytes)
	}
	var out [][]byte
	n := 0
	for entry := range strings.FieldsSeq(s) {
		if n++; n > MaxSignatures {
			break
		}
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != Version {
			continue
		}
		b, err := base64.StdEncoding.Strict().DecodeString(sig)
		if err != nil || len(b) != ed25519.SignatureSize {
			return nil, fmt.Errorf("%w: signature %d is not the base64 of %d bytes", ErrNoSignature, n, ed25519.SignatureSize)
		}
		out = append(out, b)
	}
	return out, nil
}

func clipText(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
