package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/myscrollr/connect/shared/inbox"
)

// Config is the relay's configuration, read from the environment by ConfigFromEnv. PORT, where
// /healthz, /readyz and /metrics are served, and LOG_LEVEL are the runtime's (shared/runtime).
type Config struct {
	// DatabaseURL (DATABASE_URL, required) is the PostgreSQL database holding the outbox. The
	// role needs the REPLICATION attribute.
	DatabaseURL string
	// KafkaBrokers (KAFKA_BROKERS, required) are the seed brokers, host:port, comma-separated.
	KafkaBrokers []string
	// KafkaSASLMechanism (KAFKA_SASL_MECHANISM: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN; empty,
	// the default, for no authentication) is how the relay authenticates to Kafka. PLAIN sends
	// the password in clear, so it needs KafkaTLS (or KafkaSASLAllowPlaintext); SCRAM never
	// sends the password and is accepted without TLS.
	KafkaSASLMechanism string
	// KafkaSASLUsername (KAFKA_SASL_USERNAME, required with a mechanism) is the Kafka user, e.g.
	// the Strimzi KafkaUser connect-relay.
	KafkaSASLUsername string
	// KafkaSASLPassword (KAFKA_SASL_PASSWORD, required with a mechanism) is the user's
	// password. It is a Secret: a Config printed or logged shows "[redacted]" in its place.
	KafkaSASLPassword Secret
	// KafkaSASLAllowPlaintext (KAFKA_SASL_ALLOW_PLAINTEXT, default false) lets PLAIN run
	// without TLS: for a local test cluster only.
	KafkaSASLAllowPlaintext bool
	// KafkaTLS (KAFKA_TLS, true or false; default false, true when KAFKA_TLS_CA_FILE is set)
	// dials the brokers over TLS 1.2 or later.
	KafkaTLS bool
	// KafkaTLSCAFile (KAFKA_TLS_CA_FILE, optional) is a PEM bundle of the CA certificates that
	// may sign the brokers' certificates. It replaces the system roots rather than adding to
	// them: the brokers of a Strimzi cluster are signed by the cluster's own self-signed CA,
	// and nothing else should be trusted to vouch for them. Unset, the system roots are used
	// (a managed Kafka with publicly signed certificates). Read once, at start.
	KafkaTLSCAFile string
	// KafkaTLSServerName (KAFKA_TLS_SERVER_NAME, optional) is the name the brokers'
	// certificates are checked against; unset, each broker's host as dialed.
	KafkaTLSServerName string
	// Slot (RELAY_SLOT, default connect_relay) is the logical replication slot.
	Slot string
	// Publication (RELAY_PUBLICATION, default connect_outbox) is the publication on the outbox.
	Publication string
	// StatusInterval (RELAY_STATUS_INTERVAL, default 10s) is the longest time between two
	// standby status updates; a server silent for three intervals is taken as gone.
	StatusInterval time.Duration
	// StallAfter (RELAY_STALL_AFTER, default 15s): records waiting this long with no Kafka
	// acknowledgement mark the relay stalled, and so does a standby whose latest look at the
	// slot is this old.
	StallAfter time.Duration
	// MaxInFlight (RELAY_MAX_IN_FLIGHT, default 10000) bounds records produced but not yet
	// acknowledged.
	MaxInFlight int
	// BackoffMax (RELAY_BACKOFF_MAX, default 10s) caps the reconnect backoff (starting at 100ms).
	BackoffMax time.Duration
	// Retention (RELAY_RETENTION, default 24h; 0 keeps rows) is how long relayed outbox rows stay.
	Retention time.Duration
	// InboxRetention (RELAY_INBOX_RETENTION, default inbox.DefaultRetention, 168h; 0 keeps
	// claims) is how long consumers' claims in processed_events are kept (shared/inbox).
	InboxRetention time.Duration
	// MaintainInterval (RELAY_MAINTAIN_INTERVAL, default 30s) is how often the retained WAL is
	// measured, old outbox rows are deleted and old inbox claims are pruned.
	MaintainInterval time.Duration
	// DrainTimeout (RELAY_DRAIN_TIMEOUT, default 10s) bounds the wait for Kafka acknowledgements
	// at shutdown, before the last confirmation.
	DrainTimeout time.Duration
}

