-- +goose Up
-- Payments (issue "payments"; docs/decisions/0011-payments.md): Stripe Connect accounts of
-- developers, every payment with its platform fee, subscriptions with their current state, and
-- the newest Stripe event applied to each Stripe object, so webhooks delivered late, twice or
-- out of order end in the state the newest Stripe object says.

-- The roles of this migration's functions, created when missing (see 00004 for why this way).
-- connect_install may already exist (the install function's own migration); whichever runs
-- first creates it.
-- +goose StatementBegin
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['connect_stripe_webhook', 'connect_install'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- A developer's connected account (Express). The registry creates it (POST
-- /v1/developer/payouts) with metadata developer_id; account.updated may arrive before the
-- registry's commit, so stripe-webhook upserts the row from that metadata too.
ALTER TABLE developer_accounts
    ADD COLUMN details_submitted boolean NOT NULL DEFAULT false,
    ADD COLUMN deauthorized_at   timestamptz,
    ADD CONSTRAINT developer_accounts_stripe_account_id_check
        CHECK (stripe_account_id IS NULL OR stripe_account_id ~ '^acct_[A-Za-z0-9]{1,64}$');

-- Payments: one row per Stripe object that moves money (a Checkout Session for a one-time
-- purchase, an invoice for each subscription period). net_cents is what the developer
-- receives before Stripe's own processing fee (direct charges: Stripe takes that from the
-- connected account).
ALTER TABLE payments
    ADD COLUMN kind text NOT NULL DEFAULT 'one_time' CHECK (kind IN ('one_time', 'subscription')),
    ADD COLUMN net_cents bigint GENERATED ALWAYS AS (amount_cents - platform_fee_cents) STORED,
    ADD COLUMN stripe_account_id text,
    ADD COLUMN stripe_payment_intent_id text,
    ADD COLUMN pending_install_id uuid,
    ADD COLUMN paid_at timestamptz,
    ADD COLUMN failed_at timestamptz,
    ADD COLUMN refunded_at timestamptz,
    ADD CONSTRAINT payments_user_id_check CHECK (length(user_id) BETWEEN 1 AND 128);
CREATE INDEX payments_intent_idx ON payments (stripe_payment_intent_id) WHERE stripe_payment_intent_id IS NOT NULL;
CREATE INDEX payments_subscription_idx ON payments (stripe_subscription_id) WHERE stripe_subscription_id IS NOT NULL;
CREATE INDEX payments_revenue_idx ON payments (integration_id, paid_at) WHERE status = 'succeeded';

-- A subscription's current state (Stripe's status) and whether the platform has ended the
-- access it pays for (access_ended_at, with the reason: subscription_ended or payment_failed).
CREATE TABLE subscriptions (
    stripe_subscription_id text PRIMARY KEY CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9]{1,64}$'),
    user_id              text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    integration_id       uuid NOT NULL REFERENCES integrations (id),
    pending_install_id   uuid,
    stripe_account_id    text,
    stripe_customer_id   text,
    status               text NOT NULL CHECK (status IN ('incomplete', 'incomplete_expired', 'trialing',
                              'active', 'past_due', 'canceled', 'unpaid', 'paused')),
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    current_period_end   timestamptz,
    ended_at             timestamptz,
    access_ended_at      timestamptz,
    access_end_reason    text CHECK (access_end_reason IN ('subscription_ended', 'payment_failed')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((access_ended_at IS NULL) = (access_end_reason IS NULL))
);
CREATE INDEX subscriptions_user_idx ON subscriptions (user_id, integration_id);
CREATE INDEX subscriptions_active_idx ON subscriptions (integration_id)
    WHERE status IN ('trialing', 'active', 'past_due') AND access_ended_at IS NULL;

-- The newest Stripe event applied to each Stripe object: its created (unix seconds), a rank
-- that breaks ties inside one second (the state with fewer privileges wins) and its id.
CREATE TABLE stripe_object_versions (
    object_id     text PRIMARY KEY CHECK (length(object_id) BETWEEN 1 AND 255),
    event_created bigint NOT NULL,
    rank          smallint NOT NULL DEFAULT 0,
    event_id      text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- stripe-webhook: claims each event (inbox.Claim), keeps payments, subscriptions, accounts and
-- object versions, unpublishes the paid listings of a deauthorized developer, and announces
-- what happened (outbox).
GRANT SELECT ON goose_db_version TO connect_stripe_webhook;
GRANT INSERT ON processed_events TO connect_stripe_webhook;
GRANT INSERT ON outbox TO connect_stripe_webhook;
GRANT SELECT, INSERT, UPDATE ON payments TO connect_stripe_webhook;
GRANT SELECT, INSERT, UPDATE ON subscriptions TO connect_stripe_webhook;
GRANT SELECT, INSERT, UPDATE ON stripe_object_versions TO connect_stripe_webhook;
GRANT SELECT, INSERT, UPDATE ON developer_accounts TO connect_stripe_webhook;
GRANT SELECT ON integrations TO connect_stripe_webhook;
GRANT UPDATE (is_published, updated_at) ON integrations TO connect_stripe_webhook;

-- registry: creates the developer's connected account (POST /v1/developer/payouts), checks it
-- can take charges before publishing a paid listing, and reads revenue and subscriptions for
-- the developer's stats.
GRANT SELECT, INSERT, UPDATE ON developer_accounts TO connect_registry;
GRANT SELECT ON payments, subscriptions TO connect_registry;

-- install: the developer's account for a Checkout Session, and a user's subscription state
-- (GET /v1/installs).
GRANT SELECT ON goose_db_version TO connect_install;
GRANT SELECT ON developer_accounts, subscriptions TO connect_install;

-- +goose Down
REVOKE ALL ON developer_accounts, subscriptions FROM connect_install;
REVOKE ALL ON developer_accounts, payments, subscriptions FROM connect_registry;
REVOKE ALL ON goose_db_version, processed_events, outbox, payments, subscriptions, stripe_object_versions,
    developer_accounts, integrations FROM connect_stripe_webhook;
DROP TABLE stripe_object_versions;
DROP TABLE subscriptions;
DROP INDEX payments_revenue_idx;
DROP INDEX payments_subscription_idx;
DROP INDEX payments_intent_idx;
ALTER TABLE payments
    DROP CONSTRAINT payments_user_id_check,
    DROP COLUMN refunded_at,
    DROP COLUMN failed_at,
    DROP COLUMN paid_at,
    DROP COLUMN pending_install_id,
    DROP COLUMN stripe_payment_intent_id,
    DROP COLUMN stripe_account_id,
    DROP COLUMN net_cents,
    DROP COLUMN kind;
ALTER TABLE developer_accounts
    DROP CONSTRAINT developer_accounts_stripe_account_id_check,
    DROP COLUMN deauthorized_at,
    DROP COLUMN details_submitted;
