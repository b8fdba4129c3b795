-- +goose Up
-- Lifecycle delivery (functions/notify): the lifecycle events each integration receives, their
-- HTTP deliveries with the retry schedule kept here (so it survives restarts and scale to
-- zero), and the endpoints an integration disabled with 410. Role connect_notify. See
-- docs/decisions/0008-lifecycle-delivery.md.

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'connect_notify') THEN
        BEGIN
            CREATE ROLE connect_notify NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by this migration in another database of the cluster
        END;
    END IF;
END
$$;
-- +goose StatementEnd

-- One row per lifecycle event. seq is the integration's catch-up cursor
-- (GET /v1/integration/events?after=<seq>); id is the CloudEvent id, name-based on the platform
-- event it came from, so a redelivered platform event makes no second row. body is the
-- CloudEvent in structured JSON, byte for byte what is delivered and signed.
CREATE TABLE lifecycle_events (
    seq            bigserial PRIMARY KEY,
    id             uuid NOT NULL UNIQUE,
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    type           text NOT NULL CHECK (type IN ('com.myscrollr.connect.lifecycle.install',
                       'com.myscrollr.connect.lifecycle.uninstall', 'com.myscrollr.connect.lifecycle.redact')),
    install_id     text NOT NULL CHECK (length(install_id) BETWEEN 1 AND 128),
    body           text NOT NULL CHECK (length(body) <= 65536),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lifecycle_events_integration_idx ON lifecycle_events (integration_id, seq);

-- The HTTP delivery of a lifecycle event, for integrations that take them over HTTP.
--   pending:   next_attempt_at says when; a worker holds it while lease_until is in the future
--   delivered: a 2xx answer
--   disabled:  the endpoint answered 410 (or was disabled by an earlier 410); a redelivery
--              re-enables it
--   failed:    every attempt of the schedule failed; the event went to the dead-letter topic
-- attempts counts attempts since the last (re)delivery request; it is incremented when an
-- attempt is claimed, so an attempt cut short by a crash still counts.
CREATE TABLE lifecycle_deliveries (
    event_id         uuid PRIMARY KEY REFERENCES lifecycle_events (id) ON DELETE CASCADE,
    integration_id   uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'disabled', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    lease_until      timestamptz,
    lease_token      uuid,
    last_attempt_at  timestamptz,
    last_status_code integer CHECK (last_status_code BETWEEN 100 AND 599),
    last_error       text CHECK (length(last_error) <= 1024),
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
-- The wake-up's scan: due pending deliveries, oldest first.
CREATE INDEX lifecycle_deliveries_due_idx ON lifecycle_deliveries (next_attempt_at) WHERE status = 'pending';
-- The developer's delivery log, newest first.
CREATE INDEX lifecycle_deliveries_log_idx ON lifecycle_deliveries (integration_id, created_at DESC, event_id DESC);

-- Endpoints disabled by a 410: no attempt is made while the row exists; a redelivery deletes it.
CREATE TABLE lifecycle_endpoints_disabled (
    integration_id uuid PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    disabled_at    timestamptz NOT NULL,
    event_id       uuid NOT NULL -- the delivery that was answered 410
);

GRANT SELECT ON goose_db_version TO connect_notify;
-- notify reads the integration (name, type, manifest, base_url, owner, application id).
GRANT SELECT ON integrations TO connect_notify;
-- inbox.Claim (INSERT ... ON CONFLICT DO NOTHING needs no SELECT) and the outbox.
GRANT INSERT ON processed_events TO connect_notify;
GRANT INSERT ON outbox TO connect_notify;
GRANT SELECT, INSERT ON lifecycle_events TO connect_notify;
GRANT USAGE ON SEQUENCE lifecycle_events_seq_seq TO connect_notify;
GRANT SELECT, INSERT, UPDATE ON lifecycle_deliveries TO connect_notify;
GRANT SELECT, INSERT, DELETE ON lifecycle_endpoints_disabled TO connect_notify;

-- +goose Down
REVOKE ALL ON goose_db_version, integrations, processed_events, outbox FROM connect_notify;
DROP TABLE lifecycle_endpoints_disabled;
DROP TABLE lifecycle_deliveries;
DROP TABLE lifecycle_events;
