-- Protected prompt labels, as Langfuse has them: per project, the labels that only owners and
-- admins may set, move or remove in the web UI (and that a version may carry at creation only when
-- one of them creates it). `latest` is never protected: every new version takes it.
CREATE TABLE prompt_protected_labels (
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    label       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, label)
);
