// Package pushkafka gives a push integration its credentials on the local Kafka cluster: a
// SCRAM-SHA-256 user allowed to produce to its own topic integrations.{name}.data and to
// nothing else (docs/decisions/0010-push-ingest.md, "Locally: SASL/SCRAM with ACLs").
//
// franz-go's kfake enforces ACLs when it runs with kfake.EnableSASL and kfake.EnableACLs:
// every request is authorized (a produce needs WRITE on the topic), superusers bypass the
// checks, and users and ACLs are created at run time through the Kafka admin API
// (AlterUserScramCredentials, CreateAcls), which is what Grant calls. The same calls work on a
// real Kafka cluster whose listener has SCRAM and an authorizer, so nothing here is
// kfake-specific; in production the form is SASL/OAUTHBEARER validating Logto tokens (see the
// decision), and this package is the local stand-in.
//
// The ACLs are LITERAL (not PREFIXED): integrations.a.data must not cover
// integrations.a.data.x or, worse, a topic another integration could be named into. WRITE
// lets the user produce; DESCRIBE lets its client read the topic's metadata, which a producer
// needs. Nothing else is allowed: no READ, no consumer group, no other topic, no idempotent
// producer id (IDEMPOTENT_WRITE on the cluster), so a push client must disable idempotence
// (kgo.DisableIdempotentWrite) or be refused.
package pushkafka

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/myscrollr/connect/events"
)

// Mechanism is the SASL mechanism of push credentials (Kafka's sasl.mechanism spelling).
const Mechanism = "SCRAM-SHA-256"

// scramIterations is Kafka's minimum (4096): the password is 256 random bits, so key
// stretching adds nothing but time.
const scramIterations = 4096

// Credentials are a push integration's SASL user on the local cluster.
type Credentials struct {
	Mechanism string // always Mechanism
	User      string // "push-" + the integration's name
	Password  string // random, shown once
	Topic     string // the only topic it may write: integrations.{name}.data
}

// Opts are the franz-go options a producer of c needs (SASL, and idempotence off: the user
// has no IDEMPOTENT_WRITE on the cluster).
func (c Credentials) Opts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SASL(scram.Auth{User: c.User, Pass: c.Password}.AsSha256Mechanism()),
		kgo.DisableIdempotentWrite(),
	}
}

// User is the SASL user name of the push integration name.
func User(name string) string { return "push-" + name }

// Grant creates, or replaces, the SCRAM-SHA-256 user of the push integration name with a new
// random password and allows it WRITE and DESCRIBE on its literal topic. adm must act as a
// superuser (or hold ALTER on the cluster). Replacing rotates the password; the ACLs are
// idempotent.
func Grant(ctx context.Context, adm *kadm.Client, name string) (Credentials, error) {
	if name == "" {
		return Credentials{}, errors.New("pushkafka: Grant: an integration name is required")
	}
	pw := make([]byte, 32)
	if _, err := rand.Read(pw); err != nil {
		return Credentials{}, err
	}
	c := Credentials{Mechanism: Mechanism, User: User(name), Password: base64.RawURLEncoding.EncodeToString(pw), Topic: events.DataTopic(name)}
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: c.User, Mechanism: kadm.ScramSha256, Iterations: scramIterations, Password: c.Password}})
	if err != nil {
		return Credentials{}, fmt.Errorf("pushkafka: SCRAM user %s: %w", c.User, err)
	}
	if err := res.Error(); err != nil {
		return Credentials{}, fmt.Errorf("pushkafka: SCRAM user %s: %w", c.User, err)
	}
	acls, err := adm.CreateACLs(ctx, acl(c))
	if err != nil {
		return Credentials{}, fmt.Errorf("pushkafka: ACLs of %s: %w", c.User, err)
	}
	for _, r := range acls {
		if r.Err != nil {
			return Credentials{}, fmt.Errorf("pushkafka: ACL %s %s on %s: %w", r.Principal, r.Operation, r.Name, r.Err)
		}
	}
	return c, nil
}

// Revoke deletes the user of the push integration name and its ACLs; what is already gone
// counts as deleted.
func Revoke(ctx context.Context, adm *kadm.Client, name string) error {
	c := Credentials{User: User(name), Topic: events.DataTopic(name)}
	var errs []error
	if res, err := adm.DeleteACLs(ctx, acl(c)); err != nil {
		errs = append(errs, err)
	} else {
		for _, r := range res {
			errs = append(errs, r.Err)
		}
	}
	res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: c.User, Mechanism: kadm.ScramSha256}}, nil)
	if err != nil {
		errs = append(errs, err)
	} else if err := res.Error(); err != nil && !errors.Is(err, kerr.ResourceNotFound) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pushkafka: revoke %s: %w", c.User, err)
	}
	return nil
}

// acl is the one rule of c: ALLOW User:{user} WRITE and DESCRIBE on the LITERAL topic.
func acl(c Credentials) *kadm.ACLBuilder {
	return kadm.NewACLs().Topics(c.Topic).ResourcePatternType(kadm.ACLPatternLiteral).
		Allow("User:"+c.User).AllowHosts("*").Operations(kadm.OpWrite, kadm.OpDescribe)
}
