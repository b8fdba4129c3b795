package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/myscrollr/connect/shared/idp"
)

// M2MAppID is the machine-to-machine application the functions use for the Logto Management
// API in a local run.
const M2MAppID = "connect-functions"

// startIdentity runs the development identity server in process unless LOGTO_ENDPOINT points
// at a Logto.
func (s *Stack) startIdentity(ctx context.Context) error {
	s.APIResource = s.cfg.APIResource
	if s.APIResource == "" {
		s.APIResource = idp.DefaultAPIResource
	}
	s.eventingSecret = randomHex(16)
	eventing := idp.Client{ID: EventingClientID, Secret: s.eventingSecret, Name: "Knative Eventing (local dispatcher)",
		Type: "MachineToMachine", Scopes: []string{}}
	auds := append(audiences(s.services), audiences(s.manifests)...)
	slices.Sort(auds)
	senders := senderResources(slices.Compact(auds))
	addr := s.cfg.IdentityAddr
	cfg := idp.Config{Logger: s.log, Clients: []idp.Client{eventing}, ExtraResources: senders}
	if s.cfg.LogtoEndpoint != "" {
		// Sender tokens come from the cluster's issuer on Knative, never from Logto: a
		// development identity server of their own, on a free port, issues only them.
		s.LogtoEndpoint = strings.TrimSuffix(s.cfg.LogtoEndpoint, "/")
		s.m2mID, s.m2mSecret = s.cfg.M2MAppID, s.cfg.M2MAppSecret
		addr = "127.0.0.1:0"
	} else {
		s.m2mID, s.m2mSecret = M2MAppID, randomHex(16)
		cfg.DevEndpoints = true
		cfg.Clients = append(cfg.Clients, idp.Client{ID: s.m2mID, Secret: s.m2mSecret,
			Name: "MyScrollr Connect functions", Type: "MachineToMachine", ManagementAPI: true})
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	srv, done, err := idp.Start(ctx, addr, cfg)
	if err != nil {
		cancel()
		return err
	}
	s.stopIdentity = func() { cancel(); <-done }
	s.senderIssuer = srv.Issuer()
	s.tokens = newTokenSource(s.senderIssuer, EventingClientID, s.eventingSecret)
	if s.cfg.LogtoEndpoint == "" {
		s.idp = srv
		s.LogtoEndpoint = strings.TrimSuffix(srv.Issuer(), "/oidc")
	}
	return nil
}

// SenderToken returns a sender token for audience, as the dispatcher obtains them (tests use it
// to deliver an event the way Knative Eventing would).
func (s *Stack) SenderToken(ctx context.Context, audience string) (string, error) {
	return s.tokens.Token(ctx, audience)
}

// Identity is the in-process development identity server, or nil when LOGTO_ENDPOINT is used.
// Tests mint tokens with it.
func (s *Stack) Identity() *idp.Server { return s.idp }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// M2MCredentials are the Management API credentials the functions of this stack use.
func (s *Stack) M2MCredentials() (id, secret string) { return s.m2mID, s.m2mSecret }
