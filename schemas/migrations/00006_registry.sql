-- +goose Up
-- The registry (functions/registry): verification tiers, sealed client secrets, the automated
-- checks of each version, deprecation, tier changes and verification requests. See
-- docs/decisions/0006-registry.md.

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'connect_registry') THEN
        BEGIN
            CREATE ROLE connect_registry NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by this migration in another database of the cluster
        END;
    END IF;
END
$$;
-- +goose StatementEnd

-- ---------------------------------------------------------------------------------------------
-- Tiers: the seed's three. 'official' (the demo's first-party listing) becomes 'featured'.
-- "featured requires verified" and "a paid listing is published only when verified or
-- featured" are rules of a change (the registry enforces them when a tier is set or a listing
-- published), not of a row: the tier a listing had before is not in the row.
ALTER TABLE integrations DROP CONSTRAINT integrations_verification_tier_check;
UPDATE integrations SET verification_tier = 'featured' WHERE verification_tier = 'official';
ALTER TABLE integrations ADD CONSTRAINT integrations_verification_tier_check
    CHECK (verification_tier IN ('unverified', 'verified', 'featured'));

-- The Logto client secret, sealed (shared/sealed: key id + AES-256-GCM, bound to the row's id),
-- because the install function exchanges consent codes with it. Never returned after creation
-- or rotation. latest_version is the newest registered version (a draft until published);
-- current_version is the published one. Deprecation is the developer's notice to users.
ALTER TABLE integrations
    ADD COLUMN client_secret_sealed    text CHECK (length(client_secret_sealed) <= 4096),
    ADD COLUMN latest_version          text,
    ADD COLUMN deprecated_at           timestamptz,
    ADD COLUMN deprecation_message     text CHECK (length(deprecation_message) BETWEEN 1 AND 1000),
    ADD COLUMN deprecation_sunset      date,
    ADD COLUMN deprecation_replacement text CHECK (deprecation_replacement ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    ADD CONSTRAINT integrations_deprecation_check CHECK ((deprecated_at IS NULL) = (deprecation_message IS NULL));

-- One row per automated check of a version, as conformance.Result holds it.
CREATE TABLE integration_checks (
    integration_id   uuid NOT NULL,
    version          text NOT NULL,
    name             text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    required         boolean NOT NULL,
    passed           boolean NOT NULL,
    reason           text NOT NULL DEFAULT '' CHECK (length(reason) <= 1000),
    response_time_ms bigint CHECK (response_time_ms >= 0),
    checked_at       timestamptz NOT NULL,
    PRIMARY KEY (integration_id, version, name),
    FOREIGN KEY (integration_id, version) REFERENCES integration_versions (integration_id, version) ON DELETE CASCADE
);

-- Every tier change: who (an admin's Logto user id), from, to, why, when.
CREATE TABLE integration_tier_changes (
    id             bigserial PRIMARY KEY,
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    from_tier      text NOT NULL CHECK (from_tier IN ('unverified', 'verified', 'featured')),
    to_tier        text NOT NULL CHECK (to_tier IN ('unverified', 'verified', 'featured')),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    changed_by     text NOT NULL CHECK (length(changed_by) BETWEEN 1 AND 128),
    changed_at     timestamptz NOT NULL
);
CREATE INDEX integration_tier_changes_integration_idx ON integration_tier_changes (integration_id, changed_at DESC);

-- Review requests: at most one pending per integration; a tier change by an admin resolves it
-- (approved when the tier is verified or featured, rejected otherwise).
CREATE TABLE verification_requests (
    id             uuid PRIMARY KEY,
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    version        text NOT NULL,
    note           text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_by   text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 128),
    requested_at   timestamptz NOT NULL,
    resolved_by    text CHECK (length(resolved_by) BETWEEN 1 AND 128),
    resolved_at    timestamptz,
    resolution     text CHECK (length(resolution) <= 1000),
    CHECK ((status = 'pending') = (resolved_at IS NULL))
);
CREATE UNIQUE INDEX verification_requests_pending_idx ON verification_requests (integration_id) WHERE status = 'pending';
-- The admin queue, oldest first, paged by (requested_at, id).
CREATE INDEX verification_requests_queue_idx ON verification_requests (requested_at, id) WHERE status = 'pending';

-- ---------------------------------------------------------------------------------------------
-- registry: registers, versions, publishes, deprecates and re-tiers integrations (only the
-- columns it owns: never health, uptime, ratings or install counts), stores check results,
-- tier changes and verification requests, reads categories and installs (developer stats) and
-- announces every change (shared/outbox).
GRANT SELECT ON goose_db_version TO connect_registry;
GRANT SELECT ON categories TO connect_registry;
GRANT SELECT, INSERT ON integrations TO connect_registry;
GRANT UPDATE (display_name, description, category, tags, pricing_model, price_cents, currency,
              base_url, manifest, current_version, latest_version, is_published, published_at,
              verification_tier, client_secret_sealed, deprecated_at, deprecation_message,
              deprecation_sunset, deprecation_replacement, updated_at)
    ON integrations TO connect_registry;
GRANT SELECT, INSERT ON integration_versions TO connect_registry;
GRANT SELECT, INSERT ON integration_checks TO connect_registry;
GRANT SELECT, INSERT ON integration_tier_changes TO connect_registry;
GRANT USAGE ON SEQUENCE integration_tier_changes_id_seq TO connect_registry;
GRANT SELECT, INSERT, UPDATE ON verification_requests TO connect_registry;
GRANT SELECT ON user_integrations TO connect_registry;
GRANT INSERT ON outbox TO connect_registry;

-- +goose Down
REVOKE ALL ON goose_db_version, categories, integrations, integration_versions, user_integrations, outbox
    FROM connect_registry;
DROP TABLE verification_requests;
DROP TABLE integration_tier_changes;
DROP TABLE integration_checks;
ALTER TABLE integrations
    DROP CONSTRAINT integrations_deprecation_check,
    DROP COLUMN deprecation_replacement,
    DROP COLUMN deprecation_sunset,
    DROP COLUMN deprecation_message,
    DROP COLUMN deprecated_at,
    DROP COLUMN latest_version,
    DROP COLUMN client_secret_sealed;
ALTER TABLE integrations DROP CONSTRAINT integrations_verification_tier_check;
UPDATE integrations SET verification_tier = 'official' WHERE verification_tier = 'featured';
ALTER TABLE integrations ADD CONSTRAINT integrations_verification_tier_check
    CHECK (verification_tier IN ('unverified', 'verified', 'official'));
