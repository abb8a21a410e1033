-- Score configs, as Langfuse has them: the shape a project's scores of a name are meant to have
-- (a data type; a range for numeric scores; labelled values for categorical and boolean ones).
-- Written through `/api/public/score-configs`; archived, never deleted. Statements are
-- idempotent, so a run killed half way (this file commits with its record in one transaction
-- anyway) or a second, concurrent run (serialized by the migration lock) is harmless.

CREATE TABLE IF NOT EXISTS score_configs (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         text NOT NULL,
    data_type    text NOT NULL CHECK (data_type IN ('NUMERIC', 'CATEGORICAL', 'BOOLEAN', 'TEXT')),
    is_archived  boolean NOT NULL DEFAULT false,
    -- Numeric configs only; NULL: unbounded.
    min_value    double precision,
    max_value    double precision,
    -- Categorical and boolean configs: a JSON array of {"label", "value"}.
    categories   jsonb,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The list: a project's configs, newest first.
CREATE INDEX IF NOT EXISTS score_configs_project_created_idx
    ON score_configs (project_id, created_at DESC, id);
