package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/myscrollr/connect/shared/logging/logtest"
)

// The relay's Kafka user in the SASL tests, with the ACLs of KafkaUser connect-relay
// (infra/kafka/20-users.yaml): Write and Describe on the topics it produces to, nothing else.
const (
	relayUser     = "connect-relay"
	relayPassword = "rel4y-pa55word-7f3c9e" // distinctive, so a leak is found in any text
	adminUser     = "admin"
	adminPassword = "adm1n-pa55word-0b8d2a"
	brokerName    = "broker.kafka.test" // the only name in the test broker's certificate
)

// testCA is a self-signed CA, like Strimzi's cluster CA, and a broker certificate it signed.
type testCA struct {
	pem    []byte // the CA certificate, PEM
	server *tls.Config
}

func newTestCA(t testing.TB, names ...string) testCA {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, leafKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test cluster CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{
		pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server: &tls.Config{MinVersion: tls.VersionTLS12,
			Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}},
	}
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// relayACLs are KafkaUser connect-relay's ACLs on the test topics.
func relayACLs() []kfake.ACL {
	var acls []kfake.ACL
	for _, topic := range testTopics {
		for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe} {
			acls = append(acls, kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic,
				Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true})
		}
	}
	return acls
}

// secureBundle is a bundle whose Kafka cluster serves TLS only (a certificate for brokerName,
// signed by a test CA) and requires SCRAM-SHA-512 with ACLs: connect-relay may write the test
// topics, admin (a superuser) reads them for the test.
type secureBundle struct {
	*bundle
	caFile string
	admin  []kgo.Opt // the collector's client options
}

func newSecureBundle(t *testing.T) secureBundle {
	ca := newTestCA(t, brokerName)
	b := newBundle(t, kfake.TLS(ca.server), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser(SASLScramSHA512, adminUser, adminPassword),
		kfake.User(SASLScramSHA512, relayUser, relayPassword, relayACLs()...))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	return secureBundle{
		bundle: b,
		caFile: writeFile(t, "ca.crt", ca.pem),
		admin: []kgo.Opt{
			kgo.SASL(scram.Auth{User: adminUser, Pass: adminPassword}.AsSha512Mechanism()),
			kgo.DialTLSConfig(&tls.Config{RootCAs: roots, ServerName: brokerName, MinVersion: tls.VersionTLS12}),
		},
	}
}

// config is the bundle's relay configuration with connect-relay's credentials over TLS, as
// the relay's Knative Service sets it.
func (b secureBundle) config(password string) Config {
	c := b.bundle.config()
	c.KafkaSASLMechanism = SASLScramSHA512
	c.KafkaSASLUsername = relayUser
	c.KafkaSASLPassword = Secret(password)
	c.KafkaTLS = true
	c.KafkaTLSCAFile = b.caFile
	c.KafkaTLSServerName = brokerName
	return c
}

