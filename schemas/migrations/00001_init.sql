-- +goose Up
-- The marketplace schema. Conventions:
--   * Logto user and application ids are text (Logto ids are not UUIDs); there is no users table.
--   * Money is integer cents plus an ISO 4217 currency code (lower case, as Stripe uses).
--   * Every table written by events carries the idempotency key its writer dedupes on.

CREATE TABLE categories (
    slug        text PRIMARY KEY CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    position    integer NOT NULL DEFAULT 0
);

INSERT INTO categories (slug, name, position) VALUES
    ('finance', 'Finance', 10),
    ('sports', 'Sports', 20),
    ('news', 'News', 30),
    ('productivity', 'Productivity', 40),
    ('social', 'Social', 50),
    ('developer-tools', 'Developer tools', 60),
    ('other', 'Other', 1000);

CREATE TABLE integrations (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    developer_id      text NOT NULL CHECK (length(developer_id) BETWEEN 1 AND 128),
    logto_app_id      text UNIQUE,
    name              text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    display_name      text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    type              text NOT NULL CHECK (type IN ('data_source', 'widget', 'app')),
    -- Only data sources have a delivery mode.
    delivery_mode     text CHECK (delivery_mode IN ('pull', 'push')),
    description       text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    base_url          text NOT NULL CHECK (base_url ~ '^https?://'),
    category          text NOT NULL DEFAULT 'other' REFERENCES categories (slug),
    tags              text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20),
    current_version   text,
    manifest          jsonb NOT NULL DEFAULT '{}',
    verification_tier text NOT NULL DEFAULT 'unverified'
                      CHECK (verification_tier IN ('unverified', 'verified', 'official')),
    pricing_model     text NOT NULL DEFAULT 'free'
                      CHECK (pricing_model IN ('free', 'one_time', 'subscription')),
    price_cents       bigint NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
    currency          text NOT NULL DEFAULT 'usd' CHECK (currency ~ '^[a-z]{3}$'),
    is_published      boolean NOT NULL DEFAULT false,
    published_at      timestamptz,
    -- Denormalized from integration_health by the health probe, so the catalog reads one row.
    health_status     text NOT NULL DEFAULT 'unknown'
                      CHECK (health_status IN ('unknown', 'healthy', 'degraded', 'offline')),
    uptime_30d        numeric(5, 2) CHECK (uptime_30d BETWEEN 0 AND 100),
    -- Average rating; 0 while there are no reviews (rating_count = 0).
    rating_avg        numeric(3, 2) NOT NULL DEFAULT 0 CHECK (rating_avg = 0 OR rating_avg BETWEEN 1 AND 5),
    rating_count      integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    install_count     bigint NOT NULL DEFAULT 0 CHECK (install_count >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    search            tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', coalesce(display_name, '') || ' ' || name), 'A') ||
        setweight(to_tsvector('english', coalesce(description, '')), 'B')
    ) STORED,
    CHECK ((type = 'data_source') = (delivery_mode IS NOT NULL)),
    CHECK ((pricing_model = 'free') = (price_cents = 0)),
    CHECK (NOT is_published OR published_at IS NOT NULL)
);

-- Catalog access paths: published listings sorted by popularity, rating, recency or name,
-- paged by keyset (sort key, id), optionally filtered by type or category; full-text search;
-- tag filters; a developer's own listings.
CREATE INDEX integrations_published_popular_idx ON integrations (install_count DESC, id DESC) WHERE is_published;
CREATE INDEX integrations_published_rating_idx ON integrations (rating_avg DESC, id DESC) WHERE is_published;
CREATE INDEX integrations_published_recent_idx ON integrations (published_at DESC, id DESC) WHERE is_published;
CREATE INDEX integrations_published_name_idx ON integrations (display_name, id) WHERE is_published;
CREATE INDEX integrations_published_type_idx ON integrations (type, install_count DESC, id DESC) WHERE is_published;
CREATE INDEX integrations_published_category_idx ON integrations (category, install_count DESC, id DESC) WHERE is_published;
CREATE INDEX integrations_search_idx ON integrations USING gin (search);
CREATE INDEX integrations_tags_idx ON integrations USING gin (tags);
CREATE INDEX integrations_developer_idx ON integrations (developer_id);

