package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/myscrollr/connect/shared/clip"
)

// maxTokenResponse bounds what is read of the token endpoint's answer.
const maxTokenResponse = 64 << 10

// tokenSet is what the code exchange obtained for the user: the tokens the integration claims
// once. Its fields are secrets: it has no String method that shows them and is only ever
// stored sealed.
type tokenSet struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type"`
	ExpiresAt    time.Time `json:"expires_at"`
	Scope        string    `json:"scope"`
}

// String hides the tokens, so a tokenSet printed by mistake leaks nothing.
func (tokenSet) String() string { return "tokenSet{redacted}" }

// GoString is String.
func (t tokenSet) GoString() string { return t.String() }

// exchangeResult is the token set with what the callback checks: the subject the tokens are
// for and the API scopes granted.
type exchangeResult struct {
	Tokens  tokenSet
	Subject string
	Scopes  []string
}

// errExchange is a refusal by the token endpoint (4xx): the code is unknown, used, expired or
// not this client's; not retried.
var errExchange = errors.New("install: the identity server refused the code")

// exchangeCode redeems an authorization code at the identity server's token endpoint with the
// integration's client id and secret (client_secret_basic) and the PKCE verifier. The answer
// comes over the connection this function opened to the platform's own identity server, so its
// access token's claims are read without checking the signature (OpenID Connect Core 3.1.3.7:
// TLS server validation stands in for it).
func (s *Service) exchangeCode(ctx context.Context, clientID, secret, code, verifier string, now time.Time) (exchangeResult, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.callback},
		"code_verifier": {verifier}, "resource": {s.resource}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return exchangeResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret)) // RFC 6749 2.3.1
	resp, err := s.hc.Do(req)
	if err != nil {
		return exchangeResult{}, fmt.Errorf("install: token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return exchangeResult{}, fmt.Errorf("install: token endpoint: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// Only the OAuth error code is kept: error descriptions are free text.
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		err := fmt.Errorf("install: token endpoint answered %d %s", resp.StatusCode, clip.Ellipsis(e.Error, 64))
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return exchangeResult{}, errors.Join(errExchange, err)
		}
		return exchangeResult{}, err
	}
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int64  `json:"expires_in"`
		Scope        string `json:"scope"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" {
		return exchangeResult{}, errors.New("install: token endpoint: the answer has no access token")
	}
	claims, err := jwtClaims(out.AccessToken)
	if err != nil {
		return exchangeResult{}, err
	}
	scope := out.Scope
	if scope == "" {
		scope = claims.Scope
	}
	exp := now.Add(time.Duration(out.ExpiresIn) * time.Second)
	if out.ExpiresIn <= 0 && claims.Exp > 0 {
		exp = time.Unix(claims.Exp, 0)
	}
	if out.TokenType == "" {
		out.TokenType = "Bearer"
	}
	return exchangeResult{
		Tokens: tokenSet{AccessToken: out.AccessToken, RefreshToken: out.RefreshToken, TokenType: out.TokenType,
			ExpiresAt: exp.UTC(), Scope: scope},
		Subject: claims.Sub,
		Scopes:  strings.Fields(scope),
	}, nil
}

type accessClaims struct {
	Sub   string `json:"sub"`
	Scope string `json:"scope"`
	Exp   int64  `json:"exp"`
}

// jwtClaims reads the payload of a JWT access token (see exchangeCode for why unverified).
func jwtClaims(tok string) (accessClaims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return accessClaims{}, errors.New("install: the access token is not a JWT (is LOGTO_API_RESOURCE an API resource of the identity server?)")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return accessClaims{}, errors.New("install: the access token's payload is not base64url")
	}
	var c accessClaims
	if err := json.Unmarshal(b, &c); err != nil || c.Sub == "" {
		return accessClaims{}, errors.New("install: the access token's payload has no subject")
	}
	return c, nil
}
