package idp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// application is a registered client, seeded or created through the
// Management API.
type application struct {
	Client
	Description  string
	LegacySecret string
	Secrets      []appSecret
	ConsentScope []string // resource scope ids (= names) shown on the consent page
	UserScopes   []string
	CreatedAt    time.Time
}

type appSecret struct {
	Name      string
	Value     string
	CreatedAt time.Time
	ExpiresAt *time.Time
}

// grant is a user's consent to an application.
type grant struct {
	ID        string
	UserID    string
	AppID     string
	Scopes    []string
	CreatedAt time.Time
	ExpiresAt time.Time
	JTI       string
}

// authRequest is a pending authorization (op.AuthRequest).
type authRequest struct {
	ID        string
	Req       oidc.AuthRequest
	Resource  string
	Subject   string
	Granted   []string
	AuthTime  time.Time
	Code      string
	GrantID   string // the grant the consent recorded; a refresh token lives as long as it
	done      bool
	CreatedAt time.Time
}

func (a *authRequest) GetID() string                      { return a.ID }
func (a *authRequest) GetACR() string                     { return "" }
func (a *authRequest) GetAMR() []string                   { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string              { return []string{a.Req.ClientID} }
func (a *authRequest) GetAuthTime() time.Time             { return a.AuthTime }
func (a *authRequest) GetClientID() string                { return a.Req.ClientID }
func (a *authRequest) GetNonce() string                   { return a.Req.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.Req.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.Req.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.Req.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.Granted }
func (a *authRequest) GetState() string                   { return a.Req.State }
func (a *authRequest) GetSubject() string                 { return a.Subject }
func (a *authRequest) Done() bool                         { return a.done }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.Req.CodeChallenge == "" {
		return nil
	}
	m := a.Req.CodeChallengeMethod
	if m == "" {
		m = oidc.CodeChallengeMethodPlain
	}
	return &oidc.CodeChallenge{Challenge: a.Req.CodeChallenge, Method: m}
}

// clientView adapts an application to op.Client.
type clientView struct {
	app   application
	login func(id string) string
}

func (c *clientView) GetID() string                    { return c.app.ID }
func (c *clientView) RedirectURIs() []string           { return c.app.RedirectURIs }
func (c *clientView) PostLogoutRedirectURIs() []string { return nil }
func (c *clientView) ApplicationType() op.ApplicationType {
	if c.app.Type == "SPA" {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}
func (c *clientView) AuthMethod() oidc.AuthMethod {
	if c.app.Type == "SPA" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c *clientView) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *clientView) GrantTypes() []oidc.GrantType {
	if c.app.Type == "MachineToMachine" {
		return []oidc.GrantType{oidc.GrantTypeClientCredentials}
	}
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *clientView) LoginURL(id string) string           { return c.login(id) }
func (c *clientView) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *clientView) IDTokenLifetime() time.Duration      { return time.Hour }
func (c *clientView) DevMode() bool                       { return true }
func (c *clientView) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *clientView) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *clientView) IsScopeAllowed(scope string) bool {
	return c.app.Scopes == nil || slices.Contains(c.app.Scopes, scope) || slices.Contains(c.app.ConsentScope, scope)
}
func (c *clientView) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *clientView) ClockSkew() time.Duration             { return 0 }

// store holds everything in memory and implements op.Storage.
type store struct {
	s  *Server
	mu sync.RWMutex

	keys     []*signingKey
	apps     map[string]*application
	requests map[string]*authRequest
	codes    map[string]string // code -> request id
	grants   map[string]*grant
	refresh  map[string]*refreshToken // sha256 hex of the token -> what it refreshes
	roles    map[string]*role         // roles.go; made on first use
}

// refreshToken is what a refresh token (offline_access) stands for: the grant it came from
// and the access token it renews. It is valid while that grant exists and has not expired,
// so revoking the grant through the Management API ends it (as in Logto, where a refresh
// token belongs to its grant).
type refreshToken struct {
	GrantID  string
	ClientID string
	Subject  string
	Resource string
	Scopes   []string // API scopes of the access tokens it yields
}

func newStore(s *Server) *store {
	return &store{s: s, apps: map[string]*application{}, requests: map[string]*authRequest{},
		codes: map[string]string{}, grants: map[string]*grant{}, refresh: map[string]*refreshToken{}}
}

