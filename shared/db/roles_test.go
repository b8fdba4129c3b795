package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for goose
	"github.com/pressly/goose/v3"

	"github.com/myscrollr/connect/schemas"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/db/migrate"
	"github.com/myscrollr/connect/shared/inbox"
	"github.com/myscrollr/connect/shared/outbox"
	"github.com/myscrollr/connect/shared/pgcluster"
	"github.com/myscrollr/connect/shared/pgtest"
)

// The privilege matrix of the function roles, exactly: a grant added or lost, or a table a
// migration adds without deciding who may use it, changes it. "table.column" is a column grant.
func TestFunctionRoleGrants(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, pgtest.URL(t))
	rows, err := conn.Query(ctx, `
		SELECT r.rolname || ' ' || c.relname || ' ' || a.privilege_type
		FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee
		WHERE c.relnamespace = 'public'::regnamespace AND r.rolname = ANY($1)
		UNION ALL
		SELECT r.rolname || ' ' || c.relname || '.' || att.attname || ' ' || a.privilege_type
		FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid
		CROSS JOIN LATERAL aclexplode(att.attacl) a JOIN pg_roles r ON r.oid = a.grantee
		WHERE c.relnamespace = 'public'::regnamespace AND r.rolname = ANY($1)
		ORDER BY 1`, groupRoles())
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"connect_catalog goose_db_version SELECT",
		"connect_catalog integration_reviews DELETE",
		"connect_catalog integration_reviews INSERT",
		"connect_catalog integration_reviews SELECT",
		"connect_catalog integration_reviews UPDATE",
		"connect_catalog integrations SELECT",
		"connect_catalog integrations.rating_avg UPDATE",
		"connect_catalog integrations.rating_count UPDATE",
		"connect_catalog user_integrations SELECT",
		"connect_health_probe goose_db_version SELECT",
		"connect_health_probe integration_health DELETE",
		"connect_health_probe integration_health INSERT",
		"connect_health_probe integration_health SELECT",
		"connect_health_probe integration_health_id_seq USAGE",
		"connect_health_probe integration_health_state DELETE",
		"connect_health_probe integration_health_state INSERT",
		"connect_health_probe integration_health_state SELECT",
		"connect_health_probe integration_health_state UPDATE",
		"connect_health_probe integration_uptime_spans DELETE",
		"connect_health_probe integration_uptime_spans INSERT",
		"connect_health_probe integration_uptime_spans SELECT",
		"connect_health_probe integration_uptime_spans UPDATE",
		"connect_health_probe integrations SELECT",
		"connect_health_probe integrations.health_checked_at UPDATE",
		"connect_health_probe integrations.health_status UPDATE",
		"connect_health_probe integrations.uptime_24h UPDATE",
		"connect_health_probe integrations.uptime_30d UPDATE",
		"connect_health_probe integrations.uptime_7d UPDATE",
		"connect_health_probe outbox INSERT",
		"connect_ingest goose_db_version SELECT",
		"connect_ingest ingest_events DELETE",
		"connect_ingest ingest_events INSERT",
		"connect_ingest ingest_events SELECT",
		"connect_ingest integration_transforms SELECT",
		"connect_ingest integration_versions SELECT",
		"connect_ingest integrations SELECT",
		"connect_ingest outbox INSERT",
		"connect_ingest record_rejections DELETE",
		"connect_ingest record_rejections INSERT",
		"connect_ingest record_rejections SELECT",
		"connect_ingest record_rejections_id_seq USAGE",
		"connect_ingest records INSERT",
		"connect_ingest records SELECT",
		"connect_ingest records UPDATE",
		"connect_install developer_accounts SELECT",
		"connect_install goose_db_version SELECT",
		"connect_install install_attempts DELETE",
		"connect_install install_attempts INSERT",
		"connect_install install_attempts SELECT",
		"connect_install install_attempts UPDATE",
		"connect_install install_checkouts DELETE",
		"connect_install install_checkouts INSERT",
		"connect_install install_checkouts SELECT",
		"connect_install install_checkouts UPDATE",
		"connect_install install_revocations SELECT",
		"connect_install install_tokens DELETE",
		"connect_install install_tokens INSERT",
		"connect_install install_tokens SELECT",
		"connect_install integrations SELECT",
		"connect_install integrations.install_count UPDATE",
		"connect_install integrations.updated_at UPDATE",
		"connect_install outbox INSERT",
		"connect_install processed_events INSERT",
		"connect_install processed_events SELECT",
		"connect_install subscriptions SELECT",
		"connect_install user_integrations INSERT",
		"connect_install user_integrations SELECT",
		"connect_logto_webhook developer_role_sets INSERT",
		"connect_logto_webhook developer_role_sets SELECT",
		"connect_logto_webhook developer_role_sets UPDATE",
		"connect_logto_webhook developer_roles INSERT",
		"connect_logto_webhook developer_roles SELECT",
		"connect_logto_webhook developer_roles UPDATE",
		"connect_logto_webhook goose_db_version SELECT",
		"connect_logto_webhook logto_tombstones DELETE",
		"connect_logto_webhook logto_tombstones INSERT",
		"connect_logto_webhook logto_tombstones SELECT",
		"connect_logto_webhook logto_tombstones UPDATE",
		"connect_logto_webhook outbox INSERT",
		"connect_logto_webhook processed_events INSERT",
		"connect_notify goose_db_version SELECT",
		"connect_notify integrations SELECT",
		"connect_notify lifecycle_deliveries INSERT",
		"connect_notify lifecycle_deliveries SELECT",
		"connect_notify lifecycle_deliveries UPDATE",
		"connect_notify lifecycle_endpoints_disabled DELETE",
		"connect_notify lifecycle_endpoints_disabled INSERT",
		"connect_notify lifecycle_endpoints_disabled SELECT",
		"connect_notify lifecycle_events INSERT",
		"connect_notify lifecycle_events SELECT",
		"connect_notify lifecycle_events_seq_seq USAGE",
		"connect_notify outbox INSERT",
		"connect_notify processed_events INSERT",
		"connect_poll goose_db_version SELECT",
		"connect_poll integration_transforms SELECT",
		"connect_poll integrations SELECT",
		"connect_poll outbox INSERT",
		"connect_poll poll_sources DELETE",
		"connect_poll poll_sources INSERT",
		"connect_poll poll_sources SELECT",
		"connect_poll poll_sources UPDATE",
		"connect_poll record_rejections DELETE",
		"connect_poll record_rejections INSERT",
		"connect_poll record_rejections SELECT",
		"connect_poll record_rejections_id_seq USAGE",
		"connect_poll records INSERT",
		"connect_poll records SELECT",
		"connect_poll records UPDATE",
		"connect_registry categories SELECT",
		"connect_registry developer_accounts INSERT",
		"connect_registry developer_accounts SELECT",
		"connect_registry developer_accounts UPDATE",
		"connect_registry goose_db_version SELECT",
		"connect_registry integration_checks INSERT",
		"connect_registry integration_checks SELECT",
		"connect_registry integration_tier_changes INSERT",
		"connect_registry integration_tier_changes SELECT",
		"connect_registry integration_tier_changes_id_seq USAGE",
		"connect_registry integration_transforms INSERT",
		"connect_registry integration_transforms SELECT",
		"connect_registry integration_transforms UPDATE",
		"connect_registry integration_versions INSERT",
		"connect_registry integration_versions SELECT",
		"connect_registry integrations INSERT",
		"connect_registry integrations SELECT",
		"connect_registry integrations.base_url UPDATE",
		"connect_registry integrations.category UPDATE",
		"connect_registry integrations.client_secret_sealed UPDATE",
		"connect_registry integrations.currency UPDATE",
		"connect_registry integrations.current_version UPDATE",
		"connect_registry integrations.deprecated_at UPDATE",
		"connect_registry integrations.deprecation_message UPDATE",
		"connect_registry integrations.deprecation_replacement UPDATE",
		"connect_registry integrations.deprecation_sunset UPDATE",
		"connect_registry integrations.description UPDATE",
		"connect_registry integrations.display_name UPDATE",
		"connect_registry integrations.is_published UPDATE",
		"connect_registry integrations.latest_version UPDATE",
		"connect_registry integrations.manifest UPDATE",
		"connect_registry integrations.price_cents UPDATE",
		"connect_registry integrations.pricing_model UPDATE",
		"connect_registry integrations.published_at UPDATE",
		"connect_registry integrations.tags UPDATE",
		"connect_registry integrations.updated_at UPDATE",
		"connect_registry integrations.verification_tier UPDATE",
		"connect_registry outbox INSERT",
		"connect_registry payments SELECT",
		"connect_registry subscriptions SELECT",
		"connect_registry user_integrations SELECT",
		"connect_registry verification_requests INSERT",
		"connect_registry verification_requests SELECT",
		"connect_registry verification_requests UPDATE",
		"connect_relay goose_db_version SELECT",
		"connect_relay outbox DELETE",
		"connect_relay outbox SELECT",
		"connect_relay processed_events DELETE",
		"connect_relay processed_events SELECT",
		"connect_relay processed_events.processed_at UPDATE",
		"connect_stripe_webhook developer_accounts INSERT",
		"connect_stripe_webhook developer_accounts SELECT",
		"connect_stripe_webhook developer_accounts UPDATE",
		"connect_stripe_webhook goose_db_version SELECT",
		"connect_stripe_webhook integrations SELECT",
		"connect_stripe_webhook integrations.is_published UPDATE",
		"connect_stripe_webhook integrations.updated_at UPDATE",
		"connect_stripe_webhook outbox INSERT",
		"connect_stripe_webhook payments INSERT",
		"connect_stripe_webhook payments SELECT",
		"connect_stripe_webhook payments UPDATE",
		"connect_stripe_webhook processed_events INSERT",
		"connect_stripe_webhook stripe_object_versions INSERT",
		"connect_stripe_webhook stripe_object_versions SELECT",
		"connect_stripe_webhook stripe_object_versions UPDATE",
		"connect_stripe_webhook subscriptions INSERT",
		"connect_stripe_webhook subscriptions SELECT",
		"connect_stripe_webhook subscriptions UPDATE",
		"connect_uninstall goose_db_version SELECT",
		"connect_uninstall install_revocations INSERT",
		"connect_uninstall install_revocations SELECT",
		"connect_uninstall install_revocations UPDATE",
		"connect_uninstall integration_reviews DELETE",
		"connect_uninstall integration_reviews SELECT",
		"connect_uninstall integrations SELECT",
		"connect_uninstall integrations.install_count UPDATE",
		"connect_uninstall integrations.rating_avg UPDATE",
		"connect_uninstall integrations.rating_count UPDATE",
		"connect_uninstall integrations.updated_at UPDATE",
		"connect_uninstall outbox INSERT",
		"connect_uninstall processed_events INSERT",
		"connect_uninstall processed_events SELECT",
		"connect_uninstall user_integrations DELETE",
		"connect_uninstall user_integrations SELECT",
		"connect_uninstall user_integrations.installed_at UPDATE",
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("grants differ\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}

	// The group roles cannot log in and hold no attribute; the login roles hold only LOGIN, and
	// REPLICATION for the relay alone. None may create anything in the database.
	for _, fn := range db.Functions {
		for _, role := range []string{db.FunctionRole(fn), db.LoginRole(fn)} {
			var login, repl, other, create bool
			err := conn.QueryRow(ctx, `SELECT rolcanlogin, rolreplication,
				rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls,
				has_database_privilege(rolname, current_database(), 'CREATE') OR has_schema_privilege(rolname, 'public', 'CREATE')
				FROM pg_roles WHERE rolname = $1`, role).Scan(&login, &repl, &other, &create)
			if err != nil {
				t.Fatalf("role %s: %v", role, err)
			}
			isLogin := role == db.LoginRole(fn)
			if login != isLogin || repl != (isLogin && fn == db.ReplicationFunction) || other || create {
				t.Errorf("role %s: login=%v replication=%v super/createdb/createrole/bypassrls=%v create=%v", role, login, repl, other, create)
			}
		}
	}
}