// DefaultConfig is the configuration with every default set and nothing required filled in.
func DefaultConfig() Config {
	return Config{
		Slot:             "connect_relay",
		Publication:      "connect_outbox",
		StatusInterval:   10 * time.Second,
		StallAfter:       15 * time.Second,
		MaxInFlight:      10000,
		BackoffMax:       10 * time.Second,
		Retention:        24 * time.Hour,
		InboxRetention:   inbox.DefaultRetention,
		MaintainInterval: 30 * time.Second,
		DrainTimeout:     10 * time.Second,
	}
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv) and validates it. Errors
// name the environment variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	var errs []error
	c.DatabaseURL = strings.TrimSpace(getenv("DATABASE_URL"))
	if v := getenv("KAFKA_BROKERS"); v != "" {
		c.KafkaBrokers = nil
		for b := range strings.SplitSeq(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				c.KafkaBrokers = append(c.KafkaBrokers, b)
			}
		}
	}
	c.KafkaSASLMechanism = strings.TrimSpace(getenv("KAFKA_SASL_MECHANISM"))
	c.KafkaSASLUsername = strings.TrimSpace(getenv("KAFKA_SASL_USERNAME"))
	c.KafkaSASLPassword = Secret(getenv("KAFKA_SASL_PASSWORD")) // as given: spaces may be part of it
	c.KafkaTLSCAFile = strings.TrimSpace(getenv("KAFKA_TLS_CA_FILE"))
	c.KafkaTLSServerName = strings.TrimSpace(getenv("KAFKA_TLS_SERVER_NAME"))
	c.KafkaTLS = c.KafkaTLSCAFile != ""
	bools := []struct {
		env string
		dst *bool
	}{
		{"KAFKA_TLS", &c.KafkaTLS},
		{"KAFKA_SASL_ALLOW_PLAINTEXT", &c.KafkaSASLAllowPlaintext},
	}
	for _, b := range bools {
		switch v := strings.TrimSpace(getenv(b.env)); v {
		case "":
		case "true":
			*b.dst = true
		case "false":
			*b.dst = false
		default:
			errs = append(errs, fmt.Errorf("%s: %q is not true or false", b.env, v))
		}
	}
	if v := getenv("RELAY_SLOT"); v != "" {
		c.Slot = v
	}
	if v := getenv("RELAY_PUBLICATION"); v != "" {
		c.Publication = v
	}
	durations := []struct {
		env string
		dst *time.Duration
	}{
		{"RELAY_STATUS_INTERVAL", &c.StatusInterval},
		{"RELAY_STALL_AFTER", &c.StallAfter},
		{"RELAY_BACKOFF_MAX", &c.BackoffMax},
		{"RELAY_RETENTION", &c.Retention},
		{"RELAY_INBOX_RETENTION", &c.InboxRetention},
		{"RELAY_MAINTAIN_INTERVAL", &c.MaintainInterval},
		{"RELAY_DRAIN_TIMEOUT", &c.DrainTimeout},
	}
	for _, d := range durations {
		if v := getenv(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration (like 10s or 1m)", d.env, v))
				continue
			}
			*d.dst = x
		}
	}
	if v := getenv("RELAY_MAX_IN_FLIGHT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("RELAY_MAX_IN_FLIGHT: %q is not a number", v))
		} else {
			c.MaxInFlight = n
		}
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	return c, c.validate()
}

// identRE is what slot and publication names may be: they are spliced into replication
// commands, so only plain lower-case identifiers are accepted.
var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// validate checks c and names the environment variable of every problem.
func (c Config) validate() error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL: required"))
	} else if _, err := pgconn.ParseConfig(c.DatabaseURL); err != nil {
		// pgconn's message may echo the password; say only what is wrong.
		errs = append(errs, errors.New("DATABASE_URL: not a valid PostgreSQL connection string"))
	}
	if len(c.KafkaBrokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS: required (host:port, comma-separated)"))
	}
	for _, b := range c.KafkaBrokers {
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 {
			errs = append(errs, fmt.Errorf("KAFKA_BROKERS: %q is not host:port", b))
		} else if p, err := strconv.Atoi(b[i+1:]); err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("KAFKA_BROKERS: %q has no valid port", b))
		}
	}
	errs = c.validateKafkaAuth(errs)
	if !identRE.MatchString(c.Slot) {
		errs = append(errs, fmt.Errorf("RELAY_SLOT: %q must be 1-63 lower-case letters, digits or _, not starting with a digit", c.Slot))
	}
	if !identRE.MatchString(c.Publication) {
		errs = append(errs, fmt.Errorf("RELAY_PUBLICATION: %q must be 1-63 lower-case letters, digits or _, not starting with a digit", c.Publication))
	}
	positive := []struct {
		env string
		d   time.Duration
	}{
		{"RELAY_STATUS_INTERVAL", c.StatusInterval},
		{"RELAY_STALL_AFTER", c.StallAfter},
		{"RELAY_BACKOFF_MAX", c.BackoffMax},
		{"RELAY_MAINTAIN_INTERVAL", c.MaintainInterval},
		{"RELAY_DRAIN_TIMEOUT", c.DrainTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", p.env, p.d))
		}
	}
	if c.StatusInterval > 0 && c.StatusInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("RELAY_STATUS_INTERVAL: %s is below the minimum of 100ms", c.StatusInterval))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("RELAY_RETENTION: must not be negative, got %s", c.Retention))
	}
	if c.InboxRetention < 0 {
		errs = append(errs, fmt.Errorf("RELAY_INBOX_RETENTION: must not be negative, got %s", c.InboxRetention))
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 40000 {
		errs = append(errs, fmt.Errorf("RELAY_MAX_IN_FLIGHT: %d is not between 1 and 40000", c.MaxInFlight))
	}
	return errors.Join(errs...)
}
