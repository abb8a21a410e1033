-- Traces, observations and scores are sorted by their date (and type or name), which a later event
-- of the same entity can change: the worker then writes the entity's row under a new sorting key, and
-- ReplacingMergeTree keeps the earlier row under the old key too. The worker now also writes a
-- deleted copy of the earlier row under the old key (as new as the row that replaces it, updated
-- just before it), so that FINAL keeps one live row per entity. These statements write the same
-- deleted copies for the rows that moved before the worker did so.
--
-- Re-runnable: a second run inserts the same deleted rows again, under the same keys with the same
-- versions, which ReplacingMergeTree folds into one.
INSERT INTO observations (id, trace_id, project_id, environment, type, start_time, level, created_at, updated_at, event_ts, is_deleted)
SELECT o.id, o.trace_id, o.project_id, o.environment, o.type, o.start_time, o.level, o.created_at,
       n.newest_updated_at - toIntervalMillisecond(1) AS updated_at, n.newest_event_ts AS event_ts, 1 AS is_deleted
FROM observations AS o
INNER JOIN (
    SELECT project_id, id, type AS newest_type, toDate(start_time) AS newest_day,
           event_ts AS newest_event_ts, updated_at AS newest_updated_at
    FROM observations
    WHERE (project_id, id) IN (
        SELECT project_id, id FROM observations GROUP BY project_id, id
        HAVING uniqExact(type, toDate(start_time)) > 1
    )
    ORDER BY event_ts DESC, updated_at DESC
    LIMIT 1 BY project_id, id
) AS n ON o.project_id = n.project_id AND o.id = n.id
WHERE (o.type, toDate(o.start_time)) != (n.newest_type, n.newest_day)
LIMIT 1 BY o.project_id, o.id, o.type, toDate(o.start_time);

INSERT INTO scores (id, timestamp, project_id, environment, trace_id, session_id, dataset_run_id, observation_id, name, source, data_type, created_at, updated_at, event_ts, is_deleted)
SELECT s.id, s.timestamp, s.project_id, s.environment, s.trace_id, s.session_id, s.dataset_run_id, s.observation_id, s.name, s.source, s.data_type, s.created_at,
       n.newest_updated_at - toIntervalMillisecond(1) AS updated_at, n.newest_event_ts AS event_ts, 1 AS is_deleted
FROM scores AS s
INNER JOIN (
    SELECT project_id, id, toDate(timestamp) AS newest_day, name AS newest_name,
           event_ts AS newest_event_ts, updated_at AS newest_updated_at
    FROM scores
    WHERE (project_id, id) IN (
        SELECT project_id, id FROM scores GROUP BY project_id, id
        HAVING uniqExact(toDate(timestamp), name) > 1
    )
    ORDER BY event_ts DESC, updated_at DESC
    LIMIT 1 BY project_id, id
) AS n ON s.project_id = n.project_id AND s.id = n.id
WHERE (toDate(s.timestamp), s.name) != (n.newest_day, n.newest_name)
LIMIT 1 BY s.project_id, s.id, toDate(s.timestamp), s.name;

-- Traces: only rows built from the trace's own events (a wrapper row, written with version 0 for a
-- trace not seen yet, stays where it is; reads set wrappers aside when the trace has its own row).
INSERT INTO traces (id, timestamp, project_id, environment, created_at, updated_at, event_ts, is_deleted)
SELECT t.id, t.timestamp, t.project_id, t.environment, t.created_at,
       n.newest_updated_at - toIntervalMillisecond(1) AS updated_at, n.newest_event_ts AS event_ts, 1 AS is_deleted
FROM traces AS t
INNER JOIN (
    SELECT project_id, id, toDate(timestamp) AS newest_day,
           event_ts AS newest_event_ts, updated_at AS newest_updated_at
    FROM traces
    WHERE event_ts > toDateTime64(0, 3) AND (project_id, id) IN (
        SELECT project_id, id FROM traces WHERE event_ts > toDateTime64(0, 3) GROUP BY project_id, id
        HAVING uniqExact(toDate(timestamp)) > 1
    )
    ORDER BY event_ts DESC, updated_at DESC
    LIMIT 1 BY project_id, id
) AS n ON t.project_id = n.project_id AND t.id = n.id
WHERE t.event_ts > toDateTime64(0, 3) AND toDate(t.timestamp) != n.newest_day
LIMIT 1 BY t.project_id, t.id, toDate(t.timestamp);
