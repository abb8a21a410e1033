//! Model definitions and prices: `/api/public/models` (a project's models and the shipped ones),
//! the shipped set `migrate` loads and keeps current, and the per-process catalog matching
//! reads through.

use std::time::Duration;

use langfuse_rs::domain::model::NewModel;
use langfuse_rs::domain::project::ProjectId;
use langfuse_rs::migrate::{self, MigrationSet};
use langfuse_rs::storage::models::{self, ModelCatalog, SHIPPED_MODELS};
use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};

use crate::helpers::{create_project, eventually, ApiKey, TestApp, TestConfig};

const SPEC_FIELDS: [&str; 14] = [
    "id",
    "modelName",
    "matchPattern",
    "startDate",
    "unit",
    "inputPrice",
    "outputPrice",
    "totalPrice",
    "tokenizerId",
    "tokenizerConfig",
    "isLangfuseManaged",
    "createdAt",
    "prices",
    "pricingTiers",
];

async fn delete(app: &TestApp, key: &ApiKey, id: &str) -> (u16, Value) {
    let response = app
        .http
        .delete(app.url(&format!("/api/public/models/{id}")))
        .header(AUTHORIZATION, key.basic_auth())
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn post(app: &TestApp, key: &ApiKey, body: Value) -> (u16, Value) {
    let response = app.post_as("/api/public/models", key, &body).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

fn shipped_count() -> usize {
    models::parse_shipped(SHIPPED_MODELS).unwrap().len()
}

#[tokio::test]
async fn a_project_model_is_created_read_listed_and_deleted_within_its_project() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "owner").await;
    let other = create_project(&app.config, "stranger").await;

    let (status, created) = post(
        &app,
        &key,
        json!({"modelName": "my-gpt", "matchPattern": "(?i)^my-gpt$", "unit": "TOKENS",
            "inputPrice": 0.0000025, "outputPrice": 0.00001, "startDate": "2025-01-01T00:00:00Z",
            "tokenizerId": "openai", "tokenizerConfig": {"tokenizerModel": "gpt-4o"}}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    for field in SPEC_FIELDS {
        assert!(created.get(field).is_some(), "{field} missing: {created}");
    }
    assert_eq!(created["isLangfuseManaged"], json!(false));
    assert_eq!(created["inputPrice"], json!(0.0000025));
    assert_eq!(created["outputPrice"], json!(0.00001));
    assert_eq!(created["totalPrice"], Value::Null);
    assert_eq!(created["startDate"], json!("2025-01-01T00:00:00.000Z"));
    assert_eq!(
        created["prices"],
        json!({"input": {"price": 0.0000025}, "output": {"price": 0.00001}})
    );
    let tiers = created["pricingTiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 1);
    assert_eq!(tiers[0]["name"], "Standard");
    assert_eq!(tiers[0]["isDefault"], true);
    assert_eq!(tiers[0]["conditions"], json!([]));
    let id = created["id"].as_str().unwrap();

    let (status, read) = app
        .get_json(&format!("/api/public/models/{id}"), &key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(read, created);

    // Listed for its project, after the shipped models named before it.
    let total = shipped_count() + 1;
    let (status, page) = app.get_json("/api/public/models?limit=100", &key).await;
    assert_eq!(status, 200);
    assert_eq!(
        page["meta"],
        json!({"page": 1, "limit": 100, "totalItems": total, "totalPages": total.div_ceil(100)})
    );
    let mut all = Vec::new();
    for p in 1..=total.div_ceil(100) {
        let (_, page) = app
            .get_json(&format!("/api/public/models?limit=100&page={p}"), &key)
            .await;
        all.extend(page["data"].as_array().unwrap().clone());
    }
    assert_eq!(all.len(), total);
    assert_eq!(all.iter().filter(|m| m["id"] == created["id"]).count(), 1);
    let names: Vec<&str> = all
        .iter()
        .map(|m| m["modelName"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ordered by model name");

    // Another project neither sees nor deletes it.
    let (_, theirs) = app.get_json("/api/public/models?limit=1", &other).await;
    assert_eq!(theirs["meta"]["totalItems"], json!(shipped_count()));
    let (status, _) = app
        .get_json(&format!("/api/public/models/{id}"), &other)
        .await;
    assert_eq!(status, 404);
    assert_eq!(delete(&app, &other, id).await.0, 404);

    let (status, body) = delete(&app, &key, id).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"message": "Model successfully deleted"}));
    let (status, body) = app
        .get_json(&format!("/api/public/models/{id}"), &key)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "LangfuseNotFoundError");
    assert_eq!(delete(&app, &key, id).await.0, 404);
}

#[tokio::test]
async fn tiered_models_answer_their_tiers_and_the_default_tiers_flat_prices() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "tiers").await;
    let (status, created) = post(
        &app,
        &key,
        json!({"modelName": "long-context", "matchPattern": "^long-context", "unit": "TOKENS",
            "pricingTiers": [
                {"name": "Large", "isDefault": false, "priority": 1,
                 "conditions": [{"usageDetailPattern": "(input|cache)", "operator": "gt", "value": 200000, "caseSensitive": false}],
                 "prices": {"input": 0.000004, "output": 0.000018, "input_cached_tokens": 0.0000004}},
                {"name": "Standard", "isDefault": true, "priority": 0, "conditions": [],
                 "prices": {"input": 0.000002, "output": 0.000012, "input_cached_tokens": 0.0000002}},
                {"name": "Priority", "isDefault": false, "priority": 2,
                 "conditions": [{"source": "model_parameters", "key": "service_tier", "operator": "in", "values": ["priority"]}],
                 "prices": {"input": 0.000003, "output": 0.00002, "input_cached_tokens": 0.0000003}}]}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["inputPrice"], json!(0.000002));
    assert_eq!(created["outputPrice"], json!(0.000012));
    assert_eq!(created["totalPrice"], Value::Null);
    assert_eq!(
        created["prices"]["input_cached_tokens"],
        json!({"price": 0.0000002})
    );
    let tiers = created["pricingTiers"].as_array().unwrap();
    let names: Vec<&str> = tiers.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Standard", "Large", "Priority"]);
    assert_eq!(
        tiers[1]["conditions"],
        json!([{"usageDetailPattern": "(input|cache)", "operator": "gt", "value": 200000, "caseSensitive": false}])
    );
    assert_eq!(
        tiers[2]["conditions"],
        json!([{"source": "model_parameters", "key": "service_tier", "operator": "in", "values": ["priority"]}])
    );
    assert_eq!(tiers[1]["prices"]["output"], json!(0.000018));
    assert!(tiers[0]["id"].as_str().unwrap().ends_with("_tier_default"));
}

#[tokio::test]
async fn bad_models_are_refused_with_the_field_named() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "refusals").await;
    let good =
        json!({"modelName": "m", "matchPattern": "^m$", "unit": "TOKENS", "inputPrice": 0.1});
    let with = |key: &str, value: Value| {
        let mut b = good.clone();
        b[key] = value;
        b
    };
    for (body, field) in [
        (with("matchPattern", json!("(unclosed")), "matchPattern"),
        (with("unit", json!("LITRES")), "unit"),
        (with("inputPrice", json!(-0.5)), "inputPrice"),
        (with("modelName", json!(42)), "modelName"),
        (with("startDate", json!("soon")), "startDate"),
        (with("totalPrice", json!(1)), "totalPrice"),
        (with("tokenizerId", json!("sentencepiece")), "tokenizerId"),
        (
            with(
                "pricingTiers",
                json!([{"name": "S", "isDefault": true, "priority": 0, "conditions": [], "prices": {"input": 1}}]),
            ),
            "pricingTiers",
        ),
        (json!({"matchPattern": "^m$", "inputPrice": 1}), "modelName"),
        (json!({"modelName": "m", "inputPrice": 1}), "matchPattern"),
        (
            json!({"modelName": "m", "matchPattern": "^m$", "pricingTiers": [
                {"name": "S", "isDefault": true, "priority": 0, "conditions": [], "prices": {"input": -1}}]}),
            "pricingTiers[0].prices.input",
        ),
    ] {
        let (status, answer) = post(&app, &key, body.clone()).await;
        assert_eq!(status, 400, "{body} was accepted: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(field), "{message} does not name {field}");
        assert_eq!(answer["error"], "InvalidRequestError");
    }
    let response = app
        .http
        .post(app.url("/api/public/models"))
        .header(AUTHORIZATION, key.basic_auth())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // A project names a model once.
    assert_eq!(post(&app, &key, good.clone()).await.0, 200);
    let (status, answer) = post(&app, &key, good).await;
    assert_eq!(status, 400);
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("already exists"));

    // Without keys, nothing.
    let response = app
        .http
        .get(app.url("/api/public/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, _) = app.get_json("/api/public/models?limit=1000", &key).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn shipped_models_are_listed_for_every_project_and_cannot_be_deleted() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "reader").await;
    let (status, page) = app.get_json("/api/public/models?limit=100", &key).await;
    assert_eq!(status, 200);
    assert_eq!(page["meta"]["totalItems"], json!(shipped_count()));
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 100);
    assert!(data.iter().all(|m| m["isLangfuseManaged"] == json!(true)));
    for m in data {
        for field in SPEC_FIELDS {
            assert!(m.get(field).is_some(), "{field} missing: {m}");
        }
    }

    let (_, all) = app
        .get_json("/api/public/models?limit=100&page=2", &key)
        .await;
    let gpt4o = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(data)
        .find(|m| m["modelName"] == "gpt-4o")
        .cloned()
        .expect("gpt-4o is shipped");
    assert_eq!(gpt4o["inputPrice"], json!(0.0000025));
    assert_eq!(gpt4o["tokenizerId"], json!("openai"));
    assert!(gpt4o["pricingTiers"].as_array().unwrap().len() > 1);

    let id = gpt4o["id"].as_str().unwrap();
    let (status, body) = delete(&app, &key, id).await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("built-in"));
    let (status, read) = app
        .get_json(&format!("/api/public/models/{id}"), &key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(read, gpt4o);
}

