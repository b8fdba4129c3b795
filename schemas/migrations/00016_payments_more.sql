-- +goose Up
-- Payments, part 2 (docs/decisions/0011-payments.md): the Stripe Checkout Session made for
-- each paid pending install, so a repeated POST /v1/installs answers the same session, and the
-- grants install needs to consume payment.succeeded idempotently.

-- The Checkout Session of a pending install (install_attempts, status awaiting_payment). It is
-- created at Stripe with Idempotency-Key payments.IdempotencyKey("checkout", pending install
-- id) (a renewal after it expired: the id and the expired session's id), on the developer's
-- connected account (direct charges). Deleted with its attempt.
CREATE TABLE install_checkouts (
    pending_install_id uuid PRIMARY KEY REFERENCES install_attempts (id) ON DELETE CASCADE,
    stripe_account_id  text NOT NULL CHECK (stripe_account_id ~ '^acct_[A-Za-z0-9]{1,64}$'),
    stripe_session_id  text NOT NULL CHECK (stripe_session_id ~ '^cs_[A-Za-z0-9_]{1,255}$'),
    url                text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 4096),
    mode               text NOT NULL CHECK (mode IN ('payment', 'subscription')),
    amount_cents       bigint NOT NULL CHECK (amount_cents > 0),
    platform_fee_cents bigint NOT NULL CHECK (platform_fee_cents >= 0),
    currency           text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    expires_at         timestamptz NOT NULL,
    created_at         timestamptz NOT NULL
);

-- install: keeps the sessions of its pending installs, and claims the payment.succeeded events
-- it consumes (shared/inbox: Seen reads, Claim inserts).
GRANT SELECT, INSERT, UPDATE, DELETE ON install_checkouts TO connect_install;
GRANT SELECT, INSERT ON processed_events TO connect_install;

-- +goose Down
REVOKE SELECT, INSERT ON processed_events FROM connect_install;
DROP TABLE install_checkouts;
