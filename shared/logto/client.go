package logto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sethvargo/go-retry"
)

// DefaultResource is the Management API resource indicator of Logto OSS.
const DefaultResource = "https://default.logto.app/api"

// maxBody bounds every response body read.
const maxBody = 1 << 20

// Config configures a Client. Endpoint, AppID and AppSecret are required.
type Config struct {
	// Endpoint is the Logto base URL (LOGTO_ENDPOINT), e.g. http://127.0.0.1:3001.
	Endpoint string
	// AppID and AppSecret are the M2M application's credentials
	// (LOGTO_M2M_APP_ID, LOGTO_M2M_APP_SECRET).
	AppID, AppSecret string
	// Resource is the Management API resource; default DefaultResource.
	Resource string
	// HTTPClient sends the requests; default a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger receives retries; default slog.Default().
	Logger *slog.Logger
	// Clock returns the current time (token expiry); default time.Now.
	Clock func() time.Time
	// MaxAttempts bounds the attempts of one call; default 4.
	MaxAttempts int
	// BaseBackoff is the first retry wait before jitter; default 100 ms.
	BaseBackoff time.Duration
}

func (c *Config) validate() error {
	if c.Endpoint == "" {
		return errors.New("logto: Config.Endpoint (LOGTO_ENDPOINT) is required")
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("logto: Config.Endpoint (LOGTO_ENDPOINT) %q must be an http(s) URL", c.Endpoint)
	}
	if c.AppID == "" {
		return errors.New("logto: Config.AppID (LOGTO_M2M_APP_ID) is required")
	}
	if c.AppSecret == "" {
		return errors.New("logto: Config.AppSecret (LOGTO_M2M_APP_SECRET) is required")
	}
	if c.MaxAttempts < 0 || c.MaxAttempts > 10 {
		return errors.New("logto: Config.MaxAttempts must be between 0 (default) and 10")
	}
	return nil
}

// Client calls the Logto Management API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger

	mu       sync.Mutex
	token    string
	renewAt  time.Time
	tokenErr error
}

// New returns a Client for cfg. It does not contact Logto.
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Endpoint = strings.TrimSuffix(cfg.Endpoint, "/")
	if cfg.Resource == "" {
		cfg.Resource = DefaultResource
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = 100 * time.Millisecond
	}
	return &Client{cfg: cfg, http: cfg.HTTPClient, log: cfg.Logger}, nil
}

// ErrNotFound matches (errors.Is) an *APIError with status 404.
var ErrNotFound = errors.New("logto: not found")

// APIError is a non-success answer of the Management API.
type APIError struct {
	Method, Path string // the request, path without query
	Status       int
	Code         string // Logto's error code, e.g. "entity.not_found"
	Message      string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("logto: %s %s: status %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, ErrNotFound) true for 404s.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// accessToken returns a cached M2M token, fetching one when due.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.cfg.Clock().Before(c.renewAt) {
		return c.token, nil
	}
	form := url.Values{
		"grant_type": {"client_credentials"},
		"resource":   {c.cfg.Resource},
		"scope":      {"all"},
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	err := c.retry(ctx, http.MethodPost, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.Endpoint+"/oidc/token", strings.NewReader(form.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth(url.QueryEscape(c.cfg.AppID), url.QueryEscape(c.cfg.AppSecret))
		return c.send(req, "/oidc/token", &tok)
	})
	if err != nil {
		return "", fmt.Errorf("logto: obtaining a Management API token: %w", err)
	}
	if tok.AccessToken == "" || tok.ExpiresIn <= 0 {
		return "", errors.New("logto: token response without access_token or expires_in")
	}
	life := time.Duration(tok.ExpiresIn) * time.Second
	margin := time.Minute
	if life < 10*time.Minute {
		margin = life / 10
	}
	c.token, c.renewAt = tok.AccessToken, c.cfg.Clock().Add(life-margin)
	return c.token, nil
}

func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.mu.Unlock()
}

// do calls the Management API: method on path (already escaped), body
// encoded as JSON when not nil, the answer decoded into out when not nil.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("logto: encoding %s %s: %w", method, path, err)
		}
	}
	reauthed := false
	return c.retry(ctx, method, func(ctx context.Context) error {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return err // already retried
		}
		req, err := http.NewRequestWithContext(ctx, method, c.cfg.Endpoint+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		err = c.send(req, stripQuery(path), out)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && !reauthed {
			// The token was revoked or the keys rotated: get a new one once.
			reauthed = true
			c.dropToken(tok)
			return retry.RetryableError(err)
		}
		return err
	})
}

// send performs one request and classifies the outcome; retryable errors are
// marked for retry by the caller's policy.
func (c *Client) send(req *http.Request, path string, out any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return req.Context().Err()
		}
		return &netError{err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return &netError{err}
	}
	if len(body) > maxBody {
		return fmt.Errorf("logto: %s %s: response larger than %d bytes", req.Method, path, maxBody)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || resp.StatusCode == http.StatusNoContent || len(body) == 0 {
			return nil
		}
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("logto: %s %s: decoding response: %w", req.Method, path, err)
		}
		return nil
	}
	ae := &APIError{Method: req.Method, Path: path, Status: resp.StatusCode}
	var eb struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Error   string `json:"error"`
		Desc    string `json:"error_description"`
	}
	if json.Unmarshal(body, &eb) == nil {
		ae.Code, ae.Message = eb.Code, eb.Message
		if ae.Code == "" {
			ae.Code, ae.Message = eb.Error, eb.Desc
		}
	}
	if len(ae.Message) > 300 {
		ae.Message = ae.Message[:300]
	}
	return ae
}

type netError struct{ err error }

func (e *netError) Error() string { return "logto: " + e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// retry runs f under the retry policy described in the package doc.
func (c *Client) retry(ctx context.Context, method string, f func(context.Context) error) error {
	b := retry.NewExponential(c.cfg.BaseBackoff)
	b = retry.WithCappedDuration(2*time.Second, b)
	b = retry.WithFullJitter(b)
	b = retry.WithMaxRetries(uint64(c.cfg.MaxAttempts-1), b)
	attempt := 0
	return retry.Do(ctx, b, func(ctx context.Context) error {
		attempt++
		err := f(ctx)
		if err == nil || !retryable(method, err) {
			return err
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "logto: retrying", slog.String("method", method),
			slog.Int("attempt", attempt), slog.String("error", err.Error()))
		return retry.RetryableError(err)
	})
}

func retryable(method string, err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusTooManyRequests, ae.Status == http.StatusServiceUnavailable:
			return true
		case ae.Status >= 500:
			return method != http.MethodPost
		}
		return false
	}
	var ne *netError
	if errors.As(err, &ne) {
		return method != http.MethodPost
	}
	return false
}

func stripQuery(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}
