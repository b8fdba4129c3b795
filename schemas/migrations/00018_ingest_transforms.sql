-- +goose Up
-- ingest normalizes pushed records through the integration's WASM transform, as poll does
-- (shared/wasmnorm): it reads the current version's module.
GRANT SELECT ON integration_transforms TO connect_ingest;

-- +goose Down
REVOKE SELECT ON integration_transforms FROM connect_ingest;
