-- Model definitions and their prices, as Langfuse models them: a model matches an observation's
-- model name by a regular expression; its prices (per unit, by usage type) belong to pricing
-- tiers, one default tier and optional tiers chosen by conditions on the usage or on the
-- observation's attributes. Shipped models (`project_id` NULL) are loaded from
-- `sql/models/default-models.json` by `migrate`; project models are written through the API.
-- Statements are idempotent, so a run killed half way (this file commits with its record in one
-- transaction anyway) or a second run is harmless.

CREATE TABLE IF NOT EXISTS models (
    id                text PRIMARY KEY,
    project_id        text REFERENCES projects (id) ON DELETE CASCADE,
    model_name        text NOT NULL,
    -- A regular expression matched against the observation's model name; `(?i)` makes it
    -- case-insensitive.
    match_pattern     text NOT NULL,
    -- Applies to observations that started at or after it; NULL: always.
    start_date        timestamptz,
    unit              text CHECK (unit IN ('TOKENS', 'CHARACTERS', 'MILLISECONDS', 'SECONDS', 'REQUESTS', 'IMAGES')),
    tokenizer_id      text,
    tokenizer_config  jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- A project defines a model name once (the API refuses a second one, race-free through this).
CREATE UNIQUE INDEX IF NOT EXISTS models_project_model_name_idx
    ON models (project_id, model_name) WHERE project_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS models_project_id_idx ON models (project_id);
CREATE INDEX IF NOT EXISTS models_model_name_idx ON models (model_name);

-- `conditions` is a JSON array, all of which must hold: usage conditions
-- `{usageDetailPattern, operator, value, caseSensitive}` and attribute conditions
-- `{source, key, operator: "in", values}`. The default tier has priority 0 and no conditions.
CREATE TABLE IF NOT EXISTS pricing_tiers (
    id          text PRIMARY KEY,
    model_id    text NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    name        text NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    priority    integer NOT NULL CHECK (priority >= 0),
    conditions  jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_id, priority),
    UNIQUE (model_id, name),
    CHECK (NOT is_default OR (priority = 0 AND conditions = '[]'::jsonb))
);

CREATE UNIQUE INDEX IF NOT EXISTS pricing_tiers_one_default_idx
    ON pricing_tiers (model_id) WHERE is_default;

-- USD per unit of a usage type (`input`, `output`, `input_cached_tokens`, `output_reasoning_tokens`,
-- `input_cache_creation`, `total`, …), exact decimals.
CREATE TABLE IF NOT EXISTS model_prices (
    pricing_tier_id  text NOT NULL REFERENCES pricing_tiers (id) ON DELETE CASCADE,
    model_id         text NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    usage_type       text NOT NULL,
    price            numeric NOT NULL CHECK (price >= 0),
    PRIMARY KEY (pricing_tier_id, usage_type)
);

CREATE INDEX IF NOT EXISTS model_prices_model_id_idx ON model_prices (model_id);

-- Every write of a model, its tiers or prices (a project's, or the shipped set's) moves this one
-- counter forward in the same transaction; each process's model cache polls it and drops what it
-- holds when it moved. The shipped set's checksum says whether the data file changed since it was
-- last loaded.
CREATE TABLE IF NOT EXISTS model_catalog_state (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch             bigint NOT NULL DEFAULT 0,
    shipped_checksum  text,
    changed_at        timestamptz NOT NULL DEFAULT now()
);

INSERT INTO model_catalog_state (singleton) VALUES (true) ON CONFLICT DO NOTHING;
