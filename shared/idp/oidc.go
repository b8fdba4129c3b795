package idp

import (
	"context"
	"crypto/sha256"
	"net/http"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// oidcServer is op's LegacyServer with Logto's token shapes: authorization
// and token requests honour `resource`, and access tokens are signed by
// signAccessToken (typ at+jwt) rather than op's generic JWT.
type oidcServer struct {
	*op.LegacyServer
	s *Server
}

func (s *Server) buildHandler() error {
	key := sha256.Sum256([]byte(s.issuer + randomID(32)))
	cfg := &op.Config{CryptoKey: key, CodeMethodS256: true, AuthMethodPost: true, GrantTypeRefreshToken: true}
	provider, err := op.NewProvider(cfg, s.store, op.StaticIssuer(s.issuer),
		op.WithAllowInsecure(), op.WithLogger(s.log))
	if err != nil {
		return err
	}
	endpoints := op.Endpoints{
		Authorization: op.NewEndpoint("auth"),
		Token:         op.NewEndpoint("token"),
		Userinfo:      op.NewEndpoint("me"),
		JwksURI:       op.NewEndpoint("jwks"),
	}
	s.legacy = op.NewLegacyServer(provider, endpoints)
	oidcHandler := op.RegisterLegacyServer(&oidcServer{LegacyServer: s.legacy, s: s},
		op.AuthorizeCallbackHandler(provider), op.WithFallbackLogger(s.log))

	mux := http.NewServeMux()
	mux.Handle("/oidc/", http.StripPrefix("/oidc", oidcHandler))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginSubmit)
	s.mountManagement(mux)
	if s.cfg.DevEndpoints {
		mux.HandleFunc("POST /dev/token", s.devToken)
		mux.HandleFunc("POST /dev/rotate-key", s.devRotateKey)
	}
	s.handler = mux
	return nil
}

// Authorize stores the request together with its `resource` and sends the
// user to the sign-in page.
func (o *oidcServer) Authorize(ctx context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	if res, ok := o.s.resource(r.Form.Get("resource")); ok && res.Clients != nil {
		return nil, oidc.ErrInvalidTarget().WithDescription("this resource is for services only")
	}
	return o.LegacyServer.Authorize(withResource(ctx, r.Form.Get("resource")), r)
}

// CodeExchange redeems an authorization code. PKCE is enforced whenever the
// authorization request carried a challenge.
func (o *oidcServer) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	st := o.s.store
	req, err := op.AuthRequestByCode(ctx, st, r.Data.Code)
	if err != nil {
		return nil, err
	}
	ar := req.(*authRequest)
	if ar.GetCodeChallenge() != nil || r.Client.AuthMethod() == oidc.AuthMethodNone {
		if err := op.AuthorizeCodeChallenge(r.Data.CodeVerifier, ar.GetCodeChallenge()); err != nil {
			return nil, err
		}
	}
	if r.Client.GetID() != ar.GetClientID() {
		return nil, oidc.ErrInvalidGrant()
	}
	if r.Data.RedirectURI != ar.GetRedirectURI() {
		return nil, oidc.ErrInvalidGrant().WithDescription("redirect_uri does not correspond")
	}
	resource := r.Form.Get("resource")
	if resource == "" {
		resource = ar.Resource
	}
	if ar.Resource != "" && resource != ar.Resource {
		return nil, oidc.ErrInvalidTarget().WithDescription("resource differs from the authorization request")
	}
	if res, ok := o.s.resource(resource); ok && res.Clients != nil {
		return nil, oidc.ErrInvalidTarget().WithDescription("this resource is for services only")
	}
	aud := resource
	if aud == "" {
		aud = ar.GetClientID()
	}
	apiScopes := slices.DeleteFunc(slices.Clone(ar.Granted), oidcScope)
	ttl := o.s.cfg.AccessTokenTTL
	at, _, err := o.s.signAccessToken(ar.Subject, ar.GetClientID(), aud, apiScopes, ttl, nil)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	resp := &oidc.AccessTokenResponse{AccessToken: at, TokenType: oidc.BearerToken,
		ExpiresIn: uint64(ttl.Seconds()), Scope: apiScopes}
	if slices.Contains(ar.Granted, oidc.ScopeOfflineAccess) && ar.GrantID != "" && r.Client.AuthMethod() != oidc.AuthMethodNone {
		resp.RefreshToken = st.newRefresh(refreshToken{GrantID: ar.GrantID, ClientID: ar.GetClientID(),
			Subject: ar.Subject, Resource: resource, Scopes: apiScopes})
	}
	if slices.Contains(ar.Granted, oidc.ScopeOpenID) {
		idt, err := op.CreateIDToken(ctx, op.IssuerFromContext(ctx), ar, r.Client.IDTokenLifetime(), at, r.Data.Code, st, r.Client)
		if err != nil {
			return nil, err
		}
		resp.IDToken = idt
	}
	_ = st.DeleteAuthRequest(ctx, ar.ID)
	return op.NewResponse(resp), nil
}

