// Package idptest drives the development identity server the way a user's browser would, for
// tests that need real grants: sign in and allow an application on the consent page.
package idptest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

var formID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// Consent runs an authorization-code flow with PKCE at issuer (…/oidc) for clientID and
// redirectURI (which must be registered for the client), signs in as user and allows the
// requested scopes, which records a grant. It returns the authorization code.
func Consent(issuer, clientID, redirectURI, user string, scopes ...string) (string, error) {
	code, _, err := Authorize(issuer, clientID, redirectURI, user, scopes...)
	return code, err
}

// Follow opens authURL (an authorization request someone else built, such as the install
// function's consent URL) as a browser would, signs in as user, answers the consent page
// (allow or deny) and returns the URL the identity server redirects to, which starts with
// redirectURI and carries code and state (or error).
func Follow(authURL, redirectURI, user string, allow bool) (*url.URL, error) {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Transport: &http.Transport{}, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirectURI) {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	defer browser.CloseIdleConnections()
	resp, err := browser.Get(authURL)
	if err != nil {
		return nil, err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formID.FindSubmatch(page)
	if m == nil {
		return nil, fmt.Errorf("idptest: no sign-in form: %d %s", resp.StatusCode, page)
	}
	consent := "deny"
	if allow {
		consent = "allow"
	}
	u := resp.Request.URL
	resp, err = browser.PostForm(u.Scheme+"://"+u.Host+"/login", url.Values{"id": {string(m[1])}, "username": {user}, "consent": {consent}})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, redirectURI) {
		return nil, fmt.Errorf("idptest: consent answered %d, Location %q", resp.StatusCode, loc)
	}
	return url.Parse(loc)
}

// Authorize is Consent that also returns the PKCE code verifier, for a test that goes on to
// exchange the code at the token endpoint.
func Authorize(issuer, clientID, redirectURI, user string, scopes ...string) (code, verifier string, err error) {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Transport: &http.Transport{}, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirectURI) {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	defer browser.CloseIdleConnections()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	verifier = base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(verifier))
	scope := strings.Join(append([]string{"openid"}, scopes...), " ")
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {scope},
		"state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, err := browser.Get(issuer + "/auth?" + q.Encode())
	if err != nil {
		return "", "", err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formID.FindSubmatch(page)
	if m == nil {
		return "", "", fmt.Errorf("idptest: no sign-in form: %d %s", resp.StatusCode, page)
	}
	u := resp.Request.URL
	resp, err = browser.PostForm(u.Scheme+"://"+u.Host+"/login", url.Values{"id": {string(m[1])}, "username": {user}, "consent": {"allow"}})
	if err != nil {
		return "", "", err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, redirectURI) {
		return "", "", fmt.Errorf("idptest: consent answered %d, Location %q", resp.StatusCode, loc)
	}
	lu, err := url.Parse(loc)
	if err != nil {
		return "", "", err
	}
	return lu.Query().Get("code"), verifier, nil
}
