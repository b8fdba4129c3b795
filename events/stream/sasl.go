package stream

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms of KAFKA_SASL_MECHANISM, spelled as Kafka's sasl.mechanism (and the
// Knative Kafka auth secrets of infra/secrets) spell them.
const (
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLScramSHA256 = "SCRAM-SHA-256"
)

// SASL is the SASL/SCRAM authentication of a platform Kafka client, read from the
// environment by SASLFromEnv under the names the relay and infra/secrets use:
// KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD. The zero value is no SASL
// (the local kfake cluster's default), so a client that does not set them is unchanged.
//
// PLAIN is not offered here: it sends the password in clear and needs TLS settings this
// package does not read (the relay, which has them, accepts it).
type SASL struct {
	Mechanism string // "", SASLScramSHA512 or SASLScramSHA256
	Username  string
	Password  string
}

// SASLFromEnv reads and validates the SASL settings through getenv (os.Getenv); errors name
// the variable, never the password.
func SASLFromEnv(getenv func(string) string) (SASL, error) {
	s := SASL{
		Mechanism: strings.ToUpper(strings.TrimSpace(getenv("KAFKA_SASL_MECHANISM"))),
		Username:  strings.TrimSpace(getenv("KAFKA_SASL_USERNAME")),
		Password:  getenv("KAFKA_SASL_PASSWORD"),
	}
	return s, s.validate()
}

func (s SASL) validate() error {
	var errs []error
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			errs = append(errs, errors.New("stream: KAFKA_SASL_MECHANISM: required when KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set (SCRAM-SHA-512 or SCRAM-SHA-256): the credentials would be ignored"))
		}
	case SASLScramSHA512, SASLScramSHA256:
		if s.Username == "" {
			errs = append(errs, fmt.Errorf("stream: KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM %s", s.Mechanism))
		}
		if s.Password == "" {
			errs = append(errs, fmt.Errorf("stream: KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM %s", s.Mechanism))
		}
	default:
		errs = append(errs, fmt.Errorf("stream: KAFKA_SASL_MECHANISM: %q is not SCRAM-SHA-512 or SCRAM-SHA-256 (or empty for none)", s.Mechanism))
	}
	return errors.Join(errs...)
}

// Opts are the franz-go options of s, for NewProducer's opts or ConsumerConfig.Opts: none
// without SASL.
func (s SASL) Opts() []kgo.Opt {
	a := scram.Auth{User: s.Username, Pass: s.Password}
	switch s.Mechanism {
	case SASLScramSHA512:
		return []kgo.Opt{kgo.SASL(a.AsSha512Mechanism())}
	case SASLScramSHA256:
		return []kgo.Opt{kgo.SASL(a.AsSha256Mechanism())}
	}
	return nil
}

// String never shows the password.
func (s SASL) String() string {
	if s.Mechanism == "" {
		return "no SASL"
	}
	return s.Mechanism + " as " + s.Username
}