func groupRoles() []string {
	var out []string
	for _, fn := range db.Functions {
		out = append(out, db.FunctionRole(fn))
	}
	return out
}

// check is one statement run as a function's login role, in a transaction rolled back after,
// and whether the role may run it.
type check struct {
	name    string
	sql     string
	args    []any
	allowed bool
}

// Each function's role can run its function's statements and is refused (insufficient
// privilege) everything else tried here: other functions' tables, writes it does not make,
// DDL. The statements are the functions' own (or shaped like them).
func TestFunctionRolesIsolated(t *testing.T) {
	const (
		integ  = "11111111-1111-1111-1111-111111111111"
		instID = "22222222-2222-2222-2222-222222222222"
	)
	common := []check{
		{"version check", `SELECT max(version_id) FROM goose_db_version WHERE is_applied`, nil, true},
		{"create table", `CREATE TABLE mine (x int)`, nil, false},
		{"drop publication", `DROP PUBLICATION connect_outbox`, nil, false},
		{"read payments", `SELECT count(*) FROM payments`, nil, false},
		{"write payments", `DELETE FROM payments`, nil, false},
		{"read developer_accounts", `SELECT count(*) FROM developer_accounts`, nil, false},
	}
	byFunction := map[string][]check{
		"catalog": {
			{"list published", `SELECT id, name, display_name, install_count FROM integrations WHERE is_published ORDER BY install_count DESC, id DESC LIMIT 10`, nil, true},
			{"insert integrations", `INSERT INTO integrations (developer_id, name, display_name, type, base_url) VALUES ('d', 'x-widget', 'X', 'widget', 'https://x.example')`, nil, false},
			{"publish", `UPDATE integrations SET is_published = false`, nil, false},
			{"read tombstones", `SELECT count(*) FROM logto_tombstones`, nil, false},
			{"read processed_events", `SELECT count(*) FROM processed_events`, nil, false},
			{"claim an event", `INSERT INTO processed_events (consumer, source, id) VALUES ('c', 's', 'i') ON CONFLICT DO NOTHING`, nil, false},
			{"write outbox", `INSERT INTO outbox (id, aggregatetype, aggregateid, type, source) VALUES (gen_random_uuid(), 'a', 'b', 't', 's')`, nil, false},
			{"read installs (only who may review)", `SELECT count(*) FROM user_integrations WHERE user_id = 'u'`, nil, true},
			{"change installs", `DELETE FROM user_integrations`, nil, false},
			{"write a review", `INSERT INTO integration_reviews (user_id, integration_id, rating) VALUES ('u', '` + integ + `', 5)`, nil, true},
			{"change install counts", `UPDATE integrations SET install_count = 0`, nil, false},
			{"read developer_roles", `SELECT count(*) FROM developer_roles`, nil, false},
			{"create slot", `SELECT pg_create_logical_replication_slot('catalog_slot', 'pgoutput', true)`, nil, false},
		},
		"install": {
			{"advisory lock", `SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))`, []any{"user_1", integ}, true},
			{"listing", `SELECT id, developer_id, logto_app_id, client_secret_sealed, is_published, pricing_model, manifest->'scopes' FROM integrations WHERE name = 'ticker'`, nil, true},
			{"revoked since", `SELECT revoked_at FROM install_revocations WHERE user_id = $1 AND integration_id = $2`, []any{"user_1", integ}, true},
			{"attempt", `INSERT INTO install_attempts (id, user_id, integration_id, scopes, sandbox, status, created_at)
				VALUES (gen_random_uuid(), 'u2', $1, '{}', false, 'awaiting_payment', now())`, []any{integ}, true},
			{"consume state", `UPDATE install_attempts SET status = 'exchanging' WHERE state_hash = $1 AND status = 'awaiting_consent' RETURNING id`, []any{make([]byte, 32)}, true},
			{"record install", `INSERT INTO user_integrations (id, user_id, integration_id, scopes, sandbox, installed_at)
				VALUES (gen_random_uuid(), 'u2', $1, '{}', false, now()) ON CONFLICT (user_id, integration_id) DO NOTHING RETURNING id`, []any{integ}, true},
			{"install count", `UPDATE integrations SET install_count = install_count + 1, updated_at = now() WHERE id = $1`, []any{integ}, true},
			{"keep tokens", `INSERT INTO install_tokens (install_id, sealed, expires_at, created_at) VALUES ($1, 'k1.x', now(), now())`, []any{instID}, true},
			{"claim tokens", `WITH c AS (DELETE FROM install_tokens WHERE install_id = $1 RETURNING sealed, expires_at) SELECT count(*) FROM c`, []any{instID}, true},
			{"publish", `UPDATE integrations SET is_published = true WHERE id = $1`, []any{integ}, false},
			{"rating", `UPDATE integrations SET rating_avg = 5 WHERE id = $1`, []any{integ}, false},
			{"delete install", `DELETE FROM user_integrations WHERE id = $1`, []any{instID}, false},
			{"change scopes", `UPDATE user_integrations SET scopes = '{}' WHERE id = $1`, []any{instID}, false},
			{"mark revoked", `INSERT INTO install_revocations (user_id, integration_id, revoked_at) VALUES ('user_1', $1, now())`, []any{integ}, false},
			{"read reviews", `SELECT count(*) FROM integration_reviews`, nil, false},
			{"read outbox", `SELECT count(*) FROM outbox`, nil, false},
			{"read processed_events (payment.succeeded claims, migration 00016)", `SELECT count(*) FROM processed_events`, nil, true},
			{"create slot", `SELECT pg_create_logical_replication_slot('install_slot', 'pgoutput', true)`, nil, false},
			{"read developer_accounts", `SELECT count(*) FROM developer_accounts`, nil, true},
		},
		"uninstall": {
			{"list installs for update", `SELECT ui.id::text, ui.integration_id::text, i.name, i.logto_app_id
				FROM user_integrations ui JOIN integrations i ON i.id = ui.integration_id
				WHERE ui.user_id = $1 ORDER BY ui.installed_at, ui.id FOR UPDATE OF ui`, []any{"user_1"}, true},
			{"delete install", `DELETE FROM user_integrations WHERE id = $1`, []any{instID}, true},
			{"install count", `UPDATE integrations SET install_count = greatest(install_count - 1, 0), updated_at = now() WHERE id = $1`, []any{integ}, true},
			{"delete reviews and rate", `WITH d AS (DELETE FROM integration_reviews WHERE user_id = $1 RETURNING integration_id)
				UPDATE integrations i SET rating_avg = coalesce(r.avg, 0), rating_count = coalesce(r.n, 0), updated_at = now()
				FROM (SELECT id FROM unnest($2::uuid[]) AS id) AS t
				LEFT JOIN LATERAL (SELECT round(avg(rating), 2) AS avg, count(*) AS n FROM integration_reviews WHERE integration_id = t.id) AS r ON true
				WHERE i.id = t.id`, []any{"user_1", []string{integ}}, true},
			{"publish", `UPDATE integrations SET is_published = false WHERE id = $1`, []any{integ}, false},
			{"change price", `UPDATE integrations SET price_cents = 0 WHERE id = $1`, []any{integ}, false},
			{"insert integrations", `INSERT INTO integrations (developer_id, name, display_name, type, base_url) VALUES ('d', 'x-widget', 'X', 'widget', 'https://x.example')`, nil, false},
			{"insert install", `INSERT INTO user_integrations (user_id, integration_id) VALUES ('u2', $1)`, []any{integ}, false},
			{"read developer_roles", `SELECT count(*) FROM developer_roles`, nil, false},
			{"write developer_roles", `UPDATE developer_roles SET active = false`, nil, false},
			{"read tombstones", `SELECT count(*) FROM logto_tombstones`, nil, false},
			{"read outbox", `SELECT count(*) FROM outbox`, nil, false},
			{"delete outbox", `DELETE FROM outbox`, nil, false},
			{"prune claims", `DELETE FROM processed_events`, nil, false},
			{"create slot", `SELECT pg_create_logical_replication_slot('uninstall_slot', 'pgoutput', true)`, nil, false},
		},
		"logto-webhook": {
			{"set role", `INSERT INTO developer_roles (user_id, role_id, role_name, active, changed_at) VALUES ('u', 'r', 'developer', true, now())
				ON CONFLICT (user_id, role_id) DO UPDATE SET role_name = coalesce(EXCLUDED.role_name, developer_roles.role_name), active = EXCLUDED.active,
				changed_at = EXCLUDED.changed_at, updated_at = now() WHERE developer_roles.changed_at < EXCLUDED.changed_at`, nil, true},
			{"role set", `INSERT INTO developer_role_sets (user_id, set_at) VALUES ('u', now())
				ON CONFLICT (user_id) DO UPDATE SET set_at = greatest(developer_role_sets.set_at, EXCLUDED.set_at)`, nil, true},
			{"bury", `INSERT INTO logto_tombstones (kind, id, deleted_at, recorded_at) VALUES ('user', 'u', now(), now()) ON CONFLICT (kind, id) DO NOTHING`, nil, true},
			{"tombstone update", `UPDATE logto_tombstones SET deleted_at = least(deleted_at, now()) WHERE kind = 'user' AND id = 'u'`, nil, true},
			{"tombstone cleanup", `DELETE FROM logto_tombstones WHERE (kind, id) IN (SELECT kind, id FROM logto_tombstones WHERE recorded_at < now() ORDER BY recorded_at LIMIT 10)`, nil, true},
			{"advisory lock", `SELECT pg_advisory_xact_lock(1, hashtext('u'))`, nil, true},
			{"developers view", `SELECT count(*) FROM developers`, nil, false},
			{"delete developer_roles", `DELETE FROM developer_roles`, nil, false},
			{"read processed_events", `SELECT count(*) FROM processed_events`, nil, false},
			{"read integrations", `SELECT count(*) FROM integrations`, nil, false},
			{"read installs", `SELECT count(*) FROM user_integrations`, nil, false},
			{"read outbox", `SELECT count(*) FROM outbox`, nil, false},
			{"create slot", `SELECT pg_create_logical_replication_slot('logto_slot', 'pgoutput', true)`, nil, false},
		},
		"registry": {
			{"register", `INSERT INTO integrations (id, developer_id, logto_app_id, name, display_name, type, base_url, latest_version, client_secret_sealed)
				VALUES (gen_random_uuid(), 'dev_2', 'app_2', 'x-widget', 'X', 'widget', 'https://x.example', '1.0.0', 'k1.abc')`, nil, true},
			{"version", `INSERT INTO integration_versions (integration_id, version, manifest) VALUES ($1, '2.0.0', '{}')`, []any{integ}, true},
			{"publish", `UPDATE integrations SET is_published = true, published_at = now(), current_version = latest_version, updated_at = now() WHERE id = $1`, []any{integ}, true},
			{"tier", `UPDATE integrations SET verification_tier = 'verified' WHERE id = $1`, []any{integ}, true},
			{"stats", `SELECT count(*) FROM user_integrations WHERE integration_id = $1`, []any{integ}, true},
			{"categories", `SELECT slug FROM categories`, nil, true},
			{"install count", `UPDATE integrations SET install_count = 0 WHERE id = $1`, []any{integ}, false},
			{"health", `UPDATE integrations SET health_status = 'healthy' WHERE id = $1`, []any{integ}, false},
			{"rating", `UPDATE integrations SET rating_avg = 5 WHERE id = $1`, []any{integ}, false},
			{"delete integration", `DELETE FROM integrations WHERE id = $1`, []any{integ}, false},
			{"insert install", `INSERT INTO user_integrations (user_id, integration_id) VALUES ('u2', $1)`, []any{integ}, false},
			{"read reviews", `SELECT count(*) FROM integration_reviews`, nil, false},
			{"read outbox", `SELECT count(*) FROM outbox`, nil, false},
			{"read developer_roles", `SELECT count(*) FROM developer_roles`, nil, false},
			{"create slot", `SELECT pg_create_logical_replication_slot('registry_slot', 'pgoutput', true)`, nil, false},
			{"read payments", `SELECT count(*) FROM payments`, nil, true},
			{"read developer_accounts", `SELECT count(*) FROM developer_accounts`, nil, true},
			{"onboard", `INSERT INTO developer_accounts (developer_id, stripe_account_id) VALUES ('dev_1', 'acct_1')
				ON CONFLICT (developer_id) DO UPDATE SET stripe_account_id = coalesce(developer_accounts.stripe_account_id, EXCLUDED.stripe_account_id)`, nil, true},
			{"active subscriptions", `SELECT count(*) FROM subscriptions WHERE status = 'active'`, nil, true},
		},
		"stripe-webhook": {
			{"read payments", `SELECT count(*) FROM payments`, nil, true},
			{"read developer_accounts", `SELECT count(*) FROM developer_accounts`, nil, true},
			{"record payment", `INSERT INTO payments (user_id, integration_id, stripe_object_id, amount_cents, platform_fee_cents, currency, status)
				VALUES ('u', $1, 'cs_1', 500, 75, 'usd', 'succeeded')`, []any{integ}, true},
			{"subscription", `INSERT INTO subscriptions (stripe_subscription_id, user_id, integration_id, status) VALUES ('sub_1', 'u', $1, 'active')`, []any{integ}, true},
			{"object version", `INSERT INTO stripe_object_versions (object_id, event_created, event_id) VALUES ('sub_1', 1, 'evt_1')`, nil, true},
			{"unpublish", `UPDATE integrations SET is_published = false, updated_at = now() WHERE developer_id = 'dev_1'`, nil, true},
			{"change price", `UPDATE integrations SET price_cents = 0 WHERE id = $1`, []any{integ}, false},
			{"delete payments", `DELETE FROM payments`, nil, false},
			{"read installs", `SELECT count(*) FROM user_integrations`, nil, false},
			{"read outbox", `SELECT count(*) FROM outbox`, nil, false},
			{"read processed_events", `SELECT count(*) FROM processed_events`, nil, false},
			{"read developer_roles", `SELECT count(*) FROM developer_roles`, nil, false},
			{"create slot", `SELECT pg_create_logical_replication_slot('stripe_slot', 'pgoutput', true)`, nil, false},
		},
		"notify": {
			{"integration", `SELECT name, type, base_url, manifest->'app'->>'lifecycle', developer_id, logto_app_id FROM integrations WHERE id = $1`, []any{integ}, true},
			{"claim an event", `INSERT INTO processed_events (consumer, source, id) VALUES ('notify', 's', 'i') ON CONFLICT DO NOTHING`, nil, true},
			{"write outbox", `INSERT INTO outbox (id, aggregatetype, aggregateid, type, source) VALUES (gen_random_uuid(), 'a', 'b', 't', 's')`, nil, true},
			{"lifecycle event", `INSERT INTO lifecycle_events (id, integration_id, type, install_id, body) VALUES (gen_random_uuid(), $1, 'com.myscrollr.connect.lifecycle.install', 'i', '{}')`, []any{integ}, true},
			{"claim due deliveries", `SELECT event_id FROM lifecycle_deliveries WHERE status = 'pending' AND next_attempt_at <= now() FOR UPDATE SKIP LOCKED`, nil, true},
			{"disable an endpoint", `INSERT INTO lifecycle_endpoints_disabled (integration_id, disabled_at, event_id) VALUES ($1, now(), gen_random_uuid())`, []any{integ}, true},
			{"delete deliveries", `DELETE FROM lifecycle_deliveries`, nil, false},
			{"rewrite lifecycle events", `UPDATE lifecycle_events SET body = '{}'`, nil, false},
			{"read installs", `SELECT count(*) FROM user_integrations`, nil, false},
			{"change integrations", `UPDATE integrations SET base_url = 'https://x.example'`, nil, false},
			{"read processed_events", `SELECT count(*) FROM processed_events`, nil, false},
			{"read tombstones", `SELECT count(*) FROM logto_tombstones`, nil, false},
		},
		"relay": {
			{"publication", `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'connect_outbox')`, nil, true},
			{"retained WAL", `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint FROM pg_replication_slots WHERE slot_name = 'connect_relay'`, nil, true},
			{"outbox cleanup", `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE created_at < now() ORDER BY created_at LIMIT 5000)`, nil, true},
			{"create slot", `SELECT pg_create_logical_replication_slot('relay_test_slot', 'pgoutput', true)`, nil, true},
			{"write outbox", `INSERT INTO outbox (id, aggregatetype, aggregateid, type, source) VALUES (gen_random_uuid(), 'a', 'b', 't', 's')`, nil, false},
			{"claim an event", `INSERT INTO processed_events (consumer, source, id) VALUES ('c', 's', 'i') ON CONFLICT DO NOTHING`, nil, false},
			{"read integrations", `SELECT count(*) FROM integrations`, nil, false},
			{"read tombstones", `SELECT count(*) FROM logto_tombstones`, nil, false},
			{"create publication", `CREATE PUBLICATION mine FOR TABLE outbox`, nil, false},
		},
	}
	for _, fn := range db.Functions {
		t.Run(fn, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ownerURL, fnURL := pgtest.FunctionURL(t, fn)
			owner := connect(t, ownerURL)
			seed := []string{
				`INSERT INTO integrations (id, developer_id, name, display_name, type, base_url, is_published, published_at, install_count, logto_app_id)
					VALUES ('` + integ + `', 'dev_1', 'ticker', 'Ticker', 'widget', 'https://t.example', true, now(), 1, 'app_1')`,
				`INSERT INTO user_integrations (id, user_id, integration_id) VALUES ('` + instID + `', 'user_1', '` + integ + `')`,
				`INSERT INTO integration_reviews (user_id, integration_id, rating) VALUES ('user_1', '` + integ + `', 4)`,
				`INSERT INTO outbox (id, aggregatetype, aggregateid, type, source, created_at) VALUES (gen_random_uuid(), 'a', 'b', 't', 's', now() - interval '2 days')`,
				`INSERT INTO developer_roles (user_id, role_id, role_name, active, changed_at) VALUES ('u', 'r', 'developer', true, now() - interval '1 day')`,
				`INSERT INTO logto_tombstones (kind, id, deleted_at, recorded_at) VALUES ('role', 'old', now(), now() - interval '60 days')`,
			}
			for _, s := range seed {
				if _, err := owner.Exec(ctx, s); err != nil {
					t.Fatalf("seed: %v", err)
				}
			}
			as := connect(t, fnURL)
			var who string
			if err := as.QueryRow(ctx, `SELECT current_user`).Scan(&who); err != nil || who != db.LoginRole(fn) {
				t.Fatalf("connected as %q (%v), want %s", who, err, db.LoginRole(fn))
			}
			// A function's own check overrides the common one of the same name (the registry
			// and stripe-webhook read payments and developer_accounts).
			var checks []check
			for _, c := range common {
				if !slices.ContainsFunc(byFunction[fn], func(o check) bool { return o.name == c.name }) {
					checks = append(checks, c)
				}
			}
			for _, c := range append(checks, byFunction[fn]...) {
				tx, err := as.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				tag, err := tx.Exec(ctx, c.sql, c.args...)
				if rbErr := tx.Rollback(ctx); rbErr != nil {
					t.Fatalf("%s: rollback: %v", c.name, rbErr)
				}
				switch {
				case c.allowed && err != nil:
					t.Errorf("%s: %s may not: %v", c.name, fn, err)
				case c.allowed && strings.HasPrefix(c.sql, "DELETE") && tag.RowsAffected() == 0:
					t.Errorf("%s: deleted nothing; the seed should give it a row", c.name)
				case !c.allowed && !isCode(err, "42501"):
					t.Errorf("%s: %s may, want insufficient_privilege (42501); got %v", c.name, fn, err)
				}
			}
		})
	}
}

