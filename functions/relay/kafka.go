package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms of KAFKA_SASL_MECHANISM, spelled as Kafka's sasl.mechanism spells them.
const (
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLPlain       = "PLAIN"
)

// maxCAFile bounds KAFKA_TLS_CA_FILE: a CA bundle is a few kilobytes; the system bundle of a
// distribution is about 200 KiB.
const maxCAFile = 1 << 20

// Secret is a string that never shows itself: printed with any fmt verb, marshalled as JSON or
// text, or logged with slog, it reads "[redacted]" ("" when empty, so a missing value still
// shows). Only string(s) gives the value, where it is used.
type Secret string

const redacted = "[redacted]"

func (s Secret) shown() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Format implements fmt.Formatter for every verb, %d and %x included.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.shown())
		return
	}
	io.WriteString(f, s.shown())
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.shown() }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.shown()) }

// MarshalText implements encoding.TextMarshaler (JSON, and slog's JSON handler).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }

// validateKafkaAuth adds the problems of the Kafka authentication and TLS settings to errs,
// naming each environment variable. The CA file is read by kafkaAuthOpts, not here.
func (c Config) validateKafkaAuth(errs []error) []error {
	switch c.KafkaSASLMechanism {
	case "":
		if c.KafkaSASLUsername != "" || c.KafkaSASLPassword != "" {
			errs = append(errs, errors.New("KAFKA_SASL_MECHANISM: required when KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN): the credentials would be ignored"))
		}
	case SASLScramSHA512, SASLScramSHA256, SASLPlain:
		if c.KafkaSASLUsername == "" {
			errs = append(errs, fmt.Errorf("KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM %s", c.KafkaSASLMechanism))
		}
		if c.KafkaSASLPassword == "" {
			errs = append(errs, fmt.Errorf("KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM %s", c.KafkaSASLMechanism))
		}
		if c.KafkaSASLMechanism == SASLPlain && !c.KafkaTLS && !c.KafkaSASLAllowPlaintext {
			errs = append(errs, errors.New("KAFKA_SASL_MECHANISM: PLAIN sends the password in clear: set KAFKA_TLS=true (or KAFKA_SASL_ALLOW_PLAINTEXT=true, for a local test cluster only)"))
		}
	default:
		errs = append(errs, fmt.Errorf("KAFKA_SASL_MECHANISM: %q is not one of SCRAM-SHA-512, SCRAM-SHA-256, PLAIN (or empty for none)", c.KafkaSASLMechanism))
	}
	if !c.KafkaTLS {
		if c.KafkaTLSCAFile != "" {
			errs = append(errs, errors.New("KAFKA_TLS_CA_FILE: set while KAFKA_TLS is false: a CA is used only over TLS"))
		}
		if c.KafkaTLSServerName != "" {
			errs = append(errs, errors.New("KAFKA_TLS_SERVER_NAME: set while KAFKA_TLS is false"))
		}
	}
	return errs
}

// kafkaAuthOpts are the franz-go options of c's SASL and TLS settings: none when both are off.
// Errors name the environment variable (and the CA file), never a credential.
func (c Config) kafkaAuthOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	user, pass := c.KafkaSASLUsername, string(c.KafkaSASLPassword)
	switch c.KafkaSASLMechanism {
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
	}
	if c.KafkaTLS {
		tc, err := c.kafkaTLSConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	return opts, nil
}

// kafkaTLSConfig is the TLS configuration of the Kafka connections: TLS 1.2 at least; the
// certificates of KAFKA_TLS_CA_FILE as the only roots when it is set, else the system's;
// KAFKA_TLS_SERVER_NAME as the name to verify when set, else the host of each broker dialed
// (franz-go sets it per dial).
func (c Config) kafkaTLSConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.KafkaTLSServerName}
	if c.KafkaTLSCAFile != "" {
		pool, err := loadCAFile(c.KafkaTLSCAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// loadCAFile reads a PEM bundle of CA certificates into a new pool. It refuses a file with
// no certificate, a certificate that does not parse, and anything but CERTIFICATE blocks
// (a private key put there by mistake is refused rather than ignored).
func loadCAFile(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: %w", path, withoutPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: read: %w", path, withoutPath(err))
	}
	if len(data) > maxCAFile {
		return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: larger than %d bytes, not a CA bundle", path, maxCAFile)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: PEM block %d is %q, want only CERTIFICATE blocks", path, n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: certificate %d: %w", path, n, err)
		}
		pool.AddCert(cert)
	}
	if n == 0 {
		return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: no PEM certificate found", path)
	}
	return pool, nil
}

// withoutPath is err without the path an *fs.PathError repeats (the message names it already).
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// connFailures logs failed Kafka connection attempts without flooding the log: franz-go
// retries a failing broker every few seconds, so a failure is logged when its message differs
// from the last one logged, or connFailureEvery after it.
type connFailures struct {
	mu   sync.Mutex
	last string
	at   time.Time
}

const connFailureEvery = time.Minute

func (f *connFailures) log(l *slog.Logger, now time.Time, meta kgo.BrokerMetadata, err error) {
	msg := err.Error()
	f.mu.Lock()
	if msg == f.last && now.Sub(f.at) < connFailureEvery {
		f.mu.Unlock()
		return
	}
	f.last, f.at = msg, now
	f.mu.Unlock()
	l.Warn("kafka connection failed; retrying", slog.String("broker", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))),
		slog.Any("error", err))
}

// pingKafka reaches a broker (TCP, TLS, SASL) with a client of the session's options, within
// StallAfter. A session calls it before it takes the slot: franz-go connects lazily, so without
// it wrong credentials or an unreachable cluster would go unnoticed until the first event
// waits, and a relay that cannot produce would hold the slot.
func (r *Relay) pingKafka(ctx context.Context) error {
	kc, err := kgo.NewClient(r.kafkaOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer kc.Close()
	pctx, cancel := context.WithTimeout(ctx, r.cfg.StallAfter)
	defer cancel()
	if err := kc.Ping(pctx); err != nil {
		return fmt.Errorf("kafka %s: %w", strings.Join(r.cfg.KafkaBrokers, ","), err)
	}
	return nil
}
