-- +goose Up
-- Ordering state of the logto-webhook function. Logto delivers webhooks late, twice and out of
-- order; these tables let it act on the newest state by Logto's clock (the payload's createdAt)
-- rather than on arrival order. See functions/logto-webhook/doc.go for the rules.

-- Deletions of Logto users and roles. A deletion is terminal: no role event, whatever its time,
-- grants a deleted user or a deleted role again. deleted_at is the createdAt of the deletion
-- webhook (Logto's clock), recorded_at is when this function stored it (its own clock); rows are
-- deleted by the function once recorded_at is older than its retention (default 30 days), long
-- after Logto has stopped retrying the deliveries that could race with the deletion.
CREATE TABLE logto_tombstones (
    kind        text NOT NULL CHECK (kind IN ('user', 'role')),
    id          text NOT NULL CHECK (length(id) BETWEEN 1 AND 128),
    deleted_at  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX logto_tombstones_recorded_idx ON logto_tombstones (recorded_at);

-- A removal (DELETE /users/:userId/roles/:roleId) names only the role id. When no row knows the
-- id's name yet, the removal is still kept, with role_name NULL, because its changed_at must
-- beat an older assignment delivered after it. Only an inactive row may lack a name, so the
-- developers view (active rows) is unchanged.
ALTER TABLE developer_roles ALTER COLUMN role_name DROP NOT NULL;
ALTER TABLE developer_roles ADD CONSTRAINT developer_roles_active_named CHECK (role_name IS NOT NULL OR NOT active);

-- The createdAt of the newest webhook that carried a user's complete set of roles (PUT
-- /users/:userId/roles). Every role missing from that set was not held at that time, including
-- roles this table has never seen, so an older assignment of any role loses against it.
CREATE TABLE developer_role_sets (
    user_id text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 128),
    set_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE developer_role_sets;
DELETE FROM developer_roles WHERE role_name IS NULL;
ALTER TABLE developer_roles DROP CONSTRAINT developer_roles_active_named;
ALTER TABLE developer_roles ALTER COLUMN role_name SET NOT NULL;
DROP TABLE logto_tombstones;
