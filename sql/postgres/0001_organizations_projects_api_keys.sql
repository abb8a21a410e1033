-- Tenancy and credentials: organizations own projects; API keys belong to one project.
-- API-key secrets are stored only as a salted HMAC-SHA256 (fast_hashed_secret_key), never in plain
-- text; display_secret_key is the masked form shown to people ("sk-lf-...abcd").

CREATE TABLE organizations (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id              text PRIMARY KEY,
    org_id          text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    retention_days  integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE INDEX projects_org_id_idx ON projects (org_id);

CREATE TABLE api_keys (
    id                      text PRIMARY KEY,
    project_id              text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    public_key              text NOT NULL UNIQUE,
    fast_hashed_secret_key  text NOT NULL UNIQUE,
    display_secret_key      text NOT NULL,
    note                    text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    last_used_at            timestamptz,
    expires_at              timestamptz
);

CREATE INDEX api_keys_project_id_idx ON api_keys (project_id);
