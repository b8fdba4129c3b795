-- +goose Up
-- What install and uninstall share (functions/install, functions/uninstall; issue "install,
-- consent, revoke"): the sandbox flag of an install and the revocation marks that keep an
-- install and a revocation racing consistent.

-- A sandbox install: the developer installing their own unpublished integration. Every event
-- about it says so.
ALTER TABLE user_integrations ADD COLUMN sandbox boolean NOT NULL DEFAULT false;

-- The last time each (user, integration) install was revoked, whatever the cause. Both
-- functions take pg_advisory_xact_lock(hashtextextended(user_id || '/' || integration_id, 0))
-- before touching an install or this row:
--   uninstall: tx 1 marks revoked_at = now(); then revokes the Logto grants; then tx 2 deletes
--              the install and writes install.revoked;
--   install:   the consent callback, after exchanging the code, refuses to record the install
--              (and revokes the grant it just got) when revoked_at is later than the moment the
--              install was started (its state's created_at).
-- So whichever order the two run in, the end is either installed with a grant or neither.
CREATE TABLE install_revocations (
    user_id        text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    revoked_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, integration_id)
);

GRANT SELECT, INSERT, UPDATE ON install_revocations TO connect_uninstall;

-- +goose Down
REVOKE ALL ON install_revocations FROM connect_uninstall;
DROP TABLE install_revocations;
ALTER TABLE user_integrations DROP COLUMN sandbox;
