use langfuse_rs::config::Settings;

use crate::helpers::{ApiKey, TestApp, TestConfig};

/// The key `with_init` provisions.
fn init_key() -> ApiKey {
    ApiKey::new("pk-lf-boot", "sk-lf-boot-secret")
}

fn with_init(config: &mut TestConfig) {
    let key = init_key();
    config
        .set("LANGFUSE_INIT_ORG_ID", "boot-org")
        .set("LANGFUSE_INIT_ORG_NAME", "Boot Org")
        .set("LANGFUSE_INIT_PROJECT_ID", "boot-project")
        .set("LANGFUSE_INIT_PROJECT_NAME", "Boot Project")
        .set("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", key.public)
        .set("LANGFUSE_INIT_PROJECT_SECRET_KEY", key.secret);
}

async fn count(app_settings: &Settings, table: &str) -> i64 {
    let pool = langfuse_rs::storage::postgres::connect(&app_settings.database).unwrap();
    let client = pool.get().await.unwrap();
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn startup_provisions_the_init_project_and_its_key() {
    let mut config = TestConfig::new().await;
    with_init(&mut config);
    let app = TestApp::spawn(config).await;
    let response = app.get_as("/api/public/projects", &init_key()).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"][0]["id"], "boot-project");
    assert_eq!(body["data"][0]["name"], "Boot Project");
    assert_eq!(body["data"][0]["organization"]["name"], "Boot Org");
}

#[tokio::test]
async fn many_replicas_starting_at_once_create_each_record_once() {
    let mut config = TestConfig::new().await;
    with_init(&mut config);
    config.migrate().await;
    let settings = config.settings();

    let runs = (0..8).map(|_| {
        let settings = settings.clone();
        tokio::spawn(async move {
            // Each replica has its own pool, as separate processes would.
            let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
            langfuse_rs::bootstrap::run(&pool, &settings).await
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| {
            r.unwrap()
                .expect("bootstrap never fails on a race")
                .unwrap()
        })
        .collect();
    assert_eq!(outcomes.iter().filter(|o| o.created_org).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| o.created_project).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| o.created_api_key).count(), 1);
    for table in ["organizations", "projects", "api_keys"] {
        assert_eq!(count(&settings, table).await, 1, "{table}");
    }

    // And again later: still one of each, nothing overwritten.
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
    let again = langfuse_rs::bootstrap::run(&pool, &settings)
        .await
        .unwrap()
        .unwrap();
    assert!(!again.created_org && !again.created_project && !again.created_api_key);
}

#[tokio::test]
async fn no_init_variables_means_no_records() {
    let config = TestConfig::new().await;
    config.migrate().await;
    let settings = config.settings();
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
    assert!(langfuse_rs::bootstrap::run(&pool, &settings)
        .await
        .unwrap()
        .is_none());
    assert_eq!(count(&settings, "projects").await, 0);
}
