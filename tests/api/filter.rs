//! The filter language of the list views on the ClickHouse stand-in: every column of every view
//! compiles, with every filter type and operator it takes, to SQL that ClickHouse runs over the
//! view's FROM clause; and conditions pick the right rows, reading only the newest version of
//! each row. Rows are written straight into the tables, so one migrated database serves all.

use langfuse_rs::domain::project::ProjectId;
use langfuse_rs::storage::clickhouse::filter::{self, Column, Kind, Search, Target, View, VIEWS};
use langfuse_rs::storage::clickhouse::sql::Sql;
use serde_json::{json, Value};

use crate::helpers::TestConfig;

const PROJECT: &str = "filtered";

/// A migrated ClickHouse database of its own (and the configuration that keeps it).
async fn clickhouse() -> (TestConfig, ::clickhouse::Client) {
    let config = TestConfig::new().await;
    config.migrate().await;
    let ch = langfuse_rs::storage::clickhouse::connect(&config.settings().clickhouse);
    (config, ch)
}

async fn execute(ch: &::clickhouse::Client, statement: &str) {
    ch.query(statement)
        .execute()
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Two sessions of traces with observations and scores, a trace of no session without either,
/// and an older version of a trace, observation and score that matches where the newest does not.
async fn seed(ch: &::clickhouse::Client) {
    let p = PROJECT;
    execute(
        ch,
        &format!(
            "INSERT INTO traces (id, timestamp, name, user_id, metadata, release, version, project_id, \
             environment, public, bookmarked, tags, input, output, session_id, event_ts, is_deleted) VALUES \
             ('t-tagged', '2024-05-01 10:00:00.000', 'chat', 'alice', {{'k': 'v', 'n': '3'}}, '1.0', 'v1', '{p}', \
              'production', true, false, ['x', 'y'], 'hello wide world', 'bye', 's1', '2024-05-01 10:00:00.000', 0), \
             ('t-quick', '2024-05-01 11:00:00.000', 'chat', 'bob', {{}}, NULL, NULL, '{p}', \
              'default', false, true, ['x'], NULL, NULL, 's1', '2024-05-01 11:00:00.000', 0), \
             ('t-quick', '2024-05-01 11:00:00.000', 'chat', 'bob', {{}}, NULL, NULL, '{p}', \
              'default', false, true, ['y'], NULL, NULL, 's1', '2024-05-01 11:00:05.000', 0), \
             ('t-other', '2024-05-02 09:00:00.000', 'search', 'carol', {{}}, NULL, NULL, '{p}', \
              'default', false, false, [], NULL, NULL, 's2', '2024-05-02 09:00:00.000', 0), \
             ('t-alone', '2024-05-03 09:00:00.000', 'batch', NULL, {{}}, NULL, NULL, '{p}', \
              'default', false, false, [], NULL, NULL, NULL, '2024-05-03 09:00:00.000', 0)"
        ),
    )
    .await;
    execute(
        ch,
        &format!(
            "INSERT INTO observations (id, trace_id, project_id, type, parent_observation_id, start_time, \
             end_time, name, metadata, level, input, output, provided_model_name, usage_details, \
             cost_details, total_cost, completion_start_time, prompt_name, prompt_version, event_ts, is_deleted) VALUES \
             ('o-slow', 't-tagged', '{p}', 'GENERATION', NULL, '2024-05-01 10:00:00.000', '2024-05-01 10:00:03.000', \
              'llm', {{'k': 'v'}}, 'ERROR', 'question', 'answer', 'gpt', {{'input': 10, 'output': 5, 'total': 15}}, \
              {{'input': 0.25, 'output': 0.5, 'total': 0.75}}, 0.75, '2024-05-01 10:00:01.000', 'p1', 2, \
              '2024-05-01 10:00:03.000', 0), \
             ('o-fast', 't-quick', '{p}', 'SPAN', NULL, '2024-05-01 11:00:00.000', '2024-05-01 11:00:01.000', \
              'step', {{}}, 'DEFAULT', NULL, NULL, NULL, {{}}, {{}}, NULL, NULL, NULL, NULL, \
              '2024-05-01 11:00:01.000', 0), \
             ('o-fast', 't-quick', '{p}', 'SPAN', NULL, '2024-05-01 11:00:00.000', '2024-05-01 11:00:09.000', \
              'step', {{}}, 'ERROR', NULL, NULL, NULL, {{}}, {{}}, NULL, NULL, NULL, NULL, \
              '2024-05-01 11:00:00.500', 0), \
             ('o-other', 't-other', '{p}', 'SPAN', NULL, '2024-05-02 09:00:00.000', NULL, \
              'lookup', {{}}, 'DEFAULT', NULL, NULL, NULL, {{}}, {{}}, NULL, NULL, NULL, NULL, \
              '2024-05-02 09:00:00.000', 0)"
        ),
    )
    .await;
    execute(
        ch,
        &format!(
            "INSERT INTO scores (id, timestamp, project_id, trace_id, observation_id, name, value, source, \
             comment, metadata, data_type, string_value, event_ts, is_deleted) VALUES \
             ('sc-good', '2024-05-01 10:00:05.000', '{p}', 't-tagged', 'o-slow', 'quality', 0.9, 'API', \
              'fine', {{'k': 'v'}}, 'NUMERIC', NULL, '2024-05-01 10:00:05.000', 0), \
             ('sc-poor', '2024-05-01 11:00:05.000', '{p}', 't-quick', NULL, 'quality', 0.2, 'API', \
              NULL, {{}}, 'NUMERIC', NULL, '2024-05-01 11:00:05.000', 0), \
             ('sc-poor', '2024-05-01 11:00:05.000', '{p}', 't-quick', NULL, 'quality', 0.95, 'API', \
              NULL, {{}}, 'NUMERIC', NULL, '2024-05-01 11:00:04.000', 0), \
             ('sc-flag', '2024-05-03 09:00:05.000', '{p}', NULL, NULL, 'reviewed', 1, 'ANNOTATION', \
              NULL, {{}}, 'BOOLEAN', 'True', '2024-05-03 09:00:05.000', 0)"
        ),
    )
    .await;
}

/// One filter of every type and operator the column takes.
fn filters_of(column: &Column) -> Vec<Value> {
    let name = column.id;
    let mut filters = Vec::new();
    if column.search != Search::FullText {
        for operator in ["is null", "is not null"] {
            filters
                .push(json!({"type": "null", "column": name, "operator": operator, "value": ""}));
        }
    }
    let each = |filter_type: &str, operators: &[&str], value: Value| -> Vec<Value> {
        operators
            .iter()
            .map(|operator| json!({"type": filter_type, "column": name, "key": "k", "operator": operator, "value": value}))
            .collect()
    };
    let text_operators: &[&str] = &[
        "=",
        "contains",
        "does not contain",
        "starts with",
        "ends with",
    ];
    match column.kind {
        Kind::Text | Kind::Options if column.search == Search::FullText => {
            // Input and output take scans only beside an exact or a token search.
            filters.extend(each("string", &["=", "matches"], json!("wide world")));
        }
        Kind::Text | Kind::Options => {
            filters.extend(each("string", text_operators, json!("v")));
            filters.extend(each(
                "stringOptions",
                &["any of", "none of"],
                json!(["a", ""]),
            ));
        }
        Kind::List => {
            filters.extend(each(
                "arrayOptions",
                &["any of", "none of", "all of"],
                json!(["x"]),
            ));
            filters.extend(each("stringOptions", &["any of", "none of"], json!(["x"])));
        }
        Kind::Time => filters.extend(each(
            "datetime",
            &[">", "<", ">=", "<="],
            json!("2024-05-01T10:00:00Z"),
        )),
        Kind::Number => filters.extend(each("number", &["=", ">", "<", ">=", "<="], json!(1.5))),
        Kind::Flag => filters.extend(each("boolean", &["=", "<>"], json!(true))),
        Kind::Object => {
            filters.extend(each("stringObject", text_operators, json!("v")));
            filters.extend(each("stringObject", &["matches"], json!("v")));
            filters.extend(each("numberObject", &["=", ">", "<", ">=", "<="], json!(2)));
            filters.extend(each(
                "categoryOptions",
                &["any of", "none of"],
                json!(["v"]),
            ));
            filters.extend(each("booleanObject", &["=", "<>"], json!(false)));
        }
    }
    filters
}

/// `SELECT <what> FROM <the view> WHERE <the conditions of the filter, ANDed>`.
fn select(view: &View, what: &str, filter: &Value) -> Sql {
    let conditions = filter::parse(view, &filter.to_string())
        .unwrap_or_else(|e| panic!("{}: {filter}: {e}", view.name));
    let mut sql = Sql::default();
    sql.text(&format!("SELECT {what} FROM "));
    sql.append(view.from_sql(&ProjectId::authenticated(PROJECT), &conditions));
    sql.text(" WHERE 1 = 1");
    for condition in &conditions {
        sql.text(" AND ");
        condition.compile(&mut sql);
    }
    sql
}

#[tokio::test]
async fn filter_on_every_column_of_every_view_runs_on_clickhouse() {
    let (_config, ch) = clickhouse().await;
    seed(&ch).await;
    let mut queries = 0;
    for view in VIEWS {
        for column in view.columns {
            // Every filter the column takes, in one statement: each must be valid SQL of the
            // right types over the view's FROM clause with the relation the column needs.
            let filters = filters_of(column);
            let conditions: Vec<_> = filters
                .iter()
                .flat_map(|f| filter::parse(view, &json!([f]).to_string()).unwrap())
                .collect();
            let mut sql = Sql::default();
            sql.text("SELECT count() FROM ");
            sql.append(view.from_sql(&ProjectId::authenticated(PROJECT), &conditions));
            sql.text(" WHERE 0 = 1");
            for condition in &conditions {
                sql.text(" OR ");
                condition.compile(&mut sql);
            }
            let count: Result<u64, _> = sql.query(&ch).fetch_one().await;
            if let Err(e) = count {
                panic!("{}.{}: {e}\n{}", view.name, column.id, sql.text);
            }
            queries += 1;
        }
    }
    assert!(queries > 90, "{queries} columns");
}

/// The ids of the view's rows that match `filter`, sorted.
async fn matching(ch: &::clickhouse::Client, view: &View, filter: Value) -> Vec<String> {
    let Some(Target::Column(id)) = view.find("id") else {
        panic!("{} has no id column", view.name);
    };
    let sql = select(view, &format!("{} AS id", id.sql), &filter);
    let mut ids: Vec<String> = sql
        .query(ch)
        .fetch_all()
        .await
        .unwrap_or_else(|e| panic!("{filter}: {e}\n{}", sql.text));
    ids.sort();
    ids
}

#[tokio::test]
async fn filter_views_pick_the_rows_whose_newest_version_matches() {
    let (_config, ch) = clickhouse().await;
    seed(&ch).await;
    let ids = |ids: &[&str]| -> Vec<String> { ids.iter().map(|s| s.to_string()).collect() };
    let traces = &filter::TRACES;
    // t-quick's older version had tag x; only its newest counts.
    assert_eq!(
        matching(&ch, traces, json!([{"type": "arrayOptions", "column": "tags", "operator": "any of", "value": ["x"]}])).await,
        ids(&["t-tagged"])
    );
    assert_eq!(
        matching(
            &ch,
            traces,
            json!([{"type": "number", "column": "latency", "operator": ">", "value": 2}])
        )
        .await,
        ids(&["t-tagged"])
    );
    // Without observations, a trace has latency 0, as the trace list shows it.
    assert_eq!(
        matching(
            &ch,
            traces,
            json!([{"type": "number", "column": "Latency (s)", "operator": "<", "value": 2}])
        )
        .await,
        ids(&["t-alone", "t-other", "t-quick"])
    );
    assert_eq!(
        matching(&ch, traces, json!([
            {"type": "stringOptions", "column": "level", "operator": "any of", "value": ["ERROR"]},
            {"type": "number", "column": "totalCost", "operator": ">=", "value": 0.75},
            {"type": "number", "column": "inputTokens", "operator": "=", "value": 10},
        ]))
        .await,
        ids(&["t-tagged"])
    );
    assert_eq!(
        matching(&ch, traces, json!([
            {"type": "stringObject", "column": "metadata", "key": "n", "operator": "=", "value": "3"},
            {"type": "string", "column": "input", "operator": "matches", "value": "WIDE"},
            {"type": "boolean", "column": "public", "operator": "=", "value": true},
        ]))
        .await,
        ids(&["t-tagged"])
    );
    assert_eq!(
        matching(
            &ch,
            traces,
            json!([{"type": "boolean", "column": "bookmarked", "operator": "=", "value": true}])
        )
        .await,
        ids(&["t-quick"])
    );
    assert_eq!(
        matching(
            &ch,
            traces,
            json!([{"type": "null", "column": "release", "operator": "is null", "value": ""}])
        )
        .await,
        ids(&["t-alone", "t-other", "t-quick"])
    );

    let sessions = &filter::SESSIONS;
    assert_eq!(
        matching(
            &ch,
            sessions,
            json!([{"type": "number", "column": "countTraces", "operator": ">=", "value": 2}])
        )
        .await,
        ids(&["s1"])
    );
    assert_eq!(
        matching(&ch, sessions, json!([{"type": "arrayOptions", "column": "userIds", "operator": "any of", "value": ["carol"]}])).await,
        ids(&["s2"])
    );
    // s1 spans o-slow's 10:00:00 to o-fast's newest end, 11:00:01.
    assert_eq!(
        matching(&ch, sessions, json!([
            {"type": "number", "column": "sessionDuration", "operator": "=", "value": 3601},
            {"type": "arrayOptions", "column": "tags", "operator": "all of", "value": ["x", "y"]},
        ]))
        .await,
        ids(&["s1"])
    );

    let scores = &filter::SCORES;
    assert_eq!(
        matching(&ch, scores, json!([{"type": "arrayOptions", "column": "Trace Tags", "operator": "any of", "value": ["x"]}])).await,
        ids(&["sc-good"])
    );
    // sc-poor's older version had 0.95.
    assert_eq!(
        matching(
            &ch,
            scores,
            json!([{"type": "number", "column": "value", "operator": ">", "value": 0.5}])
        )
        .await,
        ids(&["sc-flag", "sc-good"])
    );
    assert_eq!(
        matching(&ch, scores, json!([{"type": "stringOptions", "column": "userId", "operator": "any of", "value": ["bob"]}])).await,
        ids(&["sc-poor"])
    );
    assert_eq!(
        matching(&ch, scores, json!([{"type": "stringOptions", "column": "booleanValue", "operator": "any of", "value": ["true"]}])).await,
        ids(&["sc-flag"])
    );
    assert_eq!(
        matching(
            &ch,
            scores,
            json!([{"type": "string", "column": "observationId", "operator": "=", "value": ""}])
        )
        .await,
        ids(&["sc-flag", "sc-poor"])
    );

    let observations = &filter::OBSERVATIONS;
    assert_eq!(
        matching(
            &ch,
            observations,
            json!([{"type": "string", "column": "userId", "operator": "=", "value": "alice"}])
        )
        .await,
        ids(&["o-slow"])
    );
    // o-fast's newest version (by event time) ends after one second.
    assert_eq!(
        matching(
            &ch,
            observations,
            json!([{"type": "number", "column": "latency", "operator": ">", "value": 2}])
        )
        .await,
        ids(&["o-slow"])
    );
}
