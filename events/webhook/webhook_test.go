package webhook_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/events/webhook"
)

// The contract's example message (../shared/contracts/standard-webhooks, "Signature scheme").
const (
	contractID   = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
	contractTS   = 1674087231
	contractBody = `{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}`
)

// RFC 8032 section 7.1, TEST 1: a published ed25519 key pair.
const (
	rfcSeed   = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	rfcPublic = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)

func key(t testing.TB, id string, seed byte) webhook.PrivateKey {
	t.Helper()
	keys, err := webhook.ParsePrivateKeys(id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{seed}, 32)))
	if err != nil || len(keys) != 1 {
		t.Fatal(keys, err)
	}
	return keys[0]
}

func headers(t testing.TB, id string, ts time.Time, body []byte, keys ...webhook.PrivateKey) http.Header {
	t.Helper()
	h := http.Header{}
	if err := webhook.SetHeaders(h, id, ts, body, keys); err != nil {
		t.Fatal(err)
	}
	return h
}

// The signed content is exactly id.timestamp.body (the contract's example), checked with
// crypto/ed25519 directly and with the RFC 8032 key, whose public half is published.
func TestSignedContentIsTheContracts(t *testing.T) {
	seed, _ := hex.DecodeString(rfcSeed)
	keys, err := webhook.ParsePrivateKeys("rfc8032:" + webhook.SecretKeyPrefix + base64.StdEncoding.EncodeToString(seed))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(keys[0].Public().Key); got != rfcPublic {
		t.Fatalf("public key %s, want RFC 8032's %s", got, rfcPublic)
	}
	sig, err := webhook.Sign(contractID, time.Unix(contractTS, 0), []byte(contractBody), keys)
	if err != nil {
		t.Fatal(err)
	}
	version, b64, ok := strings.Cut(sig, ",")
	if !ok || version != "v1a" {
		t.Fatalf("signature %q, want v1a,<base64>", sig)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := hex.DecodeString(rfcPublic)
	msg := contractID + "." + strconv.Itoa(contractTS) + "." + contractBody
	if !ed25519.Verify(pub, []byte(msg), raw) {
		t.Fatal("the signature does not cover msg_id.timestamp.payload")
	}
	// A whole 64-byte private key is accepted too, and must match its seed.
	whole := ed25519.NewKeyFromSeed(seed)
	if _, err := webhook.ParsePrivateKeys("k:" + base64.StdEncoding.EncodeToString(whole)); err != nil {
		t.Fatal(err)
	}
	bad := append(append([]byte{}, whole[:32]...), make([]byte, 32)...)
	if _, err := webhook.ParsePrivateKeys("k:" + base64.StdEncoding.EncodeToString(bad)); err == nil {
		t.Fatal("a private key whose public half does not match was accepted")
	}
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	k1, k2, other := key(t, "k1", 1), key(t, "k2", 2), key(t, "other", 3)
	body := []byte(`{"specversion":"1.0","id":"e1","type":"t","source":"/s"}`)
	trusted := []webhook.PublicKey{k1.Public()}

	v, err := webhook.Verify(headers(t, "e1", now, body, k1), body, trusted, now)
	if err != nil || v.ID != "e1" || v.KeyID != "k1" || !v.Timestamp.Equal(now) {
		t.Fatalf("Verify = %+v, %v", v, err)
	}

	// Rotation: two keys sign; a verifier that trusts either one accepts.
	h := headers(t, "e1", now, body, k1, k2)
	if n := len(strings.Fields(h.Get(webhook.HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures with two keys", n)
	}
	for _, trust := range [][]webhook.PublicKey{{k1.Public()}, {k2.Public()}, {other.Public(), k2.Public()}} {
		if v, err := webhook.Verify(h, body, trust, now); err != nil || v.KeyID != trust[len(trust)-1].ID {
			t.Errorf("trusting %s: %+v, %v", trust[len(trust)-1].ID, v, err)
		}
	}

	tampered := bytes.Replace(body, []byte(`"e1"`), []byte(`"e2"`), 1)
	for name, tc := range map[string]struct {
		h    http.Header
		body []byte
		keys []webhook.PublicKey
		now  time.Time
		want error
	}{
		"tampered body":         {headers(t, "e1", now, body, k1), tampered, trusted, now, webhook.ErrNoSignature},
		"untrusted key":         {headers(t, "e1", now, body, other), body, trusted, now, webhook.ErrNoSignature},
		"no keys":               {headers(t, "e1", now, body, k1), body, nil, now, webhook.ErrNoSignature},
		"301 s old":             {headers(t, "e1", now.Add(-301*time.Second), body, k1), body, trusted, now, webhook.ErrTooOld},
		"301 s ahead":           {headers(t, "e1", now.Add(301*time.Second), body, k1), body, trusted, now, webhook.ErrTooNew},
		"tampered timestamp":    {with(headers(t, "e1", now, body, k1), webhook.HeaderTimestamp, strconv.FormatInt(now.Unix()-1, 10)), body, trusted, now, webhook.ErrNoSignature},
		"tampered id":           {with(headers(t, "e1", now, body, k1), webhook.HeaderID, "e2"), body, trusted, now, webhook.ErrNoSignature},
		"no id":                 {with(headers(t, "e1", now, body, k1), webhook.HeaderID, ""), body, trusted, now, webhook.ErrMissingHeader},
		"id with a dot":         {with(headers(t, "e1", now, body, k1), webhook.HeaderID, "e.1"), body, trusted, now, webhook.ErrMissingHeader},
		"timestamp not integer": {with(headers(t, "e1", now, body, k1), webhook.HeaderTimestamp, "1.5"), body, trusted, now, webhook.ErrTimestamp},
		"negative timestamp":    {with(headers(t, "e1", now, body, k1), webhook.HeaderTimestamp, "-1"), body, trusted, now, webhook.ErrTimestamp},
		"no signature":          {with(headers(t, "e1", now, body, k1), webhook.HeaderSignature, ""), body, trusted, now, webhook.ErrMissingHeader},
		"only v1 (HMAC)":        {with(headers(t, "e1", now, body, k1), webhook.HeaderSignature, "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="), body, trusted, now, webhook.ErrNoSignature},
		"v1a not base64":        {with(headers(t, "e1", now, body, k1), webhook.HeaderSignature, "v1a,!!!"), body, trusted, now, webhook.ErrNoSignature},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := webhook.Verify(tc.h, tc.body, tc.keys, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// 300 s either way is still inside the tolerance.
	for _, d := range []time.Duration{-300 * time.Second, 300 * time.Second} {
		if _, err := webhook.Verify(headers(t, "e1", now.Add(d), body, k1), body, trusted, now); err != nil {
			t.Errorf("timestamp %s off: %v", d, err)
		}
	}
	// A v1 (HMAC) signature next to ours is skipped, not an error.
	mixed := headers(t, "e1", now, body, k1)
	mixed.Set(webhook.HeaderSignature, "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= "+mixed.Get(webhook.HeaderSignature))
	if _, err := webhook.Verify(mixed, body, trusted, now); err != nil {
		t.Fatalf("v1 beside v1a: %v", err)
	}
}

func with(h http.Header, k, v string) http.Header { h.Set(k, v); return h }

// The published key set round-trips, and holds no secret.
func TestKeySet(t *testing.T) {
	k1, k2 := key(t, "k1", 1), key(t, "k2", 2)
	retired := key(t, "old", 9).Public()
	ks := webhook.NewKeySet([]webhook.PrivateKey{k1, k2}, []webhook.PublicKey{retired})
	doc, err := json.Marshal(ks)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []webhook.PrivateKey{k1, k2} {
		if bytes.Contains(doc, []byte(base64.StdEncoding.EncodeToString(k.Key.Seed()))) {
			t.Fatal("the key set carries a seed")
		}
	}
	keys, err := webhook.ParseKeySet(doc)
	if err != nil || len(keys) != 3 {
		t.Fatalf("ParseKeySet = %v, %v", keys, err)
	}
	for i, want := range []webhook.PublicKey{k1.Public(), k2.Public(), retired} {
		if keys[i].ID != want.ID || !keys[i].Key.Equal(want.Key) || ks.Keys[i].Algorithm != "ed25519" {
			t.Errorf("key %d = %s, want %s", i, keys[i].ID, want.ID)
		}
	}
	if ks.Keys[0].Status != webhook.StatusCurrent || ks.Keys[1].Status != webhook.StatusActive || ks.Keys[2].Status != webhook.StatusRetired {
		t.Fatalf("statuses %+v", ks.Keys)
	}
	parsed, err := webhook.ParsePublicKeys("old:" + ks.Keys[2].PublicKey)
	if err != nil || !parsed[0].Key.Equal(retired.Key) {
		t.Fatalf("ParsePublicKeys = %v, %v", parsed, err)
	}
	for _, bad := range []string{`{"keys":[{"kid":"a","alg":"rsa","public_key":"whpk_AAAA"}]}`,
		`{"keys":[{"kid":"a","alg":"ed25519","public_key":"AAAA"}]}`, `{"keys":[{"kid":"","alg":"ed25519","public_key":"` + ks.Keys[0].PublicKey + `"}]}`, `[`} {
		if _, err := webhook.ParseKeySet([]byte(bad)); err == nil {
			t.Errorf("ParseKeySet(%s) accepted", bad)
		}
	}
}

// Signing keys are secrets: no formatting prints them, and a bad entry is named without its key.
func TestKeysAreNeverPrinted(t *testing.T) {
	k := key(t, "k1", 5)
	seed := base64.StdEncoding.EncodeToString(k.Key.Seed())
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %x %q", k, k, k, k, k, k), fmt.Sprint([]webhook.PrivateKey{k})} {
		if strings.Contains(s, seed) || strings.Contains(s, hex.EncodeToString(k.Key.Seed())) || !strings.Contains(s, "k1") {
			t.Fatalf("formatted key %q", s)
		}
	}
	for _, bad := range []string{"k1", "k1:" + seed[:20], "k 1:" + seed, "k1:" + seed + ",k1:" + seed, "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		_, err := webhook.ParsePrivateKeys(bad)
		if err == nil {
			t.Errorf("ParsePrivateKeys(%q) accepted", bad)
		} else if strings.Contains(err.Error(), seed[:20]) {
			t.Errorf("error %q echoes the key", err)
		}
	}
}

// FuzzVerify: Verify never panics on any header values, and accepts only what one of the
// trusted keys signed over exactly these id, timestamp and body.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_790_000_000, 0)
	k := key(f, "k1", 1)
	body := []byte(`{"a":1}`)
	sig, _ := webhook.Sign("e1", now, body, []webhook.PrivateKey{k})
	f.Add("e1", strconv.FormatInt(now.Unix(), 10), sig, body)
	f.Add("e1", "1790000000", "v1,abc v1a,"+strings.Repeat("A", 86)+"==", body)
	f.Add("", "", "", []byte{})
	f.Add("msg_x", "01790000000", "v1a,"+strings.Repeat("/", 88)+" v1a,", []byte("x"))
	trusted := []webhook.PublicKey{k.Public()}
	f.Fuzz(func(t *testing.T, id, ts, sigs string, body []byte) {
		h := http.Header{}
		h.Set(webhook.HeaderID, id)
		h.Set(webhook.HeaderTimestamp, ts)
		h.Set(webhook.HeaderSignature, sigs)
		v, err := webhook.Verify(h, body, trusted, now)
		if err != nil {
			return
		}
		// Accepted: it must be what k signed.
		want, serr := webhook.Sign(v.ID, v.Timestamp, body, []webhook.PrivateKey{k})
		if serr != nil || !strings.Contains(sigs, strings.TrimPrefix(want, "v1a,")) {
			t.Fatalf("accepted id %q ts %q sigs %q: not k's signature", id, ts, sigs)
		}
	})
}
