-- Media: files the SDKs cut out of traces (base64 images, audio, documents) and upload on their own,
-- leaving a reference string in the trace. One row per distinct content of a project (its SHA-256),
-- whose id is derived from that hash as Langfuse derives it, so SDK and server agree on it before
-- the upload. The links say which trace, observation or dataset item field holds a reference.
-- Statements are idempotent (see 0005).

CREATE TABLE IF NOT EXISTS media (
    project_id          text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id                  text NOT NULL,
    -- Base64 of the SHA-256 of the bytes, as the SDKs send it (44 characters).
    sha_256_hash        char(44) NOT NULL,
    content_type        text NOT NULL,
    content_length      bigint NOT NULL CHECK (content_length > 0),
    -- The object's key in blob storage, below the installation's prefix.
    bucket_path         text NOT NULL,
    -- What the uploader reported (PATCH), or what this server saw when it received the bytes itself.
    uploaded_at         timestamptz,
    upload_http_status  integer,
    upload_http_error   text,
    upload_time_ms      bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, id)
);

-- The same bytes are one media of a project, whatever uploads them.
CREATE UNIQUE INDEX IF NOT EXISTS media_project_hash_idx ON media (project_id, sha_256_hash);

CREATE TABLE IF NOT EXISTS trace_media (
    project_id  text NOT NULL,
    trace_id    text NOT NULL,
    media_id    text NOT NULL,
    field       text NOT NULL CHECK (field IN ('input', 'output', 'metadata')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, trace_id, media_id, field),
    FOREIGN KEY (project_id, media_id) REFERENCES media (project_id, id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS observation_media (
    project_id      text NOT NULL,
    trace_id        text NOT NULL,
    observation_id  text NOT NULL,
    media_id        text NOT NULL,
    field           text NOT NULL CHECK (field IN ('input', 'output', 'metadata')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, trace_id, observation_id, media_id, field),
    FOREIGN KEY (project_id, media_id) REFERENCES media (project_id, id) ON DELETE CASCADE
);

-- A dataset item's media; the item may not exist yet when its media is uploaded (as in Langfuse),
-- so nothing refers to the datasets' tables.
CREATE TABLE IF NOT EXISTS dataset_item_media (
    project_id       text NOT NULL,
    dataset_id       text NOT NULL,
    dataset_item_id  text NOT NULL,
    media_id         text NOT NULL,
    field            text NOT NULL CHECK (field IN ('input', 'expectedOutput', 'metadata')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, dataset_id, dataset_item_id, media_id, field),
    FOREIGN KEY (project_id, media_id) REFERENCES media (project_id, id) ON DELETE CASCADE
);

-- Which media a trace's page shows: the links by media, for "who refers to this".
CREATE INDEX IF NOT EXISTS trace_media_media_idx ON trace_media (project_id, media_id);
CREATE INDEX IF NOT EXISTS observation_media_media_idx ON observation_media (project_id, media_id);
