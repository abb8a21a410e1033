-- Prompt management: versioned prompts per project, the labels that point at versions, the
-- references of composed prompts, and the per-project write counter that serializes prompt
-- writes and tells every `serve` process when its prompt cache is out of date.

-- One row per version. `prompt` is a JSON string (type text) or an array of messages (chat).
-- Tags belong to the name: every version carries the same list.
CREATE TABLE prompts (
    id              text PRIMARY KEY,
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            text NOT NULL,
    version         integer NOT NULL CHECK (version > 0),
    type            text NOT NULL CHECK (type IN ('text', 'chat')),
    prompt          jsonb NOT NULL,
    config          jsonb NOT NULL DEFAULT '{}'::jsonb,
    tags            text[] NOT NULL DEFAULT '{}',
    commit_message  text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name, version)
);

CREATE INDEX prompts_project_id_updated_at_idx ON prompts (project_id, updated_at);

-- A label points at exactly one version of a name: the primary key says so, so no interleaving
-- of writers can leave a label on two versions. `seq` keeps the order labels were given in.
CREATE TABLE prompt_labels (
    project_id  text NOT NULL,
    name        text NOT NULL,
    label       text NOT NULL,
    version     integer NOT NULL,
    seq         bigserial NOT NULL,
    PRIMARY KEY (project_id, name, label),
    FOREIGN KEY (project_id, name, version)
        REFERENCES prompts (project_id, name, version) ON DELETE CASCADE
);

CREATE INDEX prompt_labels_version_idx ON prompt_labels (project_id, name, version);

-- The references in a version's content, by version or by label: read to refuse deletions that
-- would break a composed prompt, and to find the prompts a moved label changes.
CREATE TABLE prompt_dependencies (
    project_id     text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    parent_id      text NOT NULL REFERENCES prompts (id) ON DELETE CASCADE,
    child_name     text NOT NULL,
    child_version  integer,
    child_label    text,
    CHECK ((child_version IS NULL) <> (child_label IS NULL))
);

CREATE INDEX prompt_dependencies_parent_idx ON prompt_dependencies (parent_id);
CREATE INDEX prompt_dependencies_child_idx ON prompt_dependencies (project_id, child_name);

-- Labels a project protects. Langfuse lets only members with the right role set or remove them
-- in its web app; API keys act with full project rights and are not restricted. Kept so that a
-- project's settings survive when roles arrive.
CREATE TABLE prompt_protected_labels (
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    label       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, label)
);

-- Every prompt write of a project first moves `epoch` forward (to the writer's clock in
-- microseconds, or by one if that is not more), in its own transaction: the row lock serializes
-- the project's prompt writes (so versions are gap-free and graph checks see a stable state), and
-- the committed value is what each process's cache compares its entries against.
CREATE TABLE prompt_epochs (
    project_id  text PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    epoch       bigint NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
