-- +goose Up
-- Health probes and uptime (functions/health-probe), pull-mode polling and normalized records
-- (functions/poll; ingest will write records the same way). See
-- docs/decisions/0005-health-and-records.md.

-- +goose StatementBegin
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['connect_health_probe', 'connect_poll'] LOOP
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

-- ---------------------------------------------------------------------------------------------
-- Health

-- The listing shows uptime over three windows; integrations.uptime_30d exists already. NULL:
-- no check in the window yet.
ALTER TABLE integrations
    ADD COLUMN uptime_24h numeric(5, 2) CHECK (uptime_24h BETWEEN 0 AND 100),
    ADD COLUMN uptime_7d  numeric(5, 2) CHECK (uptime_7d BETWEEN 0 AND 100),
    ADD COLUMN health_checked_at timestamptz;

-- integration_health holds every probe result, but only for a short retention (the probe
-- prunes it, PROBE_CHECK_RETENTION): it is what a developer reads to see why a check failed.
-- status is the result of that one check: healthy (answered in time), degraded (slow, or
-- reported {"status":"degraded"}), offline (failed).
ALTER TABLE integration_health
    ADD COLUMN http_status smallint CHECK (http_status BETWEEN 100 AND 599),
    ADD COLUMN reason text CHECK (length(reason) <= 500);
CREATE INDEX integration_health_age_idx ON integration_health (checked_at);

-- The status machine, one row per probed integration: the status shown on the listing and the
-- runs of consecutive failures and successes that move it.
CREATE TABLE integration_health_state (
    integration_id        uuid PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    status                text NOT NULL DEFAULT 'unknown'
                          CHECK (status IN ('unknown', 'healthy', 'degraded', 'offline')),
    consecutive_failures  integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    consecutive_successes integer NOT NULL DEFAULT 0 CHECK (consecutive_successes >= 0),
    last_checked_at       timestamptz,
    last_changed_at       timestamptz,
    last_response_time_ms integer CHECK (last_response_time_ms >= 0),
    last_reason           text CHECK (length(last_reason) <= 500)
);

-- Uptime, rolled up: consecutive checks with the same outcome (up: healthy or degraded; down:
-- offline) are one span [started_at, ended_at), so the table grows with changes of state, not
-- with checks, and uptime over any window is exact time arithmetic over the spans that overlap
-- it. Spans ended before the longest window (30 days) are pruned by the probe.
CREATE TABLE integration_uptime_spans (
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz NOT NULL,
    up             boolean NOT NULL,
    PRIMARY KEY (integration_id, started_at),
    CHECK (ended_at >= started_at)
);
CREATE INDEX integration_uptime_spans_age_idx ON integration_uptime_spans (ended_at);

-- ---------------------------------------------------------------------------------------------
-- Pull sources and records

-- What poll knows of each pull source: its last valid /schema, the validators of its last
-- responses (conditional requests), when it is due and how it has been failing.
CREATE TABLE poll_sources (
    integration_id           uuid PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    schema                   jsonb,
    schema_etag              text CHECK (length(schema_etag) <= 256),
    schema_last_modified     text CHECK (length(schema_last_modified) <= 64),
    schema_fetched_at        timestamptz,
    data_etag                text CHECK (length(data_etag) <= 256),
    data_last_modified       text CHECK (length(data_last_modified) <= 64),
    refresh_interval_seconds integer NOT NULL DEFAULT 300 CHECK (refresh_interval_seconds BETWEEN 1 AND 86400),
    next_poll_at             timestamptz NOT NULL DEFAULT now(),
    leased_until             timestamptz,
    consecutive_failures     integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_polled_at           timestamptz,
    last_success_at          timestamptz,
    last_error               text CHECK (length(last_error) <= 1000)
);
CREATE INDEX poll_sources_due_idx ON poll_sources (next_poll_at);

-- Normalized records: one row per integration, stream and key, upserted. Each change is
-- announced on connect.data through the outbox in the same transaction (the relay streams the
-- outbox by logical replication), see docs/decisions/0005-health-and-records.md.
CREATE TABLE records (
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    stream         text NOT NULL CHECK (stream ~ '^[a-z][a-z0-9_]{0,62}$'),
    key            text NOT NULL CHECK (length(key) BETWEEN 1 AND 256),
    data           jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, stream, key)
);

-- Records refused, with the reason the developer reads at
-- GET /v1/developer/integrations/{name}/rejections. field is a JSON pointer into the record
-- ('' for the record as a whole); sample is the start of the record as received.
CREATE TABLE record_rejections (
    id             bigserial PRIMARY KEY,
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    delivery_mode  text NOT NULL CHECK (delivery_mode IN ('pull', 'push')),
    stream         text CHECK (length(stream) <= 256),
    key            text CHECK (length(key) <= 256),
    field          text NOT NULL DEFAULT '' CHECK (length(field) <= 1000),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    sample         text NOT NULL DEFAULT '' CHECK (length(sample) <= 4096),
    rejected_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX record_rejections_integration_idx ON record_rejections (integration_id, id DESC);
CREATE INDEX record_rejections_age_idx ON record_rejections (rejected_at);

-- ---------------------------------------------------------------------------------------------
-- Grants (the whole matrix: shared/db's TestFunctionRoleGrants)

GRANT SELECT ON goose_db_version TO connect_health_probe, connect_poll;

-- health-probe: reads published listings, keeps their status and uptime, records checks and
-- spans (and prunes both), announces changes.
GRANT SELECT ON integrations TO connect_health_probe;
GRANT UPDATE (health_status, uptime_24h, uptime_7d, uptime_30d, health_checked_at) ON integrations TO connect_health_probe;
GRANT SELECT, INSERT, DELETE ON integration_health TO connect_health_probe;
GRANT USAGE ON SEQUENCE integration_health_id_seq TO connect_health_probe;
GRANT SELECT, INSERT, UPDATE, DELETE ON integration_health_state TO connect_health_probe;
GRANT SELECT, INSERT, UPDATE, DELETE ON integration_uptime_spans TO connect_health_probe;
GRANT INSERT ON outbox TO connect_health_probe;

-- poll: reads published pull sources (and a developer's own listings for the rejections
-- route), keeps its per-source state, upserts records, records and prunes rejections,
-- announces records on connect.data.
GRANT SELECT ON integrations TO connect_poll;
GRANT SELECT, INSERT, UPDATE, DELETE ON poll_sources TO connect_poll;
GRANT SELECT, INSERT, UPDATE ON records TO connect_poll;
GRANT SELECT, INSERT, DELETE ON record_rejections TO connect_poll;
GRANT USAGE ON SEQUENCE record_rejections_id_seq TO connect_poll;
GRANT INSERT ON outbox TO connect_poll;

-- +goose Down
REVOKE ALL ON goose_db_version, integrations, integration_health, outbox
    FROM connect_health_probe, connect_poll;
REVOKE ALL ON SEQUENCE integration_health_id_seq FROM connect_health_probe;
DROP TABLE record_rejections;
DROP TABLE records;
DROP TABLE poll_sources;
DROP TABLE integration_uptime_spans;
DROP TABLE integration_health_state;
DROP INDEX integration_health_age_idx;
ALTER TABLE integration_health DROP COLUMN reason, DROP COLUMN http_status;
ALTER TABLE integrations DROP COLUMN health_checked_at, DROP COLUMN uptime_7d, DROP COLUMN uptime_24h;