/// The shipped file with gpt-4o's input price changed, one model left out and one added.
fn edited_shipped_file() -> (String, String) {
    let mut file: Value = serde_json::from_str(SHIPPED_MODELS).unwrap();
    let list = file["models"].as_array_mut().unwrap();
    let removed = list.remove(list.len() - 1)["id"]
        .as_str()
        .unwrap()
        .to_string();
    for m in list.iter_mut() {
        if m["name"] == "gpt-4o" {
            m["prices"]["input"] = json!("0.000003");
        }
    }
    list.push(
        json!({"id": "test-added", "name": "added-model", "match": "(?i)^added-model$",
        "unit": "TOKENS", "prices": {"input": "0.5"}}),
    );
    (serde_json::to_string(&file).unwrap(), removed)
}

async fn scalar<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    pool: &deadpool_postgres::Pool,
    sql: &str,
) -> T {
    pool.get()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_changed_shipped_file_updates_shipped_rows_and_leaves_project_models_alone() {
    let config = TestConfig::new().await;
    config.migrate().await;
    create_project(&config, "keeps").await;
    let settings = config.settings();
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
    let project = ProjectId::authenticated("keeps");
    let mine = models::create(
        &pool,
        &project,
        &NewModel::from_request(
            &json!({"modelName": "gpt-4o", "matchPattern": "(?i)^gpt-4o$", "inputPrice": 0.01}),
        )
        .unwrap(),
    )
    .await
    .unwrap();

    // Re-running changes nothing.
    let again = langfuse_rs::app::migrate(&settings, false).await.unwrap();
    assert!(!again.contains("shipped models"), "{again}");
    let epoch: i64 = scalar(&pool, "SELECT epoch FROM model_catalog_state").await;

    let (text, removed) = edited_shipped_file();
    let mut set = MigrationSet::embedded();
    set.shipped_models = text.clone();
    let report = migrate::run(&pool, &settings.clickhouse, &set)
        .await
        .unwrap();
    assert_eq!(report.shipped_models, Some(shipped_count()));
    assert!(report.applied.is_empty());
    let price: String = scalar(
        &pool,
        "SELECT p.price::text FROM model_prices p JOIN models m ON m.id = p.model_id
         WHERE m.project_id IS NULL AND m.model_name = 'gpt-4o' AND p.usage_type = 'input'
           AND p.pricing_tier_id = m.id || '_tier_default'",
    )
    .await;
    assert_eq!(price, "0.000003");
    let gone: i64 = scalar(
        &pool,
        &format!("SELECT count(*) FROM models WHERE id = '{removed}'"),
    )
    .await;
    assert_eq!(gone, 0);
    let added: i64 = scalar(&pool, "SELECT count(*) FROM models WHERE id = 'test-added'").await;
    assert_eq!(added, 1);
    assert!(scalar::<i64>(&pool, "SELECT epoch FROM model_catalog_state").await > epoch);

    // The project's model, with its own gpt-4o price, is as it was.
    let still = models::get(&pool, &project, &mine.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.updated_at, mine.updated_at);
    assert_eq!(
        still.default_tier().unwrap().prices["input"].as_str(),
        "0.01"
    );

    // The same file again: nothing to do. The embedded one: back as shipped.
    let report = migrate::run(&pool, &settings.clickhouse, &set)
        .await
        .unwrap();
    assert_eq!(report.shipped_models, None);
    let back = langfuse_rs::app::migrate(&settings, false).await.unwrap();
    assert!(back.contains("shipped models"), "{back}");
    let count: i64 = scalar(
        &pool,
        "SELECT count(*) FROM models WHERE project_id IS NULL",
    )
    .await;
    assert_eq!(count as usize, shipped_count());
    let projects: i64 = scalar(
        &pool,
        "SELECT count(*) FROM models WHERE project_id IS NOT NULL",
    )
    .await;
    assert_eq!(projects, 1);
    pool.close();
}

#[tokio::test]
async fn two_migrates_at_once_load_the_shipped_models_once() {
    let config = TestConfig::new().await;
    let settings = config.settings();
    let (a, b) = tokio::join!(
        langfuse_rs::app::migrate(&settings, false),
        langfuse_rs::app::migrate(&settings, false)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        [&a, &b]
            .iter()
            .filter(|out| out.contains("shipped models"))
            .count(),
        1,
        "{a}\n{b}"
    );
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
    let count: i64 = scalar(&pool, "SELECT count(*) FROM models").await;
    assert_eq!(count as usize, shipped_count());
    let defaults: i64 = scalar(&pool, "SELECT count(*) FROM pricing_tiers WHERE is_default").await;
    assert_eq!(defaults as usize, shipped_count());
    pool.close();
}

#[tokio::test]
async fn the_catalog_follows_model_changes_within_its_refresh() {
    let config = TestConfig::new().await;
    config.migrate().await;
    create_project(&config, "cached").await;
    let settings = config.settings();
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
    let catalog = ModelCatalog::new(pool.clone(), Duration::from_millis(200));
    let now = Some(chrono::Utc::now());

    let found = catalog
        .find("cached", "gpt-4o", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.model_name, "gpt-4o");
    assert!(found.project_id.is_none());
    assert!(catalog
        .find("cached", "no-such-model", now)
        .await
        .unwrap()
        .is_none());

    let project = ProjectId::authenticated("cached");
    let mine = models::create(
        &pool,
        &project,
        &NewModel::from_request(
            &json!({"modelName": "gpt-4o-mine", "matchPattern": "(?i)^gpt-4o$", "inputPrice": 1}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    assert!(
        eventually(Duration::from_secs(3), || async {
            catalog
                .find("cached", "gpt-4o", now)
                .await
                .unwrap()
                .is_some_and(|m| m.id == mine.id)
        })
        .await,
        "the project's model overrides the shipped one"
    );
    // Other projects keep the shipped one.
    let other = catalog
        .find("elsewhere", "gpt-4o", now)
        .await
        .unwrap()
        .unwrap();
    assert!(other.project_id.is_none());

    assert!(models::delete(&pool, &project, &mine.id).await.unwrap());
    assert!(
        eventually(Duration::from_secs(3), || async {
            catalog
                .find("cached", "gpt-4o", now)
                .await
                .unwrap()
                .is_some_and(|m| m.project_id.is_none())
        })
        .await
    );
    pool.close();
}
