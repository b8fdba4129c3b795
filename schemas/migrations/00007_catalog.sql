-- +goose Up
-- The catalog: weighted search with typo tolerance, the access paths of every filter and sort,
-- and reviews written by the catalog function. See functions/catalog/doc.go.
--
-- pg_trgm and btree_gin are trusted extensions (PostgreSQL 13+): the database owner may create
-- them; a managed PostgreSQL must allow both (they are on every major provider's list).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- array_to_string is only STABLE (element output functions may be), which a generated column
-- refuses; for text[] it is immutable.
CREATE FUNCTION connect_tags_text(tags text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
    RETURN array_to_string(tags, ' ');

-- Search weights: the names (A), the category and tags (B), the description (C).
DROP INDEX integrations_search_idx;
ALTER TABLE integrations DROP COLUMN search;
ALTER TABLE integrations
    ADD COLUMN search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', display_name || ' ' || name), 'A') ||
        setweight(to_tsvector('simple', category || ' ' || connect_tags_text(tags)), 'B') ||
        setweight(to_tsvector('english', description), 'C')
    ) STORED,
    -- What a misspelt query is compared with (pg_trgm word similarity): the names, lower case.
    ADD COLUMN search_name text GENERATED ALWAYS AS (
        lower(display_name || ' ' || replace(name, '-', ' '))
    ) STORED;

-- Text search with the two most selective filters in one index (btree_gin), so a search with a
-- type and a category fetches only the rows that match all three.
CREATE INDEX integrations_published_search_idx ON integrations
    USING gin (search, category, type) WHERE is_published;
CREATE INDEX integrations_published_search_name_idx ON integrations
    USING gin (search_name gin_trgm_ops) WHERE is_published;
-- Type and category together with the default order (popular), which is also the order in which
-- a search's candidates are taken for relevance (functions/catalog MaxRanked): the candidates of a
-- search filtered by both are the first rows of this index that match the text, not rows of one
-- filter read and thrown away for the other.
CREATE INDEX integrations_published_category_type_idx ON integrations
    (category, type, install_count DESC, id DESC) WHERE is_published;
-- sort=uptime: uptime_30d, unknown (NULL) last.
CREATE INDEX integrations_published_uptime_idx ON integrations
    ((coalesce(uptime_30d, -1)) DESC, id DESC) WHERE is_published;
-- A filter on tier with the default sort (popular).
CREATE INDEX integrations_published_tier_idx ON integrations
    (verification_tier, install_count DESC, id DESC) WHERE is_published;

-- Reviews, newest first, paged by (created_at, id); the rating is included so the aggregate
-- of one integration is recomputed from the index alone.
DROP INDEX integration_reviews_integration_idx;
CREATE INDEX integration_reviews_integration_idx ON integration_reviews
    (integration_id, created_at DESC, id DESC) INCLUDE (rating);

-- catalog: reads published listings; a user who has an integration installed reviews it, and the
-- review and the listing's rating aggregate change in one transaction (the listing row is
-- locked with SELECT ... FOR UPDATE, which the column grant allows).
GRANT SELECT, INSERT, UPDATE, DELETE ON integration_reviews TO connect_catalog;
GRANT UPDATE (rating_avg, rating_count) ON integrations TO connect_catalog;
GRANT SELECT ON user_integrations TO connect_catalog;

-- +goose Down
REVOKE ALL ON integration_reviews, user_integrations FROM connect_catalog;
REVOKE UPDATE (rating_avg, rating_count) ON integrations FROM connect_catalog;
DROP INDEX integration_reviews_integration_idx;
CREATE INDEX integration_reviews_integration_idx ON integration_reviews (integration_id, created_at DESC);
DROP INDEX integrations_published_tier_idx;
DROP INDEX integrations_published_category_type_idx;
DROP INDEX integrations_published_uptime_idx;
DROP INDEX integrations_published_search_name_idx;
DROP INDEX integrations_published_search_idx;
ALTER TABLE integrations DROP COLUMN search_name;
ALTER TABLE integrations DROP COLUMN search;
ALTER TABLE integrations
    ADD COLUMN search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', coalesce(display_name, '') || ' ' || name), 'A') ||
        setweight(to_tsvector('english', coalesce(description, '')), 'B')
    ) STORED;
CREATE INDEX integrations_search_idx ON integrations USING gin (search);
DROP FUNCTION connect_tags_text(text[]);
DROP EXTENSION IF EXISTS btree_gin;
DROP EXTENSION IF EXISTS pg_trgm;