func (st *store) addClient(c Client) error {
	if c.ID == "" {
		return errors.New("idp: Config.Clients: a client has no ID")
	}
	if c.Type == "" {
		c.Type = "Traditional"
	}
	switch c.Type {
	case "MachineToMachine", "Traditional", "SPA":
	default:
		return fmt.Errorf("idp: Config.Clients[%s].Type %q: want MachineToMachine, Traditional or SPA", c.ID, c.Type)
	}
	if c.Type != "SPA" && c.Secret == "" {
		return fmt.Errorf("idp: Config.Clients[%s].Secret is required for %s clients", c.ID, c.Type)
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, dup := st.apps[c.ID]; dup {
		return fmt.Errorf("idp: Config.Clients: duplicate id %q", c.ID)
	}
	st.apps[c.ID] = &application{Client: c, LegacySecret: c.Secret, CreatedAt: st.s.now()}
	return nil
}

// newRefresh stores rt under a new random token and returns the token. Only the token's hash
// is kept, as a real server would.
func (st *store) newRefresh(rt refreshToken) string {
	tok := randomID(43)
	st.mu.Lock()
	st.refresh[tokenHash(tok)] = &rt
	st.mu.Unlock()
	return tok
}

// lookupRefresh returns what tok refreshes while its grant exists and is unexpired at now.
func (st *store) lookupRefresh(tok string, now time.Time) (refreshToken, bool) {
	if tok == "" || len(tok) > 256 {
		return refreshToken{}, false
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	rt, ok := st.refresh[tokenHash(tok)]
	if !ok {
		return refreshToken{}, false
	}
	g, ok := st.grants[rt.GrantID]
	if !ok || !g.ExpiresAt.After(now) || g.UserID != rt.Subject || g.AppID != rt.ClientID {
		return refreshToken{}, false
	}
	return *rt, true
}

// dropRefreshLocked deletes the refresh tokens matching drop; st.mu must be held.
func (st *store) dropRefreshLocked(drop func(*refreshToken) bool) {
	for h, rt := range st.refresh {
		if drop(rt) {
			delete(st.refresh, h)
		}
	}
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func (st *store) currentKey() *signingKey {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.keys[len(st.keys)-1]
}

func (st *store) app(id string) (application, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	a, ok := st.apps[id]
	if !ok {
		return application{}, false
	}
	cp := *a
	cp.Secrets = slices.Clone(a.Secrets)
	return cp, true
}

func (st *store) checkSecret(id, secret string) (application, error) {
	a, ok := st.app(id)
	if !ok {
		return application{}, errors.New("unknown client")
	}
	if a.Type == "SPA" {
		return a, nil
	}
	if secret != "" && secret == a.LegacySecret {
		return a, nil
	}
	now := st.s.now()
	for _, s := range a.Secrets {
		if s.Value == secret && secret != "" && (s.ExpiresAt == nil || s.ExpiresAt.After(now)) {
			return a, nil
		}
	}
	return application{}, errors.New("invalid client secret")
}

func (st *store) view(a application) *clientView {
	return &clientView{app: a, login: func(id string) string { return st.s.base + "/login?id=" + id }}
}

// --- op.AuthStorage

func (st *store) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	ar := &authRequest{ID: randomID(24), Req: *req, Resource: resourceFrom(ctx), CreatedAt: st.s.now()}
	st.mu.Lock()
	st.requests[ar.ID] = ar
	st.mu.Unlock()
	return ar, nil
}

func (st *store) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	ar, ok := st.requests[id]
	if !ok {
		return nil, errors.New("auth request not found")
	}
	return ar, nil
}

func (st *store) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	ar, ok := st.requests[st.codes[code]]
	if !ok {
		return nil, errors.New("code not found")
	}
	return ar, nil
}

func (st *store) SaveAuthCode(_ context.Context, id, code string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if ar, ok := st.requests[id]; ok {
		ar.Code = code
		st.codes[code] = id
		return nil
	}
	return errors.New("auth request not found")
}

func (st *store) DeleteAuthRequest(_ context.Context, id string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if ar, ok := st.requests[id]; ok {
		delete(st.codes, ar.Code)
		delete(st.requests, id)
	}
	return nil
}

func (st *store) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return randomID(16), st.s.now().Add(st.s.cfg.AccessTokenTTL), nil
}

func (st *store) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not supported by the development identity server")
}

func (st *store) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (st *store) TerminateSession(context.Context, string, string) error { return nil }

func (st *store) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (st *store) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (st *store) SigningKey(context.Context) (op.SigningKey, error) { return st.currentKey(), nil }

func (st *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES384}, nil
}

func (st *store) KeySet(context.Context) ([]op.Key, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]op.Key, len(st.keys))
	for i, k := range st.keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

// --- op.OPStorage

func (st *store) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	a, ok := st.app(id)
	if !ok {
		return nil, errors.New("unknown client")
	}
	return st.view(a), nil
}

func (st *store) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	_, err := st.checkSecret(id, secret)
	return err
}

func (st *store) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (st *store) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	ui.Subject = req.GetSubject()
	ui.PreferredUsername = req.GetSubject()
	return nil
}

func (st *store) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, _, subject, _ string) error {
	ui.Subject = subject
	return nil
}

func (st *store) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is not supported")
}

func (st *store) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (st *store) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("private_key_jwt is not supported")
}

func (st *store) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grant is not supported")
}

func (st *store) Health(context.Context) error { return nil }

// --- op.ClientCredentialsStorage

func (st *store) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	a, err := st.checkSecret(id, secret)
	if err != nil {
		return nil, err
	}
	if a.Type != "MachineToMachine" {
		return nil, errors.New("client credentials are for machine-to-machine applications")
	}
	return st.view(a), nil
}

func (st *store) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return nil, errors.New("handled by the server")
}

type resourceKey struct{}

func withResource(ctx context.Context, r string) context.Context {
	return context.WithValue(ctx, resourceKey{}, r)
}

func resourceFrom(ctx context.Context) string {
	r, _ := ctx.Value(resourceKey{}).(string)
	return r
}
