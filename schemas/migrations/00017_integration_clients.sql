-- +goose Up
-- Integration clients (docs/decisions/0007-install-and-tokens.md): every integration, not only
-- a push data source, gets a machine-to-machine Logto application at registration, with a role
-- of its own (carrying data:write for a push source, no scope for the others). It is the
-- integration calling as itself: the client_id of its client-credentials tokens for the
-- /v1/integration/... routes (install token claims, lifecycle catch-up) and, for a push
-- source, for POST /v1/ingest and its Kafka topic's user. The integration's main application
-- (logto_app_id) is a third-party web application, the OIDC client of the install consent, and
-- cannot use client credentials.
--
-- 00012 made these columns for push sources only; they are renamed (a rename keeps the data,
-- the grants and the constraints, whose names follow) and the push-only check is dropped.
ALTER TABLE integrations RENAME COLUMN push_client_id TO m2m_app_id;
ALTER TABLE integrations RENAME COLUMN push_role_id TO m2m_role_id;
ALTER TABLE integrations DROP CONSTRAINT integrations_push_client_check;
ALTER TABLE integrations RENAME CONSTRAINT integrations_push_client_id_key TO integrations_m2m_app_id_key;
ALTER TABLE integrations RENAME CONSTRAINT integrations_push_client_id_check TO integrations_m2m_app_id_check;
ALTER TABLE integrations RENAME CONSTRAINT integrations_push_role_id_check TO integrations_m2m_role_id_check;

-- +goose Down
-- The integration clients of integrations that are not push sources are forgotten (their Logto
-- applications are not deleted by a migration).
UPDATE integrations SET m2m_app_id = NULL, m2m_role_id = NULL WHERE delivery_mode IS DISTINCT FROM 'push';
ALTER TABLE integrations RENAME CONSTRAINT integrations_m2m_role_id_check TO integrations_push_role_id_check;
ALTER TABLE integrations RENAME CONSTRAINT integrations_m2m_app_id_check TO integrations_push_client_id_check;
ALTER TABLE integrations RENAME CONSTRAINT integrations_m2m_app_id_key TO integrations_push_client_id_key;
ALTER TABLE integrations RENAME COLUMN m2m_role_id TO push_role_id;
ALTER TABLE integrations RENAME COLUMN m2m_app_id TO push_client_id;
ALTER TABLE integrations ADD CONSTRAINT integrations_push_client_check
    CHECK (push_client_id IS NULL OR delivery_mode = 'push');
