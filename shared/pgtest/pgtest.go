// Package pgtest gives tests a real PostgreSQL database of their own, with the marketplace
// schema applied.
//
// A test package calls Main from its TestMain. Main uses the server named by
// TEST_DATABASE_URL when it is set (CI may start one server for every package), and otherwise
// starts a throwaway cluster (package pgcluster) for the package and removes it afterwards.
// Each call to URL or Pool creates a fresh database by cloning a template database that has the
// migrations applied, so tests can commit, run in parallel and never see each other's rows. The
// template's name carries a hash of the migrations, so a changed schema gets a new template.
//
// Each function's least-privilege login role (db.LoginRole, a member of db.FunctionRole) is
// created on the server once, beside the template; FunctionURL gives a fresh database and a
// URL that logs in as it, so a test can check what a function's role may and may not do.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/schemas"
	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/db/migrate"
	"github.com/myscrollr/connect/shared/pgcluster"
)

var (
	mu       sync.Mutex
	adminURL string // a database on the server used for CREATE/DROP DATABASE
	cluster  *pgcluster.Cluster
	template string
	started  bool
)

// Main starts (or connects to) the server, runs the tests and cleans up. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stop:", err)
		}
	}
	return code
}

func setup() error {
	mu.Lock()
	defer mu.Unlock()
	started = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		adminURL = u
	} else {
		c, err := pgcluster.Start(ctx, pgcluster.Options{})
		if err != nil {
			return err
		}
		cluster = c
		adminURL = c.URL("postgres")
	}
	name, err := ensureTemplate(ctx)
	if err != nil {
		if cluster != nil {
			cluster.Stop()
		}
		return err
	}
	template = name
	return nil
}

// Cluster is the throwaway cluster of this test binary, or nil when TEST_DATABASE_URL is used.
// Fault-injection tests restart it.
func Cluster() *pgcluster.Cluster { return cluster }

// URL creates a fresh, migrated database for this test and returns its URL. The database is
// dropped when the test ends.
func URL(tb testing.TB) string {
	tb.Helper()
	mu.Lock()
	ok := started
	mu.Unlock()
	if !ok {
		tb.Fatal("pgtest: call pgtest.Main from the package's TestMain")
	}
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer admin.Close(ctx)
	// CREATE DATABASE ... TEMPLATE fails if another session is connected to the template; the
	// template is only ever connected to while it is being built, under the lock.
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		admin, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			tb.Errorf("pgtest: connect for drop: %v", err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(tb, adminURL, name)
}

// FunctionURL is URL plus a second URL to the same database that logs in as function fn's
// login role (db.LoginRole(fn)): owner can seed rows, function has only fn's privileges.
func FunctionURL(tb testing.TB, fn string) (owner, function string) {
	tb.Helper()
	owner = URL(tb)
	function, err := db.URLAs(owner, db.LoginRole(fn))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return owner, function
}

// Pool is URL plus a pool on it, closed when the test ends.
func Pool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	u := URL(tb)
	pool, err := db.Open(context.Background(), u)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		// Close blocks until every connection is returned; a test that failed while holding one
		// (an open transaction, unclosed rows) must not hang the whole run.
		done := make(chan struct{})
		go func() { pool.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			tb.Errorf("pgtest: pool not closed after 10s: the test still holds a connection (open transaction or rows)")
		}
	})
	return pool
}

// AdminURL is the URL of the server's maintenance database, for tests that need it
// (replication slots, server-level settings).
func AdminURL() string { return adminURL }

func withDatabase(tb testing.TB, base, database string) string {
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("pgtest: TEST_DATABASE_URL must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + database
	return u.String()
}

func ensureTemplate(ctx context.Context) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(schemas.Migrations, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := schemas.Migrations.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	name := "connect_tpl_" + hex.EncodeToString(h.Sum(nil))[:12]

	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", redact(adminURL), err)
	}
	defer admin.Close(ctx)
	// Serialize template creation across test binaries sharing one server.
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(727001)"); err != nil {
		return "", err
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock(727001)")
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, createLogins(ctx, admin)
	}
	building := name + "_build"
	admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{building}.Sanitize()); err != nil {
		return "", err
	}
	u, _ := url.Parse(adminURL)
	u.Path = "/" + building
	if err := migrate.Up(ctx, u.String()); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{building}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE true"); err != nil {
		return "", err
	}
	return name, createLogins(ctx, admin)
}

// createLogins makes every function's login role (the migrations made the group roles). It
// runs under the template lock: roles are cluster-wide, and test binaries may share a server.
func createLogins(ctx context.Context, admin *pgx.Conn) error {
	for _, fn := range db.Functions {
		if err := db.CreateLogin(ctx, admin, fn, db.LoginRole(fn)); err != nil {
			return err
		}
	}
	return nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}
