-- +goose Up
-- Least privilege: one group role (NOLOGIN) per function, holding exactly the privileges that
-- function's SQL needs, and the relay's publication. See docs/decisions/0004-database-roles.md.
--
-- Roles are cluster-wide, grants are per database. The roles are created only when missing
-- (another database of the cluster, or a test database cloned from a template, may have created
-- them first, even concurrently), and GRANT is idempotent, so this runs safely in any number of
-- databases of one cluster. The deployment creates the LOGIN roles the functions connect as,
-- each a member of its function's group role; the relay's login role must itself have the
-- REPLICATION attribute, which is never inherited through membership.
--
-- Every table a later migration adds is granted, in that migration, to the functions that use
-- it, and nothing else is: shared/db's TestFunctionRoleGrants holds the whole matrix.

-- +goose StatementBegin
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['connect_catalog', 'connect_uninstall', 'connect_logto_webhook', 'connect_relay'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by this migration in another database of the cluster
            END;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- Every function checks the schema version at start (shared/db.OpenMigrated).
GRANT SELECT ON goose_db_version TO connect_catalog, connect_uninstall, connect_logto_webhook, connect_relay;

-- catalog: reads published listings.
GRANT SELECT ON integrations TO connect_catalog;

-- uninstall: removes a user's installs and reviews, keeps the counters of integrations, claims
-- the event (shared/inbox: Seen, Claim) and announces the revocation (shared/outbox).
-- SELECT ... FOR UPDATE OF user_integrations needs UPDATE on at least one column: installed_at
-- is the one granted; the role may delete those rows anyway.
GRANT SELECT ON integrations TO connect_uninstall;
GRANT UPDATE (install_count, rating_avg, rating_count, updated_at) ON integrations TO connect_uninstall;
GRANT SELECT, DELETE ON user_integrations TO connect_uninstall;
GRANT UPDATE (installed_at) ON user_integrations TO connect_uninstall;
GRANT SELECT, DELETE ON integration_reviews TO connect_uninstall;
GRANT SELECT, INSERT ON processed_events TO connect_uninstall;
GRANT INSERT ON outbox TO connect_uninstall;

-- logto-webhook: platform roles and their ordering state, its tombstones (and their
-- retention), the claim of each delivery (inbox.Claim: INSERT ... ON CONFLICT DO NOTHING,
-- which needs no SELECT) and its events.
GRANT SELECT, INSERT, UPDATE ON developer_roles TO connect_logto_webhook;
GRANT SELECT, INSERT, UPDATE ON developer_role_sets TO connect_logto_webhook;
GRANT SELECT, INSERT, UPDATE, DELETE ON logto_tombstones TO connect_logto_webhook;
GRANT INSERT ON processed_events TO connect_logto_webhook;
GRANT INSERT ON outbox TO connect_logto_webhook;

-- relay: streams the outbox through the publication below (replication reads the WAL, not the
-- table), deletes relayed rows after their retention and prunes every consumer's inbox claims
-- (inbox.Prune: its SELECT ... FOR UPDATE SKIP LOCKED needs UPDATE on one column).
GRANT SELECT, DELETE ON outbox TO connect_relay;
GRANT SELECT, DELETE ON processed_events TO connect_relay;
GRANT UPDATE (processed_at) ON processed_events TO connect_relay;

-- The relay's publication (functions/relay, RELAY_PUBLICATION's default). Creating it needs
-- ownership of outbox, which only the migration owner has; the relay creates it only when it
-- is missing and its role may (local runs, tests). The slot is the relay's: `relay -setup`.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'connect_outbox') THEN
        CREATE PUBLICATION connect_outbox FOR TABLE outbox WITH (publish = 'insert');
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The roles stay: they are cluster-wide and other databases may grant to them.
DROP PUBLICATION IF EXISTS connect_outbox;
REVOKE ALL ON goose_db_version, integrations, user_integrations, integration_reviews,
    processed_events, outbox, developer_roles, developer_role_sets, logto_tombstones
    FROM connect_catalog, connect_uninstall, connect_logto_webhook, connect_relay;
