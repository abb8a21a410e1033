-- Datasets, their items (with every version an item ever had), and the runs of experiments over
-- them with the traces each run produced per item. Written through the public API
-- (`/api/public/v2/datasets`, `/api/public/dataset-items`, `/api/public/dataset-run-items`) and,
-- for runs and run items, by the worker from experiment spans. Statements are idempotent, so a
-- run killed half way or a second, concurrent run (serialized by the migration lock) is harmless.

CREATE TABLE IF NOT EXISTS datasets (
    id                      text PRIMARY KEY,
    project_id              text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- Free text; may hold `/`, which the UI shows as folders.
    name                    text NOT NULL,
    description             text,
    metadata                jsonb,
    -- JSON Schemas every item's input / expected output must satisfy; NULL: anything goes.
    input_schema            jsonb,
    expected_output_schema  jsonb,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT datasets_project_name_key UNIQUE (project_id, name)
);

-- The list: a project's datasets, newest first.
CREATE INDEX IF NOT EXISTS datasets_project_created_idx
    ON datasets (project_id, created_at DESC, id);

-- One row per version of an item. A write never changes an item's row in place: it closes the
-- current version (sets its `valid_to`) and inserts the next one, whose `valid_from` is the
-- closing time, so "the dataset as it was at T" is the rows with valid_from <= T < valid_to.
-- Deleting an item inserts a version with `is_deleted` (and nothing else), so reads at earlier
-- times still see it. Times are kept to the millisecond, the precision the API answers with, so
-- a time read from an item's `updatedAt` names exactly that version.
CREATE TABLE IF NOT EXISTS dataset_items (
    project_id             text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- Unique within the project (across its datasets), chosen by the client or made here.
    id                     text NOT NULL CHECK (char_length(id) BETWEEN 1 AND 255),
    valid_from             timestamptz NOT NULL,
    -- NULL: the item's current version.
    valid_to               timestamptz,
    dataset_id             text NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    is_deleted             boolean NOT NULL DEFAULT false,
    status                 text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'ARCHIVED')),
    input                  jsonb,
    expected_output        jsonb,
    metadata               jsonb,
    source_trace_id        text,
    source_observation_id  text,
    -- When the item was first created, carried by every version, so an edit does not move it in
    -- the list; `updated_at` is the version's own `valid_from`.
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    PRIMARY KEY (project_id, id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

-- At most one current version per item: the guard against two writers both closing the same
-- version (writers also take a transaction lock per item, so this never fires in practice).
CREATE UNIQUE INDEX IF NOT EXISTS dataset_items_current_key
    ON dataset_items (project_id, id) WHERE valid_to IS NULL;

-- The list of a dataset's current items, in the API's order (newest first).
CREATE INDEX IF NOT EXISTS dataset_items_current_list_idx
    ON dataset_items (dataset_id, created_at DESC, id) WHERE valid_to IS NULL AND NOT is_deleted;

-- Reads of a dataset as it was at a time, and its list of versions.
CREATE INDEX IF NOT EXISTS dataset_items_dataset_versions_idx
    ON dataset_items (dataset_id, valid_from);

-- The items made from a trace or an observation.
CREATE INDEX IF NOT EXISTS dataset_items_source_trace_idx
    ON dataset_items (project_id, source_trace_id) WHERE source_trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS dataset_items_source_observation_idx
    ON dataset_items (project_id, source_observation_id) WHERE source_observation_id IS NOT NULL;

-- An experiment over a dataset: named, the name unique within the dataset.
CREATE TABLE IF NOT EXISTS dataset_runs (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    dataset_id   text NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text,
    metadata     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dataset_runs_dataset_name_key UNIQUE (dataset_id, name)
);

-- A dataset's runs, newest first.
CREATE INDEX IF NOT EXISTS dataset_runs_dataset_created_idx
    ON dataset_runs (dataset_id, created_at DESC, id);

-- What one run did with one item: the trace (and, optionally, the observation) it produced.
-- No foreign key to the item, whose rows are versions; `dataset_item_valid_from` records the
-- version the run used. Linking the same trace and observation to the same item in the same run
-- again is the same fact, so it finds the row made the first time (`dataset_run_items_link_key`):
-- a retried request, or an experiment span the worker processes again, makes no duplicate.
CREATE TABLE IF NOT EXISTS dataset_run_items (
    id                       text PRIMARY KEY,
    project_id               text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    dataset_run_id           text NOT NULL REFERENCES dataset_runs (id) ON DELETE CASCADE,
    dataset_item_id          text NOT NULL,
    dataset_item_valid_from  timestamptz,
    trace_id                 text NOT NULL,
    -- '' when the run item names no observation, so that the uniqueness below covers it.
    observation_id           text NOT NULL DEFAULT '',
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dataset_run_items_link_key
        UNIQUE (dataset_run_id, dataset_item_id, trace_id, observation_id)
);

-- A run's items in order of creation, and the runs an item took part in, and those of a trace.
CREATE INDEX IF NOT EXISTS dataset_run_items_run_created_idx
    ON dataset_run_items (dataset_run_id, created_at, id);
CREATE INDEX IF NOT EXISTS dataset_run_items_item_idx
    ON dataset_run_items (project_id, dataset_item_id);
CREATE INDEX IF NOT EXISTS dataset_run_items_trace_idx
    ON dataset_run_items (project_id, trace_id);