func TestRelayAuthenticatesWithSCRAMOverTLS(t *testing.T) {
	b := newSecureBundle(t)
	got := collectWith(t, b.admin, b.brokers, testTopics...)
	logs := &logtest.Buffer{}
	startRelay(t, b.config(relayPassword), Deps{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ids := writeN(t, b.bundle, "secure", 20)
	waitFor(t, "events relayed over SASL_SSL", func() bool { return got.has(ids...) })
	if strings.Contains(logs.String(), relayPassword) {
		t.Fatalf("the password is in the log:\n%s", logs)
	}
}

// A relay with the wrong password relays nothing and says so (not ready, an error logged
// without the password); the events wait in the slot, and a relay with the right password
// delivers every one.
func TestRelayWrongPasswordLosesNothing(t *testing.T) {
	b := newSecureBundle(t)
	got := collectWith(t, b.admin, b.brokers, "connect.events")
	const wrong = "wr0ng-pa55word-5e1a77"
	logs := &logtest.Buffer{}
	r, err := New(b.config(wrong), Deps{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The slot exists before the writes (the setup Job's part in production).
	if _, err := r.setupSlot(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	ids := writeN(t, b.bundle, "wrong", 10)
	// kfake closes the connection on a failed SCRAM exchange (a real broker first answers
	// SASL_AUTHENTICATION_FAILED), so the logged error is what the client saw: EOF.
	waitFor(t, "the relay reports the failure", func() bool {
		l := logs.String()
		return r.Ready(ctx) != nil && testutil.ToFloat64(r.m.stalled) == 1 &&
			strings.Contains(l, `"msg":"kafka connection failed; retrying"`) &&
			strings.Contains(l, `"msg":"relay session ended; reconnecting","error":"kafka `+b.brokers[0])
	})
	if strings.Contains(logs.String(), `"msg":"relay streaming"`) {
		t.Fatal("the relay took the slot without reaching Kafka")
	}
	stop()
	for _, text := range []string{logs.String(), fmt.Sprint(r.Ready(ctx))} {
		if strings.Contains(text, wrong) || strings.Contains(text, relayPassword) {
			t.Fatalf("a password is in the log or the readiness error:\n%s", text)
		}
	}
	if n := got.count(); n != 0 {
		t.Fatalf("%d records produced with the wrong password", n)
	}

	startRelay(t, b.config(relayPassword), Deps{})
	waitFor(t, "every event once the password is fixed", func() bool { return got.has(ids...) })
}

func TestConfigKafkaAuth(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://relay@db:5432/connect", "KAFKA_BROKERS": "k:9093"}
	env := func(set map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := set[k]; ok {
				return v
			}
			return base[k]
		}
	}
	c, err := ConfigFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.KafkaSASLMechanism != "" || c.KafkaTLS {
		t.Fatalf("unset settings must mean no SASL and no TLS: %+v", c)
	}
	if opts, err := c.kafkaAuthOpts(); err != nil || len(opts) != 0 {
		t.Fatalf("no SASL, no TLS: %d options, %v", len(opts), err)
	}

	ok := []struct {
		name string
		set  map[string]string
		tls  bool
		opts int
	}{
		{"scram over tls", map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "connect-relay",
			"KAFKA_SASL_PASSWORD": "p", "KAFKA_TLS": "true"}, true, 2},
		{"scram-256 without tls", map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "u",
			"KAFKA_SASL_PASSWORD": "p"}, false, 1},
		{"plain over tls", map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u",
			"KAFKA_SASL_PASSWORD": "p", "KAFKA_TLS": "true"}, true, 2},
		{"plain allowed in clear", map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u",
			"KAFKA_SASL_PASSWORD": "p", "KAFKA_SASL_ALLOW_PLAINTEXT": "true"}, false, 1},
		{"tls alone", map[string]string{"KAFKA_TLS": "true", "KAFKA_TLS_SERVER_NAME": "kafka.example"}, true, 1},
		{"explicit false", map[string]string{"KAFKA_TLS": "false"}, false, 0},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ConfigFromEnv(env(tt.set))
			if err != nil {
				t.Fatal(err)
			}
			if c.KafkaTLS != tt.tls {
				t.Fatalf("KafkaTLS = %v, want %v", c.KafkaTLS, tt.tls)
			}
			opts, err := c.kafkaAuthOpts()
			if err != nil || len(opts) != tt.opts {
				t.Fatalf("%d options (%v), want %d", len(opts), err, tt.opts)
			}
		})
	}

	const secret = "hunter2-s3cret"
	bad := []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"unknown mechanism", map[string]string{"KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": secret},
			[]string{`KAFKA_SASL_MECHANISM: "GSSAPI" is not one of`}},
		{"lower case", map[string]string{"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": secret},
			[]string{`KAFKA_SASL_MECHANISM: "scram-sha-512" is not one of`}},
		{"no credentials", map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"},
			[]string{"KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM SCRAM-SHA-512", "KAFKA_SASL_PASSWORD: required"}},
		{"credentials without mechanism", map[string]string{"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": secret},
			[]string{"KAFKA_SASL_MECHANISM: required when KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set"}},
		{"plain in clear", map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": secret},
			[]string{"KAFKA_SASL_MECHANISM: PLAIN sends the password in clear: set KAFKA_TLS=true"}},
		{"plain with tls off", map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": secret,
			"KAFKA_TLS": "false", "KAFKA_SASL_ALLOW_PLAINTEXT": "false"}, []string{"PLAIN sends the password in clear"}},
		{"tls not a bool", map[string]string{"KAFKA_TLS": "yes"}, []string{`KAFKA_TLS: "yes" is not true or false`}},
		{"allow not a bool", map[string]string{"KAFKA_SASL_ALLOW_PLAINTEXT": "1"}, []string{`KAFKA_SASL_ALLOW_PLAINTEXT: "1" is not true or false`}},
		{"ca file with tls off", map[string]string{"KAFKA_TLS": "false", "KAFKA_TLS_CA_FILE": "/ca.crt"},
			[]string{"KAFKA_TLS_CA_FILE: set while KAFKA_TLS is false"}},
		{"server name with tls off", map[string]string{"KAFKA_TLS_SERVER_NAME": "kafka"}, []string{"KAFKA_TLS_SERVER_NAME: set while KAFKA_TLS is false"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigFromEnv(env(tt.set))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the password: %q", err)
			}
		})
	}

	// A CA file turns TLS on by itself.
	c, err = ConfigFromEnv(env(map[string]string{"KAFKA_TLS_CA_FILE": "/etc/kafka-ca/ca.crt"}))
	if err != nil || !c.KafkaTLS {
		t.Fatalf("KAFKA_TLS_CA_FILE alone: KafkaTLS %v, %v", c.KafkaTLS, err)
	}
}

