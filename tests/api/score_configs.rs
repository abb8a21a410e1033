//! Score configs, `/api/public/score-configs`, against the real PostgreSQL: every field of the
//! spec present (null when empty), the data types and their refusals, paging, updates and
//! archiving, and one project never seeing another's configs.

use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};

use crate::helpers::{create_project, ApiKey, TestApp, TestConfig};

const SPEC_FIELDS: [&str; 11] = [
    "id",
    "name",
    "createdAt",
    "updatedAt",
    "projectId",
    "dataType",
    "isArchived",
    "minValue",
    "maxValue",
    "categories",
    "description",
];

async fn send(
    app: &TestApp,
    key: &ApiKey,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let response = app
        .http
        .request(method, app.url(path))
        .header(AUTHORIZATION, key.basic_auth())
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create(app: &TestApp, key: &ApiKey, body: Value) -> (u16, Value) {
    send(
        app,
        key,
        reqwest::Method::POST,
        "/api/public/score-configs",
        &body,
    )
    .await
}

async fn patch(app: &TestApp, key: &ApiKey, id: &str, body: Value) -> (u16, Value) {
    let path = format!("/api/public/score-configs/{id}");
    send(app, key, reqwest::Method::PATCH, &path, &body).await
}

fn assert_spec_shape(config: &Value) {
    let object = config.as_object().expect("an object");
    for field in SPEC_FIELDS {
        assert!(object.contains_key(field), "{field} missing: {config}");
    }
    assert_eq!(object.len(), SPEC_FIELDS.len(), "{config}");
}

#[tokio::test]
async fn configs_of_each_data_type_are_created_read_and_listed_as_the_spec_says() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "configs").await;

    let (status, numeric) = create(
        &app,
        &key,
        json!({"name": "accuracy", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1.5,
               "description": "How right the answer is"}),
    )
    .await;
    assert_eq!(status, 200, "{numeric}");
    assert_spec_shape(&numeric);
    assert_eq!(numeric["projectId"], "configs");
    assert_eq!(numeric["dataType"], "NUMERIC");
    assert_eq!(numeric["isArchived"], false);
    assert_eq!(numeric["minValue"], json!(0));
    assert_eq!(numeric["maxValue"], json!(1.5));
    assert_eq!(numeric["categories"], Value::Null);
    assert!(numeric["createdAt"].as_str().unwrap().ends_with('Z'));

    let (status, open) = create(
        &app,
        &key,
        json!({"name": "latency score", "dataType": "NUMERIC"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(open["minValue"], Value::Null);
    assert_eq!(open["maxValue"], Value::Null);
    assert_eq!(open["description"], Value::Null);

    let (status, categorical) = create(
        &app,
        &key,
        json!({"name": "tone", "dataType": "CATEGORICAL",
               "categories": [{"label": "friendly", "value": 1}, {"label": "rude", "value": 0}]}),
    )
    .await;
    assert_eq!(status, 200, "{categorical}");
    assert_spec_shape(&categorical);
    assert_eq!(
        categorical["categories"],
        json!([{"label": "friendly", "value": 1}, {"label": "rude", "value": 0}])
    );
    assert_eq!(categorical["minValue"], Value::Null);

    let (status, boolean) = create(
        &app,
        &key,
        json!({"name": "correct", "dataType": "BOOLEAN"}),
    )
    .await;
    assert_eq!(status, 200, "{boolean}");
    assert_eq!(
        boolean["categories"],
        json!([{"label": "True", "value": 1}, {"label": "False", "value": 0}])
    );

    let id = numeric["id"].as_str().unwrap();
    let (status, got) = app
        .get_json(&format!("/api/public/score-configs/{id}"), &key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got, numeric);

    // Newest first, page-numbered.
    let (status, page) = app
        .get_json("/api/public/score-configs?limit=3", &key)
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["meta"],
        json!({"page": 1, "limit": 3, "totalItems": 4, "totalPages": 2})
    );
    let names: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["correct", "tone", "latency score"]);
    let (_, page2) = app
        .get_json("/api/public/score-configs?limit=3&page=2", &key)
        .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2["data"][0], numeric);
    let (status, _) = app
        .get_json("/api/public/score-configs?limit=0", &key)
        .await;
    assert_eq!(status, 400);

    // Another project sees none of them.
    let other = create_project(&app.config, "configs-other").await;
    let (_, empty) = app.get_json("/api/public/score-configs", &other).await;
    assert_eq!(empty["data"], json!([]));
    assert_eq!(empty["meta"]["totalItems"], 0);
    let (status, _) = app
        .get_json(&format!("/api/public/score-configs/{id}"), &other)
        .await;
    assert_eq!(status, 404);
    let (status, _) = patch(&app, &other, id, json!({"isArchived": true})).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get_json("/api/public/score-configs/no-such-config", &key)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn refusals_name_the_rule_and_write_nothing() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "configs-refused").await;
    for (body, words) in [
        (json!({"dataType": "NUMERIC"}), "name is required"),
        (json!({"name": "x"}), "dataType is required"),
        (json!({"name": "x", "dataType": "SCALE"}), "dataType"),
        (json!({"name": "a".repeat(36), "dataType": "NUMERIC"}), "35"),
        (
            json!({"name": "a/b", "dataType": "NUMERIC"}),
            "only contain",
        ),
        (
            json!({"name": "x", "dataType": "NUMERIC", "minValue": 2, "maxValue": 1}),
            "Maximum value must be greater than Minimum value",
        ),
        (
            json!({"name": "x", "dataType": "NUMERIC", "minValue": "low"}),
            "minValue",
        ),
        (
            json!({"name": "x", "dataType": "CATEGORICAL"}),
            "At least one category is required",
        ),
        (
            json!({"name": "x", "dataType": "CATEGORICAL", "categories": [{"label": "a", "value": 1}, {"label": "a", "value": 2}]}),
            "Category labels must be unique",
        ),
        (
            json!({"name": "x", "dataType": "CATEGORICAL", "categories": [{"label": "a", "value": 1}, {"label": "b", "value": 1}]}),
            "Category values must be unique",
        ),
        (
            json!({"name": "x", "dataType": "CATEGORICAL", "categories": [{"label": "a"}]}),
            "label value pairs",
        ),
        (
            json!({"name": "x", "dataType": "CATEGORICAL", "minValue": 0, "categories": [{"label": "a", "value": 1}]}),
            "only allowed for NUMERIC",
        ),
        (
            json!({"name": "x", "dataType": "BOOLEAN", "categories": [{"label": "yes", "value": 1}]}),
            "made for boolean data types",
        ),
        (
            json!({"name": "x", "dataType": "NUMERIC", "categories": [{"label": "a", "value": 1}]}),
            "only allowed for categorical data types",
        ),
        (json!(["x"]), "JSON object"),
    ] {
        let (status, answer) = create(&app, &key, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{body}: {answer}");
    }
    let (_, page) = app.get_json("/api/public/score-configs", &key).await;
    assert_eq!(page["meta"]["totalItems"], 0);

    // Only the secret key's holder writes configs.
    let public_only = ApiKey::new(key.public.clone(), "wrong");
    let (status, _) = create(
        &app,
        &public_only,
        json!({"name": "x", "dataType": "BOOLEAN"}),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn updates_change_only_what_they_name_and_keep_the_data_type_rules() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "configs-patch").await;
    let (_, numeric) = create(
        &app,
        &key,
        json!({"name": "score", "dataType": "NUMERIC", "minValue": 0, "maxValue": 10}),
    )
    .await;
    let id = numeric["id"].as_str().unwrap();

    let (status, archived) = patch(&app, &key, id, json!({"isArchived": true})).await;
    assert_eq!(status, 200, "{archived}");
    assert_spec_shape(&archived);
    assert_eq!(archived["isArchived"], true);
    assert_eq!(archived["maxValue"], json!(10));
    assert_eq!(archived["createdAt"], numeric["createdAt"]);
    assert!(archived["updatedAt"].as_str().unwrap() >= numeric["updatedAt"].as_str().unwrap());

    let (status, renamed) = patch(
        &app,
        &key,
        id,
        json!({"name": "score v2", "maxValue": 100, "description": "wider", "isArchived": false}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(renamed["name"], "score v2");
    assert_eq!(renamed["maxValue"], json!(100));
    assert_eq!(renamed["minValue"], json!(0));
    assert_eq!(renamed["description"], "wider");
    assert_eq!(renamed["isArchived"], false);
    let (_, got) = app
        .get_json(&format!("/api/public/score-configs/{id}"), &key)
        .await;
    assert_eq!(got, renamed);

    for (body, words) in [
        (json!({}), "cannot be empty"),
        (
            json!({"minValue": 100}),
            "Maximum value must be greater than Minimum value",
        ),
        (
            json!({"categories": [{"label": "a", "value": 1}]}),
            "only allowed for categorical data types",
        ),
        (json!({"name": "bad/name"}), "only contain"),
        (json!({"isArchived": "yes"}), "isArchived"),
        (json!({"dataType": "BOOLEAN"}), "cannot be empty"),
    ] {
        let (status, answer) = patch(&app, &key, id, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains(words),
            "{body}: {answer}"
        );
    }
    let (_, unchanged) = app
        .get_json(&format!("/api/public/score-configs/{id}"), &key)
        .await;
    assert_eq!(unchanged, renamed);

    let (_, categorical) = create(&app, &key, json!({"name": "tone", "dataType": "CATEGORICAL", "categories": [{"label": "a", "value": 1}]})).await;
    let cid = categorical["id"].as_str().unwrap();
    let (status, more) = patch(
        &app,
        &key,
        cid,
        json!({"categories": [{"label": "a", "value": 1}, {"label": "b", "value": 2}]}),
    )
    .await;
    assert_eq!(status, 200, "{more}");
    assert_eq!(more["categories"].as_array().unwrap().len(), 2);
    let (status, _) = patch(&app, &key, cid, json!({"categories": []})).await;
    assert_eq!(status, 400);

    let (_, boolean) = create(&app, &key, json!({"name": "ok", "dataType": "BOOLEAN"})).await;
    let bid = boolean["id"].as_str().unwrap();
    let (status, _) = patch(
        &app,
        &key,
        bid,
        json!({"categories": [{"label": "y", "value": 1}]}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, described) = patch(&app, &key, bid, json!({"description": "thumbs"})).await;
    assert_eq!(status, 200);
    assert_eq!(described["categories"], boolean["categories"]);
}

#[tokio::test]
async fn the_migration_runs_again_without_harm_over_existing_configs() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "configs-migrate").await;
    let (status, created) =
        create(&app, &key, json!({"name": "kept", "dataType": "BOOLEAN"})).await;
    assert_eq!(status, 200);
    // As a run killed after the statements but before its record, then a second run, would.
    let sql = include_str!("../../sql/postgres/0005_score_configs.sql");
    let client = app.stores.postgres.get().await.unwrap();
    client.batch_execute(sql).await.unwrap();
    client.batch_execute(sql).await.unwrap();
    let id = created["id"].as_str().unwrap();
    let (status, got) = app
        .get_json(&format!("/api/public/score-configs/{id}"), &key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got, created);
}
