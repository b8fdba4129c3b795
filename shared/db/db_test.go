package db_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/db/migrate"
	"github.com/myscrollr/connect/shared/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// An empty database gets every table; a second run applies nothing and changes nothing.
func TestMigrateEmptyThenIdempotent(t *testing.T) {
	ctx := context.Background()
	url := emptyDatabase(t)

	applied, err := migrate.UpWithLog(ctx, url, nil)
	if err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	if len(applied) == 0 {
		t.Fatal("first migrate applied nothing on an empty database")
	}
	tables := tableNames(t, url)
	for _, want := range []string{"integrations", "integration_versions", "user_integrations",
		"integration_health", "integration_reviews", "categories", "payments",
		"developer_accounts", "outbox", "processed_events"} {
		if !tables[want] {
			t.Errorf("table %s missing after migrate; have %v", want, tables)
		}
	}

	again, err := migrate.UpWithLog(ctx, url, nil)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if len(again) != 0 {
		t.Fatalf("second migrate applied %v, want nothing", again)
	}
	if got := tableNames(t, url); len(got) != len(tables) {
		t.Fatalf("second migrate changed the tables: %v -> %v", tables, got)
	}
}

// Many instances starting at once apply the migrations exactly once (advisory lock).
func TestMigrateConcurrent(t *testing.T) {
	url := emptyDatabase(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- migrate.Up(context.Background(), url) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM goose_db_version WHERE version_id > 0").Scan(&n); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir("../../schemas/migrations")
	if n != len(entries) {
		t.Fatalf("goose_db_version has %d applied rows, want %d (one per migration file)", n, len(entries))
	}
}

// The schema enforces the contract: ratings 1..5, money non-negative, type enums.
func TestSchemaConstraints(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	var id string
	err := pool.QueryRow(ctx, `INSERT INTO integrations (developer_id, name, display_name, type, delivery_mode, base_url)
		VALUES ('dev_1', 'crypto-ticker', 'Crypto Ticker', 'data_source', 'pull', 'https://ticker.example') RETURNING id`).Scan(&id)
	if err != nil {
		t.Fatalf("valid integration rejected: %v", err)
	}
	bad := map[string]string{
		"rating 6":         `INSERT INTO integration_reviews (user_id, integration_id, rating) VALUES ('u1', '` + id + `', 6)`,
		"negative price":   `INSERT INTO integrations (developer_id, name, display_name, type, base_url, pricing_model, price_cents) VALUES ('d', 'neg-price', 'X', 'widget', 'https://x.example', 'one_time', -1)`,
		"unknown type":     `INSERT INTO integrations (developer_id, name, display_name, type, base_url) VALUES ('d', 'bad-type', 'X', 'plugin', 'https://x.example')`,
		"widget with mode": `INSERT INTO integrations (developer_id, name, display_name, type, delivery_mode, base_url) VALUES ('d', 'bad-mode', 'X', 'widget', 'pull', 'https://x.example')`,
		"duplicate name":   `INSERT INTO integrations (developer_id, name, display_name, type, delivery_mode, base_url) VALUES ('d', 'crypto-ticker', 'X', 'data_source', 'push', 'https://x.example')`,
		"paid free":        `INSERT INTO integrations (developer_id, name, display_name, type, base_url, pricing_model, price_cents) VALUES ('d', 'paid-free', 'X', 'widget', 'https://x.example', 'free', 100)`,
	}
	for name, stmt := range bad {
		if _, err := pool.Exec(ctx, stmt); err == nil {
			t.Errorf("%s: accepted, want a constraint violation", name)
		}
	}
	// One review per user per integration.
	if _, err := pool.Exec(ctx, `INSERT INTO integration_reviews (user_id, integration_id, rating) VALUES ('u1', $1, 5)`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO integration_reviews (user_id, integration_id, rating) VALUES ('u1', $1, 4)`, id); err == nil {
		t.Error("second review by the same user accepted")
	}
}

func TestOpenErrorsDoNotLeakPassword(t *testing.T) {
	_, err := db.Open(context.Background(), "postgres://user:s3cret@127.0.0.1:1/x?connect_timeout=1")
	if err == nil {
		t.Fatal("open to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if _, err := db.Open(context.Background(), "::not a url s3cret"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad url: err=%v", err)
	}
}

func emptyDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := pgx.Identifier{"empty_" + t.Name()}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := pgx.Connect(context.Background(), pgtest.AdminURL())
		if err != nil {
			t.Errorf("cleanup: connect: %v", err)
			return
		}
		defer a.Close(context.Background())
		if _, err := a.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("cleanup: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/empty_" + t.Name()
	return u.String()
}

func tableNames(t *testing.T, url string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// migrate.Open migrates an empty database once and then only checks the version.
func TestMigrateOpen(t *testing.T) {
	ctx := context.Background()
	u := emptyDatabase(t)
	pool, err := migrate.Open(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := db.LatestVersion()
	if err != nil || latest < 1 {
		t.Fatalf("LatestVersion = %d, %v", latest, err)
	}
	var applied int64
	if err := pool.QueryRow(ctx, "SELECT max(version_id) FROM goose_db_version").Scan(&applied); err != nil || applied != latest {
		t.Fatalf("applied version = %d (%v), want %d", applied, err, latest)
	}
	pool.Close()
	// A second start finds the schema current and applies nothing: the version rows stay.
	var rowsBefore, rowsAfter int
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM goose_db_version").Scan(&rowsBefore); err != nil {
		t.Fatal(err)
	}
	pool, err = migrate.Open(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM goose_db_version").Scan(&rowsAfter); err != nil {
		t.Fatal(err)
	}
	if rowsBefore != rowsAfter {
		t.Fatalf("goose_db_version rows %d -> %d on a current schema", rowsBefore, rowsAfter)
	}
}

// On a current schema, a function's start (OpenCurrent) costs one connection and one round trip
// on it: the version query dials the pool's first connection (no separate ping) and is not
// prepared (no prepare round trip). That connection is kept for the function's requests.
func TestOpenCurrentIsOneConnectionOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	u := emptyDatabase(t)
	if err := migrate.Up(ctx, u); err != nil {
		t.Fatal(err)
	}
	pool, err := db.OpenCurrent(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if st := pool.Stat(); st.TotalConns() != 1 || st.NewConnsCount() != 1 {
		t.Fatalf("pool after start: %d connections, %d dialled; want the one the check dialled", st.TotalConns(), st.NewConnsCount())
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	var prepared int
	// Simple protocol, so that this query does not prepare itself and count itself.
	err = c.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements`, pgx.QueryExecModeSimpleProtocol).Scan(&prepared)
	if err != nil {
		t.Fatal(err)
	}
	if prepared != 0 {
		t.Fatalf("%d statements prepared on the start connection; the version check should be one simple query", prepared)
	}
	if st := pool.Stat(); st.NewConnsCount() != 1 {
		t.Fatalf("%d connections dialled, want 1", st.NewConnsCount())
	}
}

// An unreachable server fails OpenCurrent with a connect error naming host and port, and
// without the password.
func TestOpenCurrentUnreachable(t *testing.T) {
	_, err := db.OpenCurrent(context.Background(), "postgres://user:s3cret@127.0.0.1:1/x?connect_timeout=1")
	if err == nil {
		t.Fatal("OpenCurrent on a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "db: connect 127.0.0.1:1") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("want a connect error naming 127.0.0.1:1 without the password, got %v", err)
	}
	for _, bad := range []string{"", "::not a url s3cret"} {
		if _, err := db.OpenCurrent(context.Background(), bad); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("url %q: err=%v", bad, err)
		}
	}
}

// A server that answers but refuses the version query (here: the role may not read goose's
// table) is reported as such, not as unreachable.
func TestOpenCurrentQueryRefused(t *testing.T) {
	ctx := context.Background()
	u := emptyDatabase(t)
	if err := migrate.Up(ctx, u); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := "reader_" + strings.ToLower(t.Name())
	// A new role has no privilege on goose's table: only its owner may read it.
	for _, stmt := range []string{"DROP ROLE IF EXISTS " + role, "CREATE ROLE " + role + " LOGIN"} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		a, err := pgx.Connect(context.Background(), pgtest.AdminURL())
		if err != nil {
			t.Errorf("cleanup: connect: %v", err)
			return
		}
		defer a.Close(context.Background())
		if _, err := a.Exec(context.Background(), "DROP ROLE IF EXISTS "+role); err != nil {
			t.Errorf("cleanup: drop role %s: %v", role, err)
		}
	})
	ru, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	ru.User = url.User(role)
	_, err = db.OpenCurrent(ctx, ru.String())
	if err == nil || !strings.Contains(err.Error(), "db: read schema version") || !strings.Contains(err.Error(), "42501") {
		t.Fatalf("want a read schema version error (insufficient_privilege), got %v", err)
	}
}

// A function never migrates, even when its role could: a database that is behind is refused
// with ErrSchemaBehind naming both versions, and nothing is applied.
func TestOpenCurrentRefusesABehindSchema(t *testing.T) {
	ctx := context.Background()
	u := emptyDatabase(t)
	_, err := db.OpenCurrent(ctx, u)
	latest, lerr := db.LatestVersion()
	if lerr != nil {
		t.Fatal(lerr)
	}
	if !errors.Is(err, db.ErrSchemaBehind) || !strings.Contains(err.Error(), fmt.Sprint(latest)) {
		t.Fatalf("OpenCurrent on an empty database: %v; want ErrSchemaBehind naming version %d", err, latest)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var goose *string
	if err := conn.QueryRow(ctx, "SELECT to_regclass('goose_db_version')::text").Scan(&goose); err != nil {
		t.Fatal(err)
	}
	if goose != nil {
		t.Fatal("OpenCurrent created goose's table: it applied migrations")
	}
}