func TestConfigNeverShowsThePassword(t *testing.T) {
	const secret = "hunter2-s3cret"
	c := DefaultConfig()
	c.KafkaSASLMechanism, c.KafkaSASLUsername, c.KafkaSASLPassword = SASLScramSHA512, relayUser, secret
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		out = append(out, fmt.Sprintf(verb, c), fmt.Sprintf(verb, c.KafkaSASLPassword), fmt.Sprintf(verb, &c))
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("config", slog.Any("config", c), slog.Any("password", c.KafkaSASLPassword), "pw", c.KafkaSASLPassword)
		l.Info("group", slog.Group("kafka", "password", c.KafkaSASLPassword))
	}
	out = append(out, logs.String())
	for _, s := range out {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%x", secret)) || strings.Contains(s, fmt.Sprintf("%X", secret)) {
			t.Fatalf("the password shows: %s", s)
		}
	}
	if !strings.Contains(fmt.Sprintf("%+v", c), "KafkaSASLPassword:[redacted]") || !strings.Contains(logs.String(), `"password":"[redacted]"`) {
		t.Fatalf("a set password should read [redacted]: %+v\n%s", c, logs.String())
	}
	if s := fmt.Sprint(Secret("")); s != "" {
		t.Fatalf("an empty Secret prints %q", s)
	}
	if string(c.KafkaSASLPassword) != secret {
		t.Fatal("the value itself must stay usable")
	}
}

