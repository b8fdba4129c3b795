-- +goose Up
-- WASM transforms (wasmhost, issue 11): the module that normalizes an integration version's
-- records, uploaded by its developer through the registry (PUT
-- /v1/developer/integrations/{name}/versions/{version}/transform), validated and compiled
-- before it is stored. The records of an integration go through the transform of its current
-- (published) version. See docs/decisions/0009-wasm-transforms.md.

CREATE TABLE integration_transforms (
    integration_id uuid NOT NULL,
    version        text NOT NULL,
    module         bytea NOT NULL CHECK (octet_length(module) BETWEEN 8 AND 16777216),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size           integer NOT NULL,
    abi_version    integer NOT NULL CHECK (abi_version >= 1),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, version),
    FOREIGN KEY (integration_id, version) REFERENCES integration_versions (integration_id, version) ON DELETE CASCADE,
    CONSTRAINT integration_transforms_size_check CHECK (size = octet_length(module))
);

-- Grants (the whole matrix: shared/db's TestFunctionRoleGrants). The registry stores and
-- replaces modules; poll reads them. Ingest grants itself in its own migration.
GRANT SELECT, INSERT, UPDATE ON integration_transforms TO connect_registry;
GRANT SELECT ON integration_transforms TO connect_poll;

-- +goose Down
DROP TABLE integration_transforms;
