//! The web UI's scores table over HTTP, on scores sent through the ingestion API: each value type
//! shown, every filter as a query parameter, cursor pages, updated scores shown once, access, and
//! stored text escaped.

use serde_json::json;

use crate::helpers::{envelope, ApiKey, TestApp, TestConfig, UiClient};

const SCORES: &str = "/project/boot-project/scores";

fn minutes_ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn seeded() -> (TestApp, UiClient) {
    let mut config = TestConfig::new().await;
    config
        .set("LANGFUSE_INIT_ORG_ID", "boot-org")
        .set("LANGFUSE_INIT_PROJECT_ID", "boot-project")
        .set("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "pk-lf-scores")
        .set("LANGFUSE_INIT_PROJECT_SECRET_KEY", "sk-lf-scores-secret")
        .set("LANGFUSE_INIT_USER_EMAIL", "owner@example.com")
        .set("LANGFUSE_INIT_USER_PASSWORD", "initial password");
    let app = TestApp::spawn_with_worker(config).await;
    let key = ApiKey::new("pk-lf-scores", "sk-lf-scores-secret");
    let (a, b) = (minutes_ago(10), minutes_ago(20));
    let mut batch = vec![
        envelope(
            "t1",
            "trace-create",
            &a,
            json!({"id": "trace-a", "timestamp": a, "name": "chat", "userId": "alice"}),
        ),
        envelope(
            "t2",
            "trace-create",
            &b,
            json!({"id": "trace-b", "timestamp": b, "name": "chat", "userId": "bob"}),
        ),
        envelope(
            "s1",
            "score-create",
            &a,
            json!({"id": "s-acc", "traceId": "trace-a", "observationId": "obs-1", "name": "accuracy",
                   "value": 0.25, "comment": "<script>alert(1)</script>"}),
        ),
        envelope(
            "s2",
            "score-create",
            &b,
            json!({"id": "s-acc-b", "traceId": "trace-b", "name": "accuracy", "value": 0.75}),
        ),
        envelope(
            "s3",
            "score-create",
            &a,
            json!({"id": "s-cat", "traceId": "trace-a", "name": "tone", "value": "friendly",
                   "dataType": "CATEGORICAL"}),
        ),
        envelope(
            "s4",
            "score-create",
            &b,
            json!({"id": "s-bool", "traceId": "trace-b", "name": "resolved", "value": 1,
                   "dataType": "BOOLEAN"}),
        ),
        envelope(
            "s5",
            "score-create",
            &b,
            json!({"id": "s-text", "traceId": "trace-b", "name": "note", "value": "needs work",
                   "dataType": "TEXT"}),
        ),
    ];
    for i in 0..12 {
        let at = minutes_ago(60 + i);
        batch.push(envelope(&format!("f{i}"), "score-create", &at,
            json!({"id": format!("filler-{i:02}"), "traceId": "trace-b", "name": "filler", "value": i})));
    }
    app.ingest_accepted(&key, &json!({ "batch": batch })).await;
    assert!(app.wait_for_rows("scores", "boot-project", 17).await);
    // A newer version of a score replaces it.
    let update = minutes_ago(15);
    app.ingest_accepted(
        &key,
        &json!({"batch": [envelope("s2b", "score-create", &update,
        json!({"id": "s-acc-b", "traceId": "trace-b", "name": "accuracy", "value": 0.8}))]}),
    )
    .await;
    let updated = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        app.get_json("/api/public/v2/scores/s-acc-b", &key).await.1["value"] == json!(0.8)
    })
    .await;
    assert!(updated, "the update was written");
    let owner = UiClient::new(&app);
    assert_eq!(
        owner
            .sign_in("owner@example.com", "initial password")
            .await
            .status(),
        303
    );
    (app, owner)
}

fn rows(html: &str) -> usize {
    html.matches("<td class=\"score-name\">").count()
}

#[tokio::test]
async fn the_scores_table_filters_pages_and_escapes() {
    let (_app, owner) = seeded().await;
    let (status, html) = owner.page(SCORES).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        rows(&html),
        17,
        "every score once, the updated one in its newest version"
    );
    assert!(html.contains("0.8") && !html.contains(">0.75<"));
    assert!(
        html.contains(">friendly<") && html.contains(">true<") && html.contains(">needs work<")
    );
    assert!(html.contains("href=\"/project/boot-project/traces/trace-a\""));
    assert!(html.contains("obs-1"));
    assert!(html.contains("href=\"/project/boot-project/users/alice\""));
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(html.contains("aria-current=\"page\">Scores</a>"));

    for (query, expected) in [
        ("name=accuracy", 2),
        ("name=accuracy&valueMin=0.5", 1),
        ("name=accuracy&valueMax=0.5", 1),
        ("dataType=CATEGORICAL", 1),
        ("dataType=BOOLEAN", 1),
        ("source=API", 17),
        ("source=EVAL", 0),
        ("userId=alice", 2),
        ("traceId=trace-a", 2),
        ("name=filler", 12),
    ] {
        let (status, html) = owner.page(&format!("{SCORES}?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(rows(&html), expected, "{query}");
    }
    let from = chrono::Utc::now() - chrono::Duration::minutes(30);
    let (_, recent) = owner
        .page(&format!("{SCORES}?from={}", from.format("%Y-%m-%dT%H:%M")))
        .await;
    assert_eq!(rows(&recent), 5);
    let (_, empty) = owner.page(&format!("{SCORES}?name=nothing")).await;
    assert!(empty.contains("No score matches these filters."));
    let (status, bad) = owner.page(&format!("{SCORES}?valueMin=abc")).await;
    assert_eq!(status, 200);
    assert!(bad.contains("is not a number"));

    // Cursor pages of 25 keep the filters in their links.
    let (_, first) = owner.page(&format!("{SCORES}?name=filler&limit=25")).await;
    assert_eq!(rows(&first), 12);
    let mut seen = 0;
    let mut next = Some(format!("{SCORES}?limit=25"));
    while let Some(page) = next {
        let (status, html) = owner.page(&page).await;
        assert_eq!(status, 200);
        seen += rows(&html);
        next = html
            .split("rel=\"next\"")
            .next()
            .and_then(|before| before.rsplit("href=\"").next())
            .filter(|_| html.contains("rel=\"next\""))
            .map(|href| href.split('"').next().unwrap().replace("&amp;", "&"));
    }
    assert_eq!(seen, 17);
}

#[tokio::test]
async fn strangers_do_not_see_a_projects_scores() {
    let (app, _owner) = seeded().await;
    let stranger = UiClient::signed_up(&app, "Sam", "sam@example.com").await;
    assert_eq!(stranger.get(SCORES).await.status(), 404);
    let anonymous = UiClient::new(&app);
    assert_eq!(anonymous.get(SCORES).await.status(), 303);
}