// The shared packages' SQL, run as the roles of the functions that use it: uninstall and
// logto-webhook claim events and write the outbox; uninstall asks whether it has seen an event;
// the relay prunes every consumer's claims. Roles that do not use them are refused.
func TestSharedPackagesUnderFunctionRoles(t *testing.T) {
	ctx := context.Background()
	ownerURL, _ := pgtest.FunctionURL(t, "relay")
	as := func(fn string) *pgx.Conn {
		u, err := db.URLAs(ownerURL, db.LoginRole(fn))
		if err != nil {
			t.Fatal(err)
		}
		return connect(t, u)
	}
	ce, err := outbox.New("test/roles", "com.myscrollr.connect.test.done", map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"uninstall", "logto-webhook"} {
		conn := as(fn)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if claimed, err := inbox.Claim(ctx, tx, fn, "src", "id-1"); err != nil || !claimed {
			t.Fatalf("%s: inbox.Claim = %v, %v", fn, claimed, err)
		}
		if _, err := outbox.Write(ctx, tx, outbox.Event{AggregateType: "user", AggregateID: "u1", CloudEvent: ce}); err != nil {
			t.Fatalf("%s: outbox.Write: %v", fn, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		// A second delivery of the claimed event: ON CONFLICT DO NOTHING needs no SELECT.
		if claimed, err := inbox.Claim(ctx, conn, fn, "src", "id-1"); err != nil || claimed {
			t.Fatalf("%s: second inbox.Claim = %v, %v; want false, nil", fn, claimed, err)
		}
	}
	if seen, err := inbox.Seen(ctx, as("uninstall"), "uninstall", "src", "id-1"); err != nil || !seen {
		t.Fatalf("uninstall: inbox.Seen = %v, %v", seen, err)
	}
	if _, err := inbox.Seen(ctx, as("logto-webhook"), "logto-webhook", "src", "id-1"); !isCode(err, "42501") {
		t.Fatalf("logto-webhook: inbox.Seen = %v, want insufficient_privilege", err)
	}
	if _, err := inbox.Claim(ctx, as("catalog"), "catalog", "src", "id-2"); !isCode(err, "42501") {
		t.Fatalf("catalog: inbox.Claim = %v, want insufficient_privilege", err)
	}
	if _, err := outbox.Write(ctx, as("relay"), outbox.Event{AggregateType: "user", AggregateID: "u1", CloudEvent: ce}); !isCode(err, "42501") {
		t.Fatalf("relay: outbox.Write = %v, want insufficient_privilege", err)
	}
	n, err := inbox.Prune(ctx, as("relay"), time.Now().Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("relay: inbox.Prune = %d, %v; want the 2 claims", n, err)
	}
	if _, err := inbox.Prune(ctx, as("uninstall"), time.Now().Add(time.Hour)); !isCode(err, "42501") {
		t.Fatalf("uninstall: inbox.Prune = %v, want insufficient_privilege", err)
	}
}

// Only the relay's login role may open a replication connection and create a slot there.
func TestOnlyRelayReplicates(t *testing.T) {
	ctx := context.Background()
	ownerURL, _ := pgtest.FunctionURL(t, "relay")
	for _, fn := range db.Functions {
		u, err := db.URLAs(ownerURL, db.LoginRole(fn))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := pgconn.ParseConfig(u)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["replication"] = "database"
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if fn != db.ReplicationFunction {
			if err == nil {
				conn.Close(ctx)
				t.Errorf("%s opened a replication connection", fn)
			} else if !isCode(err, "42501") {
				t.Errorf("%s: replication connection refused with %v, want insufficient_privilege", fn, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("relay: replication connection: %v", err)
		}
		_, err = conn.Exec(ctx, "CREATE_REPLICATION_SLOT roles_test TEMPORARY LOGICAL pgoutput").ReadAll()
		conn.Close(ctx)
		if err != nil {
			t.Fatalf("relay: create a slot over replication: %v", err)
		}
	}
}

// A function's role starts on a current schema; on a schema behind this build it refuses with
// ErrSchemaBehind naming the versions and its role, and changes nothing. The owner then applies
// the missing migration again, which is safe on a cluster that already has its roles.
func TestOpenCurrentAsFunctionRole(t *testing.T) {
	ctx := context.Background()
	ownerURL, fnURL := pgtest.FunctionURL(t, "catalog")
	pool, err := db.OpenCurrent(ctx, fnURL)
	if err != nil {
		t.Fatalf("catalog's role on a current schema: %v", err)
	}
	pool.Close()

	latest, err := db.LatestVersion()
	if err != nil {
		t.Fatal(err)
	}
	owner := connect(t, ownerURL)
	// Roll the newest migration back (its Down section): the schema is one version behind, and
	// the cluster-wide roles it created stay, as they would where another database uses them.
	if err := downOne(ctx, ownerURL); err != nil {
		t.Fatal(err)
	}
	_, err = db.OpenCurrent(ctx, fnURL)
	wantMsg := fmt.Sprintf("is at version %d and this build needs %d; role %q may not apply migrations", latest-1, latest, db.LoginRole("catalog"))
	if !errors.Is(err, db.ErrSchemaBehind) || !strings.Contains(err.Error(), wantMsg) {
		t.Fatalf("catalog's role on a schema behind: %v; want ErrSchemaBehind saying %q", err, wantMsg)
	}
	var applied int64
	if err := owner.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&applied); err != nil || applied != latest-1 {
		t.Fatalf("after the refusal: version %d (%v), want %d untouched", applied, err, latest-1)
	}

	// The owner re-applies the newest migration over what it already made.
	pool, err = migrate.Open(ctx, ownerURL, nil)
	if err != nil {
		t.Fatalf("owner re-applying version %d: %v", latest, err)
	}
	pool.Close()
	pool, err = db.OpenCurrent(ctx, fnURL)
	if err != nil {
		t.Fatalf("catalog's role after the owner migrated: %v", err)
	}
	pool.Close()
}

// A database never migrated: a function's role is told to run the migrations first.
func TestOpenCurrentAsFunctionRoleEmpty(t *testing.T) {
	u, err := db.URLAs(emptyDatabase(t), db.LoginRole("uninstall"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.OpenCurrent(context.Background(), u)
	if !errors.Is(err, db.ErrSchemaBehind) || !strings.Contains(err.Error(), "has no migrations applied") {
		t.Fatalf("uninstall's role on an empty database: %v; want ErrSchemaBehind", err)
	}
}

// The first migrations of a fresh cluster, in several databases at once, create the roles
// once and all succeed (roles are cluster-wide; the databases do not share a lock).
func TestMigrateManyDatabasesOfAFreshCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Parent: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	admin := connect(t, c.URL("postgres"))
	const n = 4
	for i := range n {
		if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE d%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = migrate.Up(ctx, c.URL(fmt.Sprintf("d%d", i))) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("database d%d: %v", i, err)
		}
	}
	var roles int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = ANY($1) AND NOT rolcanlogin`, groupRoles()).Scan(&roles); err != nil {
		t.Fatal(err)
	}
	if roles != len(db.Functions) {
		t.Fatalf("%d group roles, want %d", roles, len(db.Functions))
	}
	// Each database has its grants and its publication.
	for i := range n {
		conn := connect(t, c.URL(fmt.Sprintf("d%d", i)))
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT has_table_privilege('connect_catalog', 'integrations', 'SELECT')
			AND EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'connect_outbox' AND tablename = 'outbox')`).Scan(&ok); err != nil || !ok {
			t.Errorf("database d%d: grants and publication = %v, %v", i, ok, err)
		}
	}
}

func TestURLAs(t *testing.T) {
	got, err := db.URLAs("postgres://owner:s3cret@/db?host=/tmp/x&port=5432&sslmode=disable", "connect_catalog_login")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if _, hasPw := u.User.Password(); u.User.Username() != "connect_catalog_login" || hasPw || u.Query().Get("host") != "/tmp/x" || u.Path != "/db" {
		t.Fatalf("URLAs = %s", got)
	}
	if _, err := db.URLAs("host=/tmp dbname=x password=s3cret", "u"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("key=value string: err = %v", err)
	}
}

func TestCreateLoginRefusesBadInput(t *testing.T) {
	conn := connect(t, pgtest.AdminURL())
	if err := db.CreateLogin(context.Background(), conn, "catalog", "x'; DROP ROLE postgres; --"); err == nil {
		t.Fatal("a role name with SQL in it was accepted")
	}
	if err := db.CreateLogin(context.Background(), conn, "no-such-function", "connect_no_such_function_login"); err == nil {
		t.Fatal("a function without a role was accepted")
	}
}

func connect(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// Version (command migrate -check) reads 0 on a database never migrated, then the newest.
func TestVersion(t *testing.T) {
	ctx := context.Background()
	u := emptyDatabase(t)
	latest, err := db.LatestVersion()
	if err != nil {
		t.Fatal(err)
	}
	if applied, l, err := db.Version(ctx, u); err != nil || applied != 0 || l != latest {
		t.Fatalf("empty: Version = %d, %d, %v; want 0, %d", applied, l, err, latest)
	}
	if err := migrate.Up(ctx, u); err != nil {
		t.Fatal(err)
	}
	if applied, _, err := db.Version(ctx, u); err != nil || applied != latest {
		t.Fatalf("migrated: Version = %d, %v; want %d", applied, err, latest)
	}
}

// downOne rolls the newest applied migration back through goose, as an operator would.
func downOne(ctx context.Context, url string) error {
	migrations, err := fs.Sub(schemas.Migrations, "migrations")
	if err != nil {
		return err
	}
	sqlDB, err := sql.Open("pgx", url)
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations)
	if err != nil {
		return err
	}
	_, err = p.Down(ctx)
	return err
}
