-- +goose Up
-- The install function (functions/install): install attempts waiting for payment or consent,
-- and the user's tokens held sealed until the integration claims them. See
-- docs/decisions/0007-install-and-tokens.md.

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'connect_install') THEN
        BEGIN
            CREATE ROLE connect_install NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by this migration in another database of the cluster
        END;
    END IF;
END
$$;
-- +goose StatementEnd

-- An install that has started and not finished: at most one per user and integration, so a
-- repeated POST /v1/installs finds it again instead of starting another. awaiting_payment (paid
-- listings: no state yet; the payments work continues it) -> awaiting_consent (a state and a
-- PKCE verifier exist; the consent URL is out) -> exchanging (the callback consumed the state and
-- is exchanging the code); the row is deleted when the install is recorded or refused.
--
-- The state is stored as its SHA-256 (the callback looks it up by hash, so a copy of this table
-- cannot answer a callback) and sealed (shared/sealed, CLIENT_SECRET_KEYS), only so a repeated
-- request can be answered with the same consent URL; the PKCE verifier is sealed. state_created_at
-- is "the moment the install was started" of migration 00008's protocol.
CREATE TABLE install_attempts (
    id               uuid PRIMARY KEY,
    user_id          text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    integration_id   uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    scopes           text[] NOT NULL CHECK (cardinality(scopes) <= 32),
    sandbox          boolean NOT NULL,
    status           text NOT NULL CHECK (status IN ('awaiting_payment', 'awaiting_consent', 'exchanging')),
    payment_id       text CHECK (length(payment_id) BETWEEN 1 AND 255),
    state_hash       bytea UNIQUE CHECK (length(state_hash) = 32),
    state_sealed     text CHECK (length(state_sealed) <= 1024),
    verifier_sealed  text CHECK (length(verifier_sealed) <= 1024),
    state_created_at timestamptz,
    state_expires_at timestamptz,
    created_at       timestamptz NOT NULL,
    UNIQUE (user_id, integration_id),
    CHECK ((status = 'awaiting_payment') = (state_hash IS NULL)),
    CHECK ((state_hash IS NULL) = (state_sealed IS NULL) AND (state_hash IS NULL) = (verifier_sealed IS NULL)
           AND (state_hash IS NULL) = (state_created_at IS NULL) AND (state_hash IS NULL) = (state_expires_at IS NULL))
);
CREATE INDEX install_attempts_expiry_idx ON install_attempts (state_expires_at) WHERE state_expires_at IS NOT NULL;

-- The user's tokens from the consent, sealed (bound to the install id), until the integration
-- claims them once or expires_at (INSTALL_TOKEN_TTL after the install) passes. Deleted with the
-- install.
CREATE TABLE install_tokens (
    install_id uuid PRIMARY KEY REFERENCES user_integrations (id) ON DELETE CASCADE,
    sealed     text NOT NULL CHECK (length(sealed) <= 65536),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX install_tokens_expiry_idx ON install_tokens (expires_at);

-- install: reads listings and revocation marks, records installs and their counters (only
-- install_count), keeps its attempts and tokens, announces (shared/outbox).
GRANT SELECT ON goose_db_version TO connect_install;
GRANT SELECT ON integrations TO connect_install;
GRANT UPDATE (install_count, updated_at) ON integrations TO connect_install;
GRANT SELECT, INSERT ON user_integrations TO connect_install;
GRANT SELECT ON install_revocations TO connect_install;
GRANT SELECT, INSERT, UPDATE, DELETE ON install_attempts TO connect_install;
GRANT SELECT, INSERT, DELETE ON install_tokens TO connect_install;
GRANT INSERT ON outbox TO connect_install;

-- +goose Down
REVOKE ALL ON goose_db_version, integrations, user_integrations, install_revocations, outbox
    FROM connect_install;
DROP TABLE install_tokens;
DROP TABLE install_attempts;
