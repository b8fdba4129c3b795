-- +goose Up
-- Push ingest (functions/ingest, issue 11): the push credentials of a push data source, the
-- standard record envelope's columns on records, and the replay keys of pushed events. See
-- docs/decisions/0010-push-ingest.md.

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'connect_ingest') THEN
        BEGIN
            CREATE ROLE connect_ingest NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by this migration in another database of the cluster
        END;
    END IF;
END
$$;
-- +goose StatementEnd

-- A push data source pushes with a machine-to-machine Logto application of its own (client
-- credentials; its role carries data:write), created by the registry at registration:
-- push_client_id is that application's id (the client_id of its tokens), push_role_id the
-- Logto role. The integration's main application (logto_app_id) is a third-party web app and
-- cannot use client credentials.
ALTER TABLE integrations
    ADD COLUMN push_client_id text UNIQUE CHECK (length(push_client_id) BETWEEN 1 AND 128),
    ADD COLUMN push_role_id   text CHECK (length(push_role_id) BETWEEN 1 AND 128),
    ADD CONSTRAINT integrations_push_client_check CHECK (push_client_id IS NULL OR delivery_mode = 'push');

-- The standard record envelope (schemas/json/record.json): besides integration, stream, key and
-- data, the user a record is about (optional), when the source observed it, and the version of
-- the manifest (push) or of the schema (pull) it was validated against.
ALTER TABLE records
    ADD COLUMN user_id        text CHECK (length(user_id) BETWEEN 1 AND 128),
    ADD COLUMN observed_at    timestamptz,
    ADD COLUMN schema_version text CHECK (length(schema_version) BETWEEN 1 AND 128);

-- Replay keys: a pushed CloudEvent is stored once per (integration, source, id), whichever way
-- it came (HTTP or Kafka). Kept for a retention (INGEST_REPLAY_RETENTION) and pruned by ingest.
CREATE TABLE ingest_events (
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    source         text NOT NULL CHECK (length(source) BETWEEN 1 AND 512),
    id             text NOT NULL CHECK (length(id) BETWEEN 1 AND 256),
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, source, id)
);
CREATE INDEX ingest_events_age_idx ON ingest_events (received_at);

-- ---------------------------------------------------------------------------------------------
-- Grants (the whole matrix: shared/db's TestFunctionRoleGrants)

-- ingest: reads push sources and their manifest versions, upserts records, records and prunes
-- rejections and replay keys, announces records on connect.data.
GRANT SELECT ON goose_db_version TO connect_ingest;
GRANT SELECT ON integrations TO connect_ingest;
GRANT SELECT ON integration_versions TO connect_ingest;
GRANT SELECT, INSERT, UPDATE ON records TO connect_ingest;
GRANT SELECT, INSERT, DELETE ON record_rejections TO connect_ingest;
GRANT USAGE ON SEQUENCE record_rejections_id_seq TO connect_ingest;
GRANT SELECT, INSERT, DELETE ON ingest_events TO connect_ingest;
GRANT INSERT ON outbox TO connect_ingest;

-- +goose Down
REVOKE ALL ON goose_db_version, integrations, integration_versions, records, record_rejections, outbox
    FROM connect_ingest;
REVOKE ALL ON SEQUENCE record_rejections_id_seq FROM connect_ingest;
DROP TABLE ingest_events;
ALTER TABLE records DROP COLUMN schema_version, DROP COLUMN observed_at, DROP COLUMN user_id;
ALTER TABLE integrations DROP CONSTRAINT integrations_push_client_check,
    DROP COLUMN push_role_id, DROP COLUMN push_client_id;
