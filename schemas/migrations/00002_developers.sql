-- +goose Up
-- Platform roles of users (developer, admin, ...), as Logto reports them through its webhooks
-- (written by the logto-webhook function). One row per user and Logto role that is a platform
-- role. A role that is taken away keeps its row with active = false: changed_at, the createdAt
-- of the Logto webhook that last set the row, lets a late, out-of-order delivery lose against a
-- newer one (last writer by Logto's clock wins), which a deleted row could not do.
CREATE TABLE developer_roles (
    user_id    text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    role_id    text NOT NULL CHECK (length(role_id) BETWEEN 1 AND 128),
    role_name  text NOT NULL CHECK (length(role_name) BETWEEN 1 AND 128),
    active     boolean NOT NULL,
    changed_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX developer_roles_role_idx ON developer_roles (role_id);

-- developers: the users holding at least one platform role now, with those roles' names.
CREATE VIEW developers AS
SELECT user_id,
       array_agg(DISTINCT role_name ORDER BY role_name) AS roles,
       max(changed_at) AS changed_at
FROM developer_roles
WHERE active
GROUP BY user_id;

-- +goose Down
DROP VIEW developers;
DROP TABLE developer_roles;