func TestKafkaTLSConfig(t *testing.T) {
	ca1, ca2 := newTestCA(t, "a.kafka.test"), newTestCA(t, "b.kafka.test")
	dir := t.TempDir()
	bundle := writeFile(t, "bundle.pem", append(append([]byte("# Strimzi cluster CA\n"), ca1.pem...), ca2.pem...))

	c := DefaultConfig()
	c.KafkaTLS, c.KafkaTLSCAFile, c.KafkaTLSServerName = true, bundle, "kafka.example"
	tc, err := c.kafkaTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if tc.MinVersion != tls.VersionTLS12 || tc.ServerName != "kafka.example" || tc.InsecureSkipVerify {
		t.Fatalf("tls config: min version %x, server name %q, insecure %v", tc.MinVersion, tc.ServerName, tc.InsecureSkipVerify)
	}
	// Both CAs are trusted, and nothing else: the bundle replaces the system roots.
	want := x509.NewCertPool()
	want.AppendCertsFromPEM(ca1.pem)
	want.AppendCertsFromPEM(ca2.pem)
	if tc.RootCAs == nil || !tc.RootCAs.Equal(want) {
		t.Fatal("RootCAs is not exactly the bundle's two CAs")
	}
	// Without a file, the system roots (RootCAs nil).
	c.KafkaTLSCAFile = ""
	if tc, err := c.kafkaTLSConfig(); err != nil || tc.RootCAs != nil || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("no CA file: %v, %v", tc, err)
	}

	key := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	bad := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.crt"), "nope.crt: no such file or directory"},
		{"directory", dir, dir + ": read:"},
		{"empty", writeFile(t, "empty.crt", nil), "empty.crt: no PEM certificate found"},
		{"not PEM", writeFile(t, "der.crt", []byte("MIIB not pem")), "der.crt: no PEM certificate found"},
		{"a key", writeFile(t, "key.pem", append(append([]byte{}, ca1.pem...), key...)), `key.pem: PEM block 2 is "EC PRIVATE KEY", want only CERTIFICATE blocks`},
		{"broken certificate", writeFile(t, "broken.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})), "broken.crt: certificate 1:"},
		{"too large", writeFile(t, "huge.crt", bytes.Repeat([]byte("x"), maxCAFile+1)), "huge.crt: larger than"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.KafkaTLS, c.KafkaTLSCAFile = true, tt.path
			_, err := c.kafkaTLSConfig()
			if err == nil || !strings.HasPrefix(err.Error(), "KAFKA_TLS_CA_FILE ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want KAFKA_TLS_CA_FILE ... %q", err, tt.want)
			}
			// New refuses it too, before anything connects.
			c.DatabaseURL, c.KafkaBrokers = "postgres://relay@db:5432/connect", []string{"k:9093"}
			if _, err := New(c, Deps{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

// The CA file is what makes the broker trusted: without it (the system roots) or with another
// CA, the relay does not connect, and says why.
func TestRelayRefusesUntrustedBroker(t *testing.T) {
	b := newSecureBundle(t)
	other := writeFile(t, "other.crt", newTestCA(t, brokerName).pem)
	for _, caFile := range []string{"", other} {
		cfg := b.config(relayPassword)
		cfg.KafkaTLSCAFile = caFile
		r, err := New(cfg, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		kc, err := kgo.NewClient(r.kafkaOpts()...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = kc.Ping(ctx)
		cancel()
		kc.Close()
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("CA file %q: ping %v, want a certificate error", caFile, err)
		}
	}
}

// A relay that finds the slot held checks Kafka too: with the wrong password it is not a
// ready standby, so a rollout bringing bad credentials keeps the old revision streaming.
func TestStandbyWithWrongPasswordIsNotReady(t *testing.T) {
	b := newSecureBundle(t)
	got := collectWith(t, b.admin, b.brokers, "connect.events")
	startRelay(t, b.config(relayPassword), Deps{}) // holds the slot
	logs := &logtest.Buffer{}
	r, err := New(b.config("wr0ng-pa55word-5e1a77"), Deps{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "two failed attempts", func() bool {
		return strings.Count(logs.String(), `"msg":"relay session ended; reconnecting","error":"kafka `) >= 2
	})
	ready := r.Ready(ctx)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ready == nil || r.standby() || strings.Contains(logs.String(), "standing by") {
		t.Fatalf("ready %v, standby %v:\n%s", ready, r.standby(), logs)
	}
	ids := writeN(t, b.bundle, "held", 3)
	waitFor(t, "the holder still relays", func() bool { return got.has(ids...) })
}