// RefreshToken renews an access token with a refresh token obtained with offline_access,
// for the client it was issued to, while its grant lives: revoking the grant (Management API
// DELETE /api/users/{userId}/grants/{grantId}, or deleting the application) ends it. The
// refresh token is not rotated (Logto rotates it when most of its lifetime has passed; a
// client that stores the newest refresh token it is given works with both). A narrower
// `scope` may be asked; `resource`, when given, must be the one of the authorization.
func (o *oidcServer) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	rt, ok := o.s.store.lookupRefresh(r.Data.RefreshToken, o.s.now())
	if !ok || rt.ClientID != r.Client.GetID() {
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, revoked or expired")
	}
	if res := r.Form.Get("resource"); res != "" && res != rt.Resource {
		return nil, oidc.ErrInvalidTarget().WithDescription("resource differs from the authorization")
	}
	scopes := rt.Scopes
	if asked := []string(r.Data.Scopes); len(asked) > 0 {
		scopes = nil
		for _, sc := range asked {
			if oidcScope(sc) {
				continue
			}
			if !slices.Contains(rt.Scopes, sc) {
				return nil, oidc.ErrInvalidScope().WithDescription("scope %s was not granted", sc)
			}
			scopes = append(scopes, sc)
		}
	}
	aud := rt.Resource
	if aud == "" {
		aud = rt.ClientID
	}
	ttl := o.s.cfg.AccessTokenTTL
	at, _, err := o.s.signAccessToken(rt.Subject, rt.ClientID, aud, scopes, ttl, nil)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return op.NewResponse(&oidc.AccessTokenResponse{AccessToken: at, TokenType: oidc.BearerToken,
		RefreshToken: r.Data.RefreshToken, ExpiresIn: uint64(ttl.Seconds()), Scope: scopes}), nil
}

// ClientCredentialsExchange issues an M2M token for `resource` with the
// requested scopes the client may have (all of them when none are asked).
func (o *oidcServer) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	app, ok := o.s.store.app(r.Client.GetID())
	if !ok {
		return nil, oidc.ErrInvalidClient()
	}
	resource := r.Form.Get("resource")
	requested := []string(r.Data.Scope)
	var allowed []string
	switch {
	case resource == "":
		return nil, oidc.ErrInvalidTarget().WithDescription("resource is required for client credentials")
	case resource == ManagementResource:
		if !app.ManagementAPI {
			return nil, oidc.ErrInvalidTarget().WithDescription("this application may not use the Management API")
		}
		allowed = []string{"all"}
	default:
		res, ok := o.s.resource(resource)
		if !ok {
			return nil, oidc.ErrInvalidTarget().WithDescription("unknown resource")
		}
		if res.Clients != nil && !slices.Contains(res.Clients, app.ID) {
			return nil, oidc.ErrInvalidTarget().WithDescription("this application may not obtain tokens for this resource")
		}
		allowed = res.Scopes
		if app.Scopes != nil { // its own list and its roles' scopes (roles.go)
			mine := o.s.store.clientScopes(app)
			allowed = slices.DeleteFunc(slices.Clone(allowed), func(s string) bool { return !slices.Contains(mine, s) })
		}
	}
	granted := allowed
	if len(requested) > 0 {
		granted = nil
		for _, s := range requested {
			if !slices.Contains(allowed, s) {
				return nil, oidc.ErrInvalidScope().WithDescription("scope %s is not allowed for this application", s)
			}
			granted = append(granted, s)
		}
	}
	ttl := o.s.cfg.AccessTokenTTL
	at, _, err := o.s.signAccessToken(app.ID, app.ID, resource, granted, ttl, nil)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return op.NewResponse(&oidc.AccessTokenResponse{AccessToken: at, TokenType: oidc.BearerToken,
		ExpiresIn: uint64(ttl.Seconds()), Scope: granted}), nil
}

func (s *Server) resource(indicator string) (Resource, bool) {
	for _, r := range s.cfg.Resources {
		if r.Indicator == indicator {
			return r, true
		}
	}
	return Resource{}, false
}

// scopesFor lists the resource scopes a consent asks for: those requested
// that the resource has and the client may obtain.
func (s *Server) scopesFor(app application, resource string, requested []string) []string {
	res, _ := s.resource(resource)
	var out []string
	for _, sc := range requested {
		switch {
		case oidcScope(sc):
			out = append(out, sc)
		case slices.Contains(res.Scopes, sc) && (app.Scopes == nil || slices.Contains(app.Scopes, sc) ||
			slices.Contains(app.ConsentScope, sc)):
			out = append(out, sc)
		}
	}
	return out
}

func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
