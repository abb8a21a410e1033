-- Custom dashboards of a project, and their widgets: each widget is a query of the metrics
-- engine (Langfuse's metrics query, as JSON) drawn as a chart, placed in the dashboard's grid.
-- Statements are idempotent, so a run killed half way or a second, concurrent run (serialized by
-- the migration lock) is harmless.

CREATE TABLE IF NOT EXISTS dashboards (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    created_by   text REFERENCES users (id) ON DELETE SET NULL,
    updated_by   text REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The list: a project's dashboards by name.
CREATE INDEX IF NOT EXISTS dashboards_project_name_idx ON dashboards (project_id, lower(name), id);

CREATE TABLE IF NOT EXISTS dashboard_widgets (
    id            text PRIMARY KEY,
    dashboard_id  text NOT NULL REFERENCES dashboards (id) ON DELETE CASCADE,
    -- The dashboard's project, repeated so that every query of a widget is scoped by it.
    project_id    text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name          text NOT NULL,
    chart_type    text NOT NULL CHECK (chart_type IN ('line', 'bar', 'number', 'histogram', 'pivot')),
    -- The widget's metrics query without its time range, which the dashboard page supplies.
    query         jsonb NOT NULL,
    -- Place in the grid: widgets flow in `position` order through 12 columns, each `width`
    -- columns wide and `height` rows high.
    position      integer NOT NULL,
    width         integer NOT NULL CHECK (width BETWEEN 1 AND 12),
    height        integer NOT NULL CHECK (height BETWEEN 1 AND 4),
    created_by    text REFERENCES users (id) ON DELETE SET NULL,
    updated_by    text REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS dashboard_widgets_dashboard_idx
    ON dashboard_widgets (project_id, dashboard_id, position);
