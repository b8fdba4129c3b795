package runtime_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/runtime"
)

const (
	ownAudience   = "serving.knative.dev/service/connect/uninstall"
	otherAudience = "serving.knative.dev/service/connect/notify"
	senderID      = "connect-eventing"
	senderSecret  = "eventing-secret"
	intruderID    = "some-integration"
)

// senderFixture runs the development identity server as the sender issuer: the eventing client
// may obtain tokens for both function audiences, an integration's client for none of them.
func senderFixture(t *testing.T) *idp.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{
		Logger: discard(),
		Clients: []idp.Client{
			{ID: senderID, Secret: senderSecret, Type: "MachineToMachine", Scopes: []string{}},
			{ID: intruderID, Secret: "intruder-secret", Type: "MachineToMachine"},
		},
		ExtraResources: []idp.Resource{
			{Name: "uninstall events", Indicator: ownAudience, Clients: []string{senderID}},
			{Name: "notify events", Indicator: otherAudience, Clients: []string{senderID}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

func clientToken(t *testing.T, issuer, id, secret, audience string) (string, error) {
	t.Helper()
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: issuer + "/token",
		EndpointParams: url.Values{"resource": {audience}}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

func TestEventsNeedASenderTokenForTheFunctionsOwnAudience(t *testing.T) {
	t.Parallel()
	issuer := senderFixture(t)
	verifier, err := runtime.NewSenderVerifier(context.Background(),
		runtime.SenderConfig{Issuer: issuer.Issuer(), Audience: ownAudience}, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	b := setup(t, runtime.Function{Name: "uninstall", Events: func(context.Context, cloudevents.Event) error {
		handled.Add(1)
		return nil
	}}, runtime.Deps{Senders: verifier})

	good, err := clientToken(t, issuer.Issuer(), senderID, senderSecret, ownAudience)
	if err != nil {
		t.Fatal(err)
	}
	wrongAud, err := clientToken(t, issuer.Issuer(), senderID, senderSecret, otherAudience)
	if err != nil {
		t.Fatal(err)
	}
	userToken, err := issuer.Mint(idp.TokenRequest{Subject: "user-1", Scopes: []string{"dashboard:read"}})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := issuer.Mint(idp.TokenRequest{Subject: senderID, ClientID: senderID, Audience: ownAudience, TTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		header string
		status int
	}{
		{"no token", "", 401},
		{"not a bearer token", "Basic dXNlcjpwYXNz", 401},
		{"garbage", "Bearer not.a.jwt", 401},
		{"another function's audience", "Bearer " + wrongAud, 401},
		{"a user token", "Bearer " + userToken, 401},
		{"expired", "Bearer " + expired, 401},
		{"sender token", "Bearer " + good, 200},
	}
	for _, c := range cases {
		before := handled.Load()
		h := http.Header{}
		if c.header != "" {
			h.Set("Authorization", c.header)
		}
		resp := postEvent(t, b.url, "com.myscrollr.connect.user.deleted", h)
		if resp.status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, resp.status, c.status, resp.body)
			continue
		}
		delta := handled.Load() - before
		if c.status == 401 {
			if delta != 0 {
				t.Errorf("%s: the handler ran %d times for a refused event", c.name, delta)
			}
			if !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", c.name, resp.header.Get("WWW-Authenticate"))
			}
			resp.problem(t)
			if strings.Contains(string(resp.body), good) || (c.header != "" && strings.Contains(string(resp.body), strings.TrimPrefix(c.header, "Bearer "))) {
				t.Errorf("%s: the token is echoed in the reply", c.name)
			}
		} else if delta != 1 {
			t.Errorf("%s: the handler ran %d times, want 1", c.name, delta)
		}
	}
}

func TestOnlyTheEventingClientObtainsSenderTokens(t *testing.T) {
	t.Parallel()
	issuer := senderFixture(t)
	if _, err := clientToken(t, issuer.Issuer(), intruderID, "intruder-secret", ownAudience); err == nil {
		t.Fatal("an integration's client obtained a sender token for a function's audience")
	}
	// No user flow reaches a sender audience either.
	resp, err := http.Get(issuer.Issuer() + "/auth?" + url.Values{"client_id": {intruderID}, "response_type": {"code"},
		"redirect_uri": {"http://127.0.0.1/cb"}, "scope": {"openid"}, "resource": {ownAudience}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("authorization request for a sender audience answered 200 (a sign-in page)")
	}
}

func TestSenderSubjectsAllowList(t *testing.T) {
	t.Parallel()
	issuer := senderFixture(t)
	verifier, err := runtime.NewSenderVerifier(context.Background(), runtime.SenderConfig{Issuer: issuer.Issuer(),
		Audience: ownAudience, Subjects: []string{"system:serviceaccount:knative-eventing:broker"}}, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := clientToken(t, issuer.Issuer(), senderID, senderSecret, ownAudience)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(context.Background(), good); err == nil {
		t.Fatal("a token of a subject outside EVENTS_OIDC_SUBJECTS was accepted")
	}
	tok, err := issuer.Mint(idp.TokenRequest{Subject: "system:serviceaccount:knative-eventing:broker", ClientID: senderID, Audience: ownAudience})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(context.Background(), tok); err != nil {
		t.Fatalf("listed subject refused: %v", err)
	}
}

func TestEventsRefusedWithoutSenderVerification(t *testing.T) {
	t.Parallel()
	var handled atomic.Int64
	b := setup(t, runtime.Function{Name: "uninstall", Events: func(context.Context, cloudevents.Event) error {
		handled.Add(1)
		return errors.New("must not run")
	}}, runtime.Deps{})
	resp := postEvent(t, b.url, "com.myscrollr.connect.user.deleted", http.Header{"Authorization": {"Bearer x.y.z"}})
	if resp.status != 401 || handled.Load() != 0 {
		t.Fatalf("status %d, handled %d: want 401 and no handling", resp.status, handled.Load())
	}
}

// postEvent sends a binary-mode event of eventType with the extra headers h.
func postEvent(t *testing.T, base, eventType string, h http.Header) response {
	t.Helper()
	req := eventRequest(t, base, sampleEvent(t, eventType), false)
	for k, v := range h {
		req.Header[k] = v
	}
	return do(t, req)
}
