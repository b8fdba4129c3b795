package db

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Functions are the functions that use the database, each with a group role of its own
// (FunctionRole) created by migrations 00004, 00005 and 00006 with exactly the privileges its SQL
// needs.
var Functions = []string{"catalog", "health-probe", "ingest", "install", "logto-webhook", "notify", "poll", "registry", "relay", "stripe-webhook", "uninstall"}

// ReplicationFunction is the one function whose login role needs the REPLICATION attribute
// (the relay reads logical replication). The attribute is never inherited through group
// membership, so it is set on the login role itself (CreateLogin, the deployment's SQL).
const ReplicationFunction = "relay"

// FunctionRole is the group role (NOLOGIN) of function fn: "connect_" and fn with "-" as "_",
// e.g. connect_logto_webhook.
func FunctionRole(fn string) string { return "connect_" + strings.ReplaceAll(fn, "-", "_") }

// LoginRole is the name the local stack and the tests give the LOGIN role of function fn,
// FunctionRole(fn)+"_login"; a deployment chooses its own names.
func LoginRole(fn string) string { return FunctionRole(fn) + "_login" }

// Execer runs one statement (a *pgx.Conn, *pgxpool.Pool or pgx.Tx).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// validRoleName reports whether name is what CreateLogin accepts as a role name, since it is
// spliced into SQL: [a-z_][a-z0-9_]{0,62}. (A loop, not a regexp: this package is in every
// function, and a regexp compiled at init costs every cold start.)
func validRoleName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// CreateLogin makes login a LOGIN role that is a member of fn's group role, with REPLICATION
// for the relay (and NOREPLICATION otherwise), creating it when missing; it is safe to run
// again and concurrently. The role has no password: this is for clusters that authenticate
// local connections without one (the local stack's and the tests' throwaway clusters, trust);
// a deployment creates its login roles with passwords (docs/decisions/0004-database-roles.md).
// conn must be a role allowed to create roles and, for the relay, to grant REPLICATION (a
// superuser). The group role must exist: the migrations must have been applied.
func CreateLogin(ctx context.Context, conn Execer, fn, login string) error {
	if !validRoleName(login) {
		return fmt.Errorf("db: login role %q must be 1-63 lower-case letters, digits or _", login)
	}
	known := false
	for _, f := range Functions {
		known = known || f == fn
	}
	if !known {
		return fmt.Errorf("db: function %q has no database role (have %s)", fn, strings.Join(Functions, ", "))
	}
	repl := "NOREPLICATION"
	if fn == ReplicationFunction {
		repl = "REPLICATION"
	}
	group := FunctionRole(fn)
	// One statement, changing only what is not already so: a second run writes nothing, so
	// callers racing on a login that exists cannot collide. Two first runs at once can: the
	// loser sees duplicate_object or unique_violation and leaves the work to the winner.
	stmt := `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '` + login + `') THEN
			CREATE ROLE ` + login + ` LOGIN ` + repl + ` IN ROLE ` + group + `;
		END IF;
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '` + login + `' AND rolcanlogin
				AND rolreplication = ` + fmt.Sprint(repl == "REPLICATION") + `) THEN
			ALTER ROLE ` + login + ` LOGIN ` + repl + `;
		END IF;
		IF NOT EXISTS (SELECT 1 FROM pg_auth_members
				WHERE roleid = '` + group + `'::regrole AND member = '` + login + `'::regrole) THEN
			GRANT ` + group + ` TO ` + login + `;
		END IF;
	EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
	END $$`
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("db: login role %s of %s: %w", login, fn, err)
	}
	return nil
}

// URLAs returns the postgres:// URL rawURL with its user set to user and its password
// removed (the roles CreateLogin makes have none).
func URLAs(rawURL, user string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// url's message would echo the URL, password included.
		return "", errors.New("db: not a postgres:// URL")
	}
	u.User = url.User(user)
	return u.String(), nil
}
