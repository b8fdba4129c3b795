package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/runtime"
	"github.com/myscrollr/connect/wasmhost"
)

func TestMain(m *testing.M) {
	wasmhost.MaybeWorker() // the test binary is the WASM transforms' worker too (transform_test.go)
	os.Exit(pgtest.Main(m))
}

const mgmtClient, mgmtSecret = "m2m", "m2m-secret"

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// clock is an injected clock tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type bundle struct {
	pool  *pgxpool.Pool
	idp   *idp.Server
	svc   *Service
	srv   *httptest.Server
	clock *clock
}

const pricesManifest = `{"data_source": {"streams": [
	{"name": "prices", "key": ["coin"], "schema": {"type": "object", "required": ["coin", "cents"],
		"properties": {"coin": {"type": "string"}, "cents": {"type": "integer", "minimum": 0}}}},
	{"name": "nokey", "schema": {"type": "object"}}]}}`

func setupIngest(t testing.TB, cfg Config) bundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{Logger: discard(),
		// The Management API client, as the registry has it, to make push credentials.
		Clients: []idp.Client{{ID: mgmtClient, Secret: mgmtSecret, Type: "MachineToMachine", ManagementAPI: true}}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: s.Issuer(), Audience: idp.DefaultAPIResource, Logger: discard()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := bundle{pool: pgtest.Pool(t), idp: s, clock: &clock{t: time.Now()}}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Rate == 0 {
		cfg.Rate, cfg.Burst = 1e6, 10_000_000
	}
	if cfg.ReplayRetention == 0 {
		cfg.ReplayRetention = DefaultReplayRetention
	}
	b.svc, err = New(cfg, b.pool, nil, discard(), b.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	h, err := runtime.NewHandler(runtime.Function{Name: "ingest", HTTP: b.svc.Routes(v), Events: b.svc.HandleEvent},
		runtime.Deps{Logger: discard(), InsecureEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	return b
}

// pushSource inserts a push data source whose integration client (m2m_app_id) is clientID, its manifest
// version 1.0.0 declaring streams, and returns its id.
func (b bundle) pushSource(t testing.TB, name, clientID, manifest string) string {
	t.Helper()
	ctx := context.Background()
	var id string
	if err := b.pool.QueryRow(ctx, `INSERT INTO integrations (developer_id, logto_app_id, m2m_app_id, name, display_name,
		type, delivery_mode, base_url, latest_version) VALUES ('dev_1', $1 || '-web', $1, $2, $2, 'data_source', 'push',
		'https://example.test', '1.0.0') RETURNING id::text`, clientID, name).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `INSERT INTO integration_versions (integration_id, version, manifest) VALUES ($1, '1.0.0', $2)`, id, manifest); err != nil {
		t.Fatal(err)
	}
	return id
}

func (b bundle) token(t testing.TB, clientID string, ttl time.Duration, scopes ...string) string {
	t.Helper()
	tok, err := b.idp.Mint(idp.TokenRequest{Subject: clientID, ClientID: clientID, Scopes: scopes, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// push posts body with the headers and returns the status, the answer's headers and body.
func (b bundle) push(t testing.TB, token string, hdr map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", b.srv.URL+"/v1/ingest", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	if _, err := out.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out.Bytes()
}

func (b bundle) count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// ev is a structured push event.
func ev(id, stream, data string) map[string]any {
	return map[string]any{"specversion": "1.0", "id": id, "source": "https://pusher.example/feed", "type": PushType,
		"subject": stream, "datacontenttype": "application/json", "data": json.RawMessage(data)}
}

func batch(t testing.TB, evs ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func results(t testing.TB, body []byte) Results {
	t.Helper()
	var r Results
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	return r
}

var batchCT = map[string]string{"Content-Type": ContentTypeBatch}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func problemStatus(err error) int {
	var p *httpx.Problem
	if errors.As(err, &p) {
		return p.Status
	}
	return 0
}
