package stack

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/myscrollr/connect/infra/local/knative"
	"github.com/myscrollr/connect/shared/idp"
)

// EventingClientID is the application the local dispatcher signs in as to obtain sender
// tokens, the part Knative Eventing's OIDC service accounts play on a cluster.
const EventingClientID = "connect-eventing"

// audiences lists every sender-token audience the manifests declare: the audiences of Trigger
// subscribers, PingSource and KafkaSource sinks and dead-letter sinks.
func audiences(m *knative.Manifests) []string {
	set := map[string]bool{}
	add := func(d *knative.Destination) {
		if d != nil && d.Audience != "" {
			set[d.Audience] = true
		}
	}
	addDelivery := func(d *knative.Delivery) {
		if d != nil {
			add(d.DeadLetterSink)
		}
	}
	for i := range m.Brokers {
		addDelivery(m.Brokers[i].Delivery)
	}
	for i := range m.Triggers {
		add(&m.Triggers[i].Subscriber)
		addDelivery(m.Triggers[i].Delivery)
	}
	for i := range m.PingSources {
		add(&m.PingSources[i].Sink)
	}
	for i := range m.KafkaSources {
		add(&m.KafkaSources[i].Sink)
		addDelivery(m.KafkaSources[i].Delivery)
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// senderResources are the identity server resources for the event audiences: only the
// eventing client may obtain tokens for them, and no user flow can.
func senderResources(auds []string) []idp.Resource {
	out := make([]idp.Resource, 0, len(auds))
	for _, a := range auds {
		out = append(out, idp.Resource{Name: "events of " + a, Indicator: a, Clients: []string{EventingClientID}})
	}
	return out
}

// tokenSource hands out client-credentials tokens per audience (RFC 8707 `resource`), each
// cached until shortly before it expires.
type tokenSource struct {
	tokenURL, id, secret string

	mu      sync.Mutex
	sources map[string]oauth2.TokenSource
}

func newTokenSource(issuer, id, secret string) *tokenSource {
	return &tokenSource{tokenURL: issuer + "/token", id: id, secret: secret, sources: map[string]oauth2.TokenSource{}}
}

// Token returns a token for audience.
func (t *tokenSource) Token(ctx context.Context, audience string) (string, error) {
	t.mu.Lock()
	ts, ok := t.sources[audience]
	if !ok {
		cc := clientcredentials.Config{ClientID: t.id, ClientSecret: t.secret, TokenURL: t.tokenURL,
			EndpointParams: url.Values{"resource": {audience}}, AuthStyle: oauth2.AuthStyleInHeader}
		// The token source outlives the first caller's context.
		ts = cc.TokenSource(context.WithoutCancel(ctx))
		t.sources[audience] = ts
	}
	t.mu.Unlock()
	tok, err := ts.Token()
	if err != nil {
		return "", fmt.Errorf("client credentials at %s: %w", t.tokenURL, err)
	}
	return tok.AccessToken, nil
}