CREATE TABLE integration_versions (
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    version        text NOT NULL CHECK (version ~ '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'),
    manifest       jsonb NOT NULL,
    changelog      text NOT NULL DEFAULT '' CHECK (length(changelog) <= 10000),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, version)
);

CREATE TABLE user_integrations (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    scopes         text[] NOT NULL DEFAULT '{}',
    installed_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, integration_id)
);
CREATE INDEX user_integrations_integration_idx ON user_integrations (integration_id);

CREATE TABLE integration_health (
    id               bigserial PRIMARY KEY,
    integration_id   uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    status           text NOT NULL CHECK (status IN ('healthy', 'degraded', 'offline')),
    response_time_ms integer CHECK (response_time_ms >= 0),
    checked_at       timestamptz NOT NULL DEFAULT now(),
    -- One probe result per integration per tick: a redelivered tick does not count twice.
    UNIQUE (integration_id, checked_at)
);
CREATE INDEX integration_health_recent_idx ON integration_health (integration_id, checked_at DESC);

CREATE TABLE integration_reviews (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    rating         smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    review_text    text NOT NULL DEFAULT '' CHECK (length(review_text) <= 5000),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, integration_id)
);
CREATE INDEX integration_reviews_integration_idx ON integration_reviews (integration_id, created_at DESC);

-- Stripe Connect accounts of developers (one per developer).
CREATE TABLE developer_accounts (
    developer_id      text PRIMARY KEY CHECK (length(developer_id) BETWEEN 1 AND 128),
    stripe_account_id text UNIQUE,
    charges_enabled   boolean NOT NULL DEFAULT false,
    payouts_enabled   boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Payments, keyed by the Stripe object that proves them (idempotent on webhook redelivery).
CREATE TABLE payments (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             text NOT NULL,
    integration_id      uuid NOT NULL REFERENCES integrations (id),
    stripe_object_id    text NOT NULL UNIQUE,
    stripe_subscription_id text,
    amount_cents        bigint NOT NULL CHECK (amount_cents >= 0),
    platform_fee_cents  bigint NOT NULL DEFAULT 0 CHECK (platform_fee_cents >= 0 AND platform_fee_cents <= amount_cents),
    currency            text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status              text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_user_idx ON payments (user_id, integration_id);

-- Transactional outbox. The first five columns are the names Debezium's outbox event router
-- expects (id, aggregatetype, aggregateid, type, payload), so Debezium can replace the relay
-- in production; the rest carry the CloudEvent attributes the relay puts on the Kafka record.
CREATE TABLE outbox (
    id              uuid PRIMARY KEY,
    aggregatetype   text NOT NULL,
    aggregateid     text NOT NULL,
    type            text NOT NULL,
    payload         jsonb,
    source          text NOT NULL,
    specversion     text NOT NULL DEFAULT '1.0',
    datacontenttype text NOT NULL DEFAULT 'application/json',
    dataschema      text,
    subject         text,
    time            timestamptz NOT NULL DEFAULT now(),
    extensions      jsonb NOT NULL DEFAULT '{}',
    topic           text NOT NULL DEFAULT 'connect.events',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_created_idx ON outbox (created_at);

-- Idempotent consumers: a CloudEvent is identified by source + id (CloudEvents 1.0).
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    source       text NOT NULL,
    id           text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, source, id)
);
CREATE INDEX processed_events_age_idx ON processed_events (processed_at);

-- +goose Down
DROP TABLE processed_events;
DROP TABLE outbox;
DROP TABLE payments;
DROP TABLE developer_accounts;
DROP TABLE integration_reviews;
DROP TABLE integration_health;
DROP TABLE user_integrations;
DROP TABLE integration_versions;
DROP TABLE integrations;
DROP TABLE categories;
