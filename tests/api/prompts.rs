//! Prompt management through the HTTP API: versions and labels, composed prompts, errors, the
//! cache of each `serve` process (including two real processes and Redis away) and races.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};

use crate::helpers::{
    becomes_healthy, create_project, eventually, free_port, redis_url, socket_of, with_socket,
    ApiKey, TcpProxy, TestApp, TestConfig,
};

const PROMPTS: &str = "/api/public/v2/prompts";

/// The SDKs' way of putting a name in the path: every reserved character encoded, `/` too.
fn encode(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// An HTTP client for one project of a running server.
struct Api {
    base: String,
    key: ApiKey,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    body: Value,
    /// The `cache;desc=` part of `Server-Timing`, if any.
    source: Option<String>,
    server_ms: Option<f64>,
    /// The whole `Server-Timing` header.
    timing: String,
}

impl Api {
    async fn of(app: &TestApp, project: &str) -> Api {
        let key = create_project(&app.config, project).await;
        Api::at(&app.address, key)
    }

    fn at(base: &str, key: ApiKey) -> Api {
        Api {
            base: base.to_string(),
            key,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request
            .header(AUTHORIZATION, self.key.basic_auth())
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let timing = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let source = timing
            .split(',')
            .find_map(|part| part.trim().strip_prefix("cache;desc="))
            .map(str::to_string);
        let server_ms = timing
            .split(',')
            .find_map(|part| part.trim().strip_prefix("app;dur="))
            .and_then(|d| d.parse().ok());
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            source,
            server_ms,
            timing,
        }
    }

    async fn create(&self, body: Value) -> Answer {
        self.send(
            self.http
                .post(format!("{}{PROMPTS}", self.base))
                .json(&body),
        )
        .await
    }

    async fn get(&self, name: &str, query: &str) -> Answer {
        let url = format!("{}{PROMPTS}/{}?{query}", self.base, encode(name));
        self.send(self.http.get(url)).await
    }

    async fn list(&self, query: &str) -> Answer {
        self.send(self.http.get(format!("{}{PROMPTS}?{query}", self.base)))
            .await
    }

    async fn patch(&self, name: &str, version: i64, labels: &[&str]) -> Answer {
        let url = format!("{}{PROMPTS}/{}/versions/{version}", self.base, encode(name));
        self.send(self.http.patch(url).json(&json!({ "newLabels": labels })))
            .await
    }

    async fn delete(&self, name: &str, query: &str) -> Answer {
        let url = format!("{}{PROMPTS}/{}?{query}", self.base, encode(name));
        self.send(self.http.delete(url)).await
    }

    /// Every version of `name` as `(version, labels)`, read without the cache.
    async fn versions(&self, name: &str) -> Vec<(i64, Vec<String>)> {
        let list = self.list(&format!("name={}", encode(name))).await;
        let Some(meta) = list.body["data"].get(0) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in meta["versions"].as_array().unwrap() {
            let v = v.as_i64().unwrap();
            let one = self.get(name, &format!("version={v}&resolve=false")).await;
            let labels = one.body["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect();
            out.push((v, labels));
        }
        out
    }
}

fn labels(answer: &Answer) -> Vec<&str> {
    answer.body["labels"]
        .as_array()
        .unwrap_or_else(|| panic!("no labels in {}", answer.body))
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn versions_take_labels_from_each_other_and_latest_is_always_the_newest() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-versions").await;

    let v1 = api
        .create(json!({
            "name": "greeting", "prompt": "Hello {{name}}", "labels": ["production"],
            "config": {"temperature": 0.3}, "tags": ["support"], "commitMessage": "first",
        }))
        .await;
    assert_eq!(v1.status, 201, "{}", v1.body);
    assert_eq!(v1.body["version"], 1);
    assert_eq!(v1.body["type"], "text");
    assert_eq!(v1.body["prompt"], "Hello {{name}}");
    assert_eq!(v1.body["config"], json!({"temperature": 0.3}));
    assert_eq!(v1.body["tags"], json!(["support"]));
    assert_eq!(v1.body["commitMessage"], "first");
    assert_eq!(v1.body["createdBy"], "API");
    assert_eq!(v1.body["projectId"], "p-versions");
    assert_eq!(v1.body["isActive"], true);
    assert_eq!(labels(&v1), vec!["production", "latest"]);
    assert!(v1.body["createdAt"].as_str().unwrap().ends_with('Z'));

    // No labels given: the new version is `latest` only, and keeps the name's tags.
    let v2 = api
        .create(json!({"name": "greeting", "prompt": "Hi {{name}}"}))
        .await;
    assert_eq!(v2.status, 201, "{}", v2.body);
    assert_eq!(v2.body["version"], 2);
    assert_eq!(labels(&v2), vec!["latest"]);
    assert_eq!(v2.body["tags"], json!(["support"]));
    assert_eq!(v2.body["config"], json!({}));
    assert_eq!(v2.body["commitMessage"], Value::Null);

    let production = api.get("greeting", "").await;
    assert_eq!(production.status, 200, "{}", production.body);
    assert_eq!(production.body["version"], 1);
    assert_eq!(labels(&production), vec!["production"]);
    assert_eq!(production.body["resolutionGraph"], Value::Null);
    assert_eq!(api.get("greeting", "label=latest").await.body["version"], 2);
    assert_eq!(
        api.get("greeting", "version=2").await.body["prompt"],
        "Hi {{name}}"
    );

    // A third version taking `production` and new tags: v1 loses the label, all carry the tags.
    let v3 = api
        .create(json!({"name": "greeting", "prompt": "Hey", "labels": ["production", "staging"], "tags": ["b", "a"]}))
        .await;
    assert_eq!(labels(&v3), vec!["production", "staging", "latest"]);
    assert_eq!(
        api.versions("greeting").await,
        vec![
            (1, vec![]),
            (2, vec![]),
            (
                3,
                vec!["production".into(), "staging".into(), "latest".into()]
            )
        ]
    );
    for v in 1..=3 {
        let one = api.get("greeting", &format!("version={v}")).await;
        assert_eq!(one.body["tags"], json!(["b", "a"]), "version {v}");
        assert_eq!(one.body["isActive"], v == 3);
    }

    // A chat prompt: messages as Langfuse stores them, placeholders kept.
    let chat = api
        .create(
            json!({"name": "assistant", "type": "chat", "labels": ["production"],
            "config": {"model": "gpt-4o"},
            "prompt": [
                {"role": "system", "content": "You are {{persona}}", "type": "chatmessage"},
                {"type": "placeholder", "name": "history"},
                {"role": "user", "content": "{{question}}"}
            ]}),
        )
        .await;
    assert_eq!(chat.status, 201, "{}", chat.body);
    let read = api.get("assistant", "").await;
    assert_eq!(read.body["type"], "chat");
    assert_eq!(
        read.body["prompt"],
        json!([
            {"role": "system", "content": "You are {{persona}}"},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{question}}"}
        ])
    );
}

#[tokio::test]
async fn reads_answer_in_langfuse_terms() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-reads").await;
    api.create(json!({"name": "x", "prompt": "x"})).await;

    let both = api.get("x", "version=1&label=latest").await;
    assert_eq!(both.status, 400);
    assert_eq!(
        both.body["message"],
        "Cannot specify both version and label"
    );
    assert_eq!(both.body["error"], "InvalidRequestError");
    for bad in ["version=abc", "version=0", "version=1.5", "resolve=maybe"] {
        let answer = api.get("x", bad).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
        assert!(
            answer.body["message"]
                .as_str()
                .unwrap()
                .contains("Invalid query"),
            "{bad}"
        );
    }
    // Empty values count as absent, as in Langfuse: the production label is asked for.
    let answer = api.get("x", "version=&label=").await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.body["message"],
        "Prompt not found: 'x' with label 'production'"
    );
    assert_eq!(answer.body["error"], "LangfuseNotFoundError");
    assert_eq!(
        api.get("nope", "version=3").await.body["message"],
        "Prompt not found: 'nope' with version 3"
    );
    assert_eq!(
        api.get("x", "label=staging").await.body["message"],
        "Prompt not found: 'x' with label 'staging'"
    );

    let anonymous = reqwest::get(app.url(&format!("{PROMPTS}/x")))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let other = Api::of(&app, "p-reads-other").await;
    assert_eq!(
        other.get("x", "label=latest").await.status,
        404,
        "prompts belong to one project"
    );
}

#[tokio::test]
async fn names_with_folders_and_reserved_characters_round_trip() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-names").await;
    let name = "team/support bot+v1%2F:é";
    let created = api
        .create(json!({"name": name, "prompt": "x", "labels": ["production"]}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let read = api.get(name, "").await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["name"], name);
    assert_eq!(api.patch(name, 1, &["staging"]).await.status, 200);
    assert_eq!(api.get(name, "label=staging").await.body["name"], name);
    assert_eq!(
        api.list(&format!("name={}", encode(name))).await.body["data"][0]["name"],
        name
    );
    assert_eq!(api.delete(name, "").await.status, 204);
    assert_eq!(api.get(name, "label=staging").await.status, 404);
}

#[tokio::test]
async fn bad_writes_are_refused_with_a_reason_and_change_nothing() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-bad").await;
    assert_eq!(
        api.create(json!({"name": "t", "prompt": "one", "labels": ["production"]}))
            .await
            .status,
        201
    );
    let before = api.versions("t").await;

    for (body, needle) in [
        (
            json!({"name": "t", "type": "chat", "prompt": [{"role": "user", "content": "x"}]}),
            "text prompt",
        ),
        (
            json!({"name": "t", "prompt": "x", "labels": ["Production"]}),
            "label",
        ),
        (
            json!({"name": "t", "prompt": "x", "labels": ["ok", "not ok"]}),
            "label",
        ),
        (json!({"name": "", "prompt": "x"}), "name"),
        (json!({"name": "a|b", "prompt": "x"}), "'|'"),
        (json!({"name": "t", "prompt": 3}), "string"),
        (
            json!({"name": "t", "prompt": "@@@langfusePrompt:name=gone|label=production@@@"}),
            "does not exist",
        ),
        (
            json!({"name": "t", "prompt": "@@@langfusePrompt:name=t|version=1@@@"}),
            "circular",
        ),
        (
            json!({"name": "t", "prompt": "@@@langfusePrompt:name=t|version=x@@@"}),
            "invalid prompt reference",
        ),
    ] {
        let answer = api.create(body.clone()).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(answer.body["error"], "InvalidRequestError");
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let malformed = app
        .http
        .post(app.url(PROMPTS))
        .header(AUTHORIZATION, api.key.basic_auth())
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);

    let latest = api.patch("t", 1, &["latest"]).await;
    assert_eq!(latest.status, 400);
    assert!(latest.body["message"].as_str().unwrap().contains("latest"));
    assert_eq!(api.patch("t", 1, &["UPPER"]).await.status, 400);
    let missing = api.patch("t", 7, &["staging"]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body["message"],
        "Prompt 't' version 7 not found in project"
    );
    assert_eq!(api.patch("nope", 1, &["staging"]).await.status, 404);
    assert_eq!(
        api.delete("t", "version=1&label=production").await.status,
        400
    );
    assert_eq!(api.delete("t", "version=9").await.status, 404);
    assert_eq!(api.delete("t", "label=staging").await.status, 404);
    assert_eq!(
        api.delete("nope", "").await.body["message"],
        "Prompt not found"
    );

    assert_eq!(api.versions("t").await, before, "nothing was written");
    assert_eq!(api.list("").await.body["meta"]["totalItems"], 1);
}

#[tokio::test]
async fn patch_adds_labels_and_delete_moves_latest_back() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-labels").await;
    for (content, labels) in [
        ("one", vec!["production"]),
        ("two", vec![]),
        ("three", vec!["staging"]),
    ] {
        let answer = api
            .create(json!({"name": "n", "prompt": content, "labels": labels}))
            .await;
        assert_eq!(answer.status, 201);
    }
    let patched = api.patch("n", 2, &["production", "qa"]).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(labels(&patched), vec!["production", "qa"]);
    assert_eq!(api.get("n", "").await.body["prompt"], "two");
    // Labels are only added by PATCH: v2 keeps `production` when given other labels.
    let again = api.patch("n", 2, &["canary"]).await;
    assert_eq!(labels(&again), vec!["canary", "production", "qa"]);
    assert_eq!(api.patch("n", 1, &[]).await.status, 200);

    // Deleting the `latest` version hands the label to the newest remaining one.
    assert_eq!(api.delete("n", "version=3").await.status, 204);
    assert_eq!(
        api.versions("n").await,
        vec![
            (1, vec![]),
            (
                2,
                vec![
                    "canary".into(),
                    "production".into(),
                    "qa".into(),
                    "latest".into()
                ]
            )
        ]
    );
    assert_eq!(api.get("n", "label=latest").await.body["version"], 2);
    assert_eq!(api.delete("n", "label=production").await.status, 204);
    assert_eq!(api.versions("n").await, vec![(1, vec!["latest".into()])]);
    // The next version is numbered after the highest remaining one.
    assert_eq!(
        api.create(json!({"name": "n", "prompt": "again"}))
            .await
            .body["version"],
        2
    );
    assert_eq!(api.delete("n", "").await.status, 204);
    assert!(api.versions("n").await.is_empty());
    assert_eq!(api.get("n", "label=latest").await.status, 404);
}

#[tokio::test]
async fn the_list_filters_versions_and_pages_by_name() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-list").await;
    for (name, labels, tags) in [
        ("b", vec!["production"], vec!["x"]),
        ("a", vec![], vec!["y"]),
        ("a", vec!["production"], vec!["y"]),
        ("c", vec!["staging"], vec!["x", "z"]),
    ] {
        let answer = api
            .create(
                json!({"name": name, "prompt": name, "labels": labels, "tags": tags,
                           "config": {"for": name}}),
            )
            .await;
        assert_eq!(answer.status, 201);
    }
    let all = api.list("").await;
    assert_eq!(all.status, 200);
    let names: Vec<&str> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "b", "c"]);
    let a = &all.body["data"][0];
    assert_eq!(a["versions"], json!([1, 2]));
    assert_eq!(a["labels"], json!(["latest", "production"]));
    assert_eq!(a["tags"], json!(["y"]));
    assert_eq!(a["type"], "text");
    assert_eq!(a["lastConfig"], json!({"for": "a"}));
    assert!(a["lastUpdatedAt"].as_str().unwrap().ends_with('Z'));
    let meta = json!({"page": 1, "limit": 10, "totalItems": 3, "totalPages": 1});
    assert_eq!(all.body["meta"], meta);
    assert_eq!(all.body["pagination"], meta);

    let production = api.list("label=production").await;
    let data = production.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(
        data[0]["versions"],
        json!([2]),
        "only the matching version of a"
    );
    assert_eq!(api.list("tag=x").await.body["meta"]["totalItems"], 2);
    assert_eq!(
        api.list("name=c").await.body["data"][0]["labels"],
        json!(["latest", "staging"])
    );
    assert_eq!(api.list("version=2").await.body["data"][0]["name"], "a");

    let page = api.list("limit=2&page=2").await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["data"][0]["name"], "c");
    assert_eq!(
        page.body["meta"],
        json!({"page": 2, "limit": 2, "totalItems": 3, "totalPages": 2})
    );

    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        api.list(&format!("fromUpdatedAt={}", encode(&future)))
            .await
            .body["meta"]["totalItems"],
        0
    );
    assert_eq!(
        api.list(&format!("toUpdatedAt={}", encode(&future)))
            .await
            .body["meta"]["totalItems"],
        3
    );
    for bad in ["limit=101", "page=0", "fromUpdatedAt=yesterday", "limit=x"] {
        assert_eq!(api.list(bad).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn composed_prompts_resolve_on_read_and_cannot_be_broken() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-composed").await;
    let ok = |a: &Answer| assert!(a.status == 201 || a.status == 200, "{}", a.body);
    ok(&api
        .create(json!({"name": "tone", "prompt": "friendly", "labels": ["production"]}))
        .await);
    ok(&api
        .create(json!({"name": "tone", "prompt": "formal"}))
        .await);
    ok(&api.create(json!({"name": "rules", "prompt": "Be @@@langfusePrompt:name=tone|label=production@@@.", "labels": ["production"]})).await);
    let chat = api
        .create(json!({"name": "agent", "type": "chat", "labels": ["production"], "prompt": [
            {"role": "system", "content": "@@@langfusePrompt:name=rules|label=production@@@ (v2: @@@langfusePrompt:name=tone|version=2@@@)"},
            {"role": "user", "content": "{{q}}"},
        ]}))
        .await;
    ok(&chat);
    assert_eq!(
        chat.body["prompt"][0]["content"],
        "@@@langfusePrompt:name=rules|label=production@@@ (v2: @@@langfusePrompt:name=tone|version=2@@@)",
        "the create answer is the version as stored"
    );

    let read = api.get("agent", "").await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(
        read.body["prompt"][0]["content"],
        "Be friendly. (v2: formal)"
    );
    let graph = &read.body["resolutionGraph"];
    assert_eq!(graph["root"]["name"], "agent");
    let agent_id = read.body["id"].as_str().unwrap();
    let included: BTreeSet<String> = graph["dependencies"][agent_id]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{}@{}", n["name"].as_str().unwrap(), n["version"]))
        .collect();
    assert_eq!(
        included,
        BTreeSet::from(["rules@1".to_string(), "tone@2".to_string()])
    );
    let raw = api.get("agent", "resolve=false").await;
    assert!(raw.body["prompt"][0]["content"]
        .as_str()
        .unwrap()
        .starts_with("@@@"));
    assert_eq!(raw.body["resolutionGraph"], Value::Null);

    // Moving the included label changes what the composed prompt reads, at once.
    assert_eq!(api.get("agent", "").await.source.as_deref(), Some("memory"));
    ok(&api.patch("tone", 2, &["production"]).await);
    assert_eq!(
        api.get("agent", "").await.body["prompt"][0]["content"],
        "Be formal. (v2: formal)"
    );

    // Only text prompts can be included.
    let to_chat = api
        .create(json!({"name": "x", "prompt": "@@@langfusePrompt:name=agent|label=production@@@"}))
        .await;
    assert_eq!(to_chat.status, 400);
    assert!(
        to_chat.body["message"]
            .as_str()
            .unwrap()
            .contains("chat prompt"),
        "{}",
        to_chat.body
    );

    // Label moves that would make a prompt include itself are refused, however far up the
    // includer is. tone v3 includes helper(beta); helper v2 includes rules, which includes
    // tone(production).
    ok(&api
        .create(json!({"name": "helper", "prompt": "plain", "labels": ["beta"]}))
        .await);
    ok(&api
        .create(json!({"name": "tone", "prompt": "T @@@langfusePrompt:name=helper|label=beta@@@"}))
        .await);
    ok(&api
        .create(json!({"name": "helper", "prompt": "@@@langfusePrompt:name=rules|version=1@@@"}))
        .await);
    // production to tone v3: helper v2 -> rules -> tone v3 -> helper v1.
    let cycle = api.patch("tone", 3, &["production"]).await;
    assert_eq!(cycle.status, 400, "{}", cycle.body);
    let message = cycle.body["message"].as_str().unwrap();
    assert!(
        message.contains("circular") && message.contains("'helper' version 2"),
        "{message}"
    );
    assert_eq!(
        api.get("tone", "").await.body["version"],
        2,
        "the refused move left no trace"
    );
    // beta to helper v2: tone v3 -> helper v2 -> rules -> tone v2.
    let cycle = api.patch("helper", 2, &["beta"]).await;
    assert_eq!(cycle.status, 400, "{}", cycle.body);
    let message = cycle.body["message"].as_str().unwrap();
    assert!(
        message.contains("circular") && message.contains("'tone' version 3"),
        "{message}"
    );
    assert_eq!(api.get("helper", "label=beta").await.body["version"], 1);
    // A prompt may not include another version of itself, whatever the label.
    let own_name = api
        .create(
            json!({"name": "tone", "prompt": "@@@langfusePrompt:name=rules|label=production@@@"}),
        )
        .await;
    assert_eq!(own_name.status, 400, "{}", own_name.body);

    // Included versions cannot be deleted out from under their includers.
    let blocked = api.delete("tone", "version=2").await;
    assert_eq!(blocked.status, 400);
    assert!(
        blocked.body["message"]
            .as_str()
            .unwrap()
            .contains("'agent' version 1"),
        "{}",
        blocked.body
    );
    assert_eq!(api.delete("rules", "").await.status, 400);
    assert_eq!(api.delete("helper", "label=beta").await.status, 400);
    assert_eq!(
        api.delete("tone", "version=1").await.status,
        204,
        "v1 is included by nobody"
    );
    assert_eq!(api.delete("helper", "version=2").await.status, 204);

    // Nesting deeper than Langfuse allows is refused at creation.
    ok(&api.create(json!({"name": "d0", "prompt": "end"})).await);
    for i in 1..=4 {
        let answer = api
            .create(json!({"name": format!("d{i}"), "prompt": format!("@@@langfusePrompt:name=d{}|version=1@@@", i - 1)}))
            .await;
        assert_eq!(answer.status, 201, "d{i}: {}", answer.body);
    }
    assert_eq!(api.get("d4", "version=1").await.body["prompt"], "end");
    let deep = api
        .create(json!({"name": "d5", "prompt": "@@@langfusePrompt:name=d4|version=1@@@"}))
        .await;
    assert_eq!(deep.status, 400);
    assert!(
        deep.body["message"]
            .as_str()
            .unwrap()
            .contains("levels deep"),
        "{}",
        deep.body
    );
}

#[tokio::test]
async fn the_writing_process_serves_the_new_state_at_once() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-cache").await;
    api.create(json!({"name": "c", "prompt": "one", "labels": ["production"]}))
        .await;
    let first = api.get("c", "").await;
    assert_eq!(first.source.as_deref(), Some("database"));
    assert!(first.server_ms.is_some());
    assert!(first.timing.contains("miss;dur="), "{}", first.timing);
    let second = api.get("c", "").await;
    assert_eq!(second.source.as_deref(), Some("memory"));
    assert!(!second.timing.contains("miss;dur="), "{}", second.timing);
    assert_eq!(second.body, first.body);
    // Unknown prompts are remembered too, and forgotten when created.
    assert_eq!(api.get("later", "").await.status, 404);
    let missing = api.get("later", "").await;
    assert_eq!(
        (missing.status, missing.source.as_deref()),
        (404, Some("memory"))
    );
    api.create(json!({"name": "later", "prompt": "now", "labels": ["production"]}))
        .await;
    assert_eq!(api.get("later", "").await.body["prompt"], "now");

    for (i, content) in ["two", "three", "four"].iter().enumerate() {
        api.create(json!({"name": "c", "prompt": content, "labels": ["production"]}))
            .await;
        let read = api.get("c", "").await;
        assert_eq!(read.body["prompt"], *content);
        assert_eq!(read.body["version"], i + 2);
    }
    api.patch("c", 1, &["production"]).await;
    assert_eq!(api.get("c", "").await.body["prompt"], "one");
    api.delete("c", "version=1").await;
    assert_eq!(api.get("c", "").await.status, 404);
}

#[tokio::test]
async fn concurrent_misses_of_one_prompt_load_it_once() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-flight").await;
    for version in 1..=3 {
        // Each write starts a new epoch: nothing of the prompt is in memory or Redis for it.
        api.create(json!({"name": "f", "prompt": format!("v{version}"), "labels": ["production"]}))
            .await;
        let reads = futures::future::join_all((0..16).map(|_| api.get("f", ""))).await;
        let sources: Vec<&str> = reads
            .iter()
            .map(|r| r.source.as_deref().unwrap_or("none"))
            .collect();
        assert_eq!(
            sources.iter().filter(|s| **s == "database").count(),
            1,
            "one load from PostgreSQL, the others wait for it: {sources:?}"
        );
        for read in &reads {
            assert_eq!((read.status, &read.body["version"]), (200, &json!(version)));
        }
    }
}

#[tokio::test]
async fn concurrent_creates_of_one_name_get_distinct_gap_free_versions() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-race").await;
    let answers = futures::future::join_all((0..24).map(|i| {
        let api = &api;
        async move {
            api.create(
                json!({"name": "hot", "prompt": format!("writer {i}"), "labels": ["production"]}),
            )
            .await
        }
    }))
    .await;
    let mut versions: Vec<i64> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 201, "{}", a.body);
            a.body["version"].as_i64().unwrap()
        })
        .collect();
    versions.sort();
    assert_eq!(versions, (1..=24).collect::<Vec<_>>());
    let stored = api.versions("hot").await;
    assert_eq!(stored.len(), 24);
    for (version, labels) in &stored {
        let expected: Vec<String> = if *version == 24 {
            vec!["production".into(), "latest".into()]
        } else {
            vec![]
        };
        assert_eq!(labels, &expected, "version {version}");
    }
    // The version that kept `production` is the one created last.
    let newest = answers.iter().find(|a| a.body["version"] == 24).unwrap();
    assert_eq!(
        api.get("hot", "").await.body["prompt"],
        newest.body["prompt"]
    );
}

#[tokio::test]
async fn readers_see_whole_versions_while_a_label_moves() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let api = Api::of(&app, "p-move").await;
    api.create(json!({"name": "m", "prompt": "content 1", "labels": ["production"]}))
        .await;
    api.create(json!({"name": "m", "prompt": "content 2"}))
        .await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let api = Api::at(&api.base, api.key.clone());
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut reads = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let read = api.get("m", "").await;
                    assert_eq!(read.status, 200, "{}", read.body);
                    let version = read.body["version"].as_i64().unwrap();
                    assert_eq!(read.body["prompt"], format!("content {version}"));
                    assert!(labels(&read).contains(&"production"), "{}", read.body);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for round in 0..20 {
        let target = 1 + (round + 1) % 2;
        let patched = api.patch("m", target, &["production"]).await;
        assert_eq!(patched.status, 200);
        // The writer's own process answers with the moved label straight away.
        assert_eq!(api.get("m", "").await.body["version"], target);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
}

/// A `langfuse-rs serve` process of its own, killed when dropped.
struct Serve {
    child: tokio::process::Child,
    address: String,
}

impl Serve {
    async fn start(config: &TestConfig) -> Serve {
        let port = free_port();
        let mut command = config.command(&["serve"]);
        command
            .env("HOSTNAME", "127.0.0.1")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let child = command.spawn().expect("start serve");
        let address = format!("http://127.0.0.1:{port}");
        let up = becomes_healthy(port).await;
        assert!(up, "serve on port {port} did not come up");
        Serve { child, address }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Reads `name` on `api` until `check` holds; returns how long that took.
async fn time_until(api: &Api, name: &str, check: impl Fn(&Answer) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let read = api.get(name, "").await;
        if check(&read) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never converged: {}",
            read.body
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two `serve` processes on one installation: what one writes, the other serves within a second,
/// through pub/sub alone (polling is set to a minute here).
async fn replicas_converge(mut config: TestConfig) {
    config.set("LANGFUSE_RS__PROMPTS__INVALIDATION_POLL_MS", "60000");
    config.migrate().await;
    let key = create_project(&config, "p-replicas").await;
    let (a, b) = (Serve::start(&config).await, Serve::start(&config).await);
    let (api_a, api_b) = (Api::at(&a.address, key.clone()), Api::at(&b.address, key));
    api_a
        .create(json!({"name": "r", "prompt": "one", "labels": ["production"]}))
        .await;
    api_a.create(json!({"name": "r", "prompt": "two"})).await;
    // b holds version 1 in memory.
    api_b.get("r", "").await;
    assert_eq!(api_b.get("r", "").await.source.as_deref(), Some("memory"));

    for (version, content) in [(2, "two"), (1, "one"), (2, "two")] {
        assert_eq!(api_a.patch("r", version, &["production"]).await.status, 200);
        assert_eq!(
            api_a.get("r", "").await.body["prompt"],
            content,
            "the writer, at once"
        );
        let took = time_until(&api_b, "r", |r| r.body["prompt"] == content).await;
        assert!(
            took < Duration::from_secs(1),
            "the other replica took {took:?}"
        );
    }
    // A new version written through b reaches a too.
    api_a.get("r", "").await;
    api_b
        .create(json!({"name": "r", "prompt": "three", "labels": ["production"]}))
        .await;
    let took = time_until(&api_a, "r", |r| r.body["prompt"] == "three").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    drop((a, b));
}

#[tokio::test]
async fn two_serve_processes_converge_within_a_second() {
    replicas_converge(TestConfig::new().await).await;
}

#[tokio::test]
async fn two_serve_processes_converge_within_a_second_on_redis_cluster() {
    let mut config = TestConfig::new().await;
    config.use_redis_cluster();
    replicas_converge(config).await;
}

/// A write whose invalidation message never arrives (written to the database directly, as if
/// the message was lost) still reaches every replica, through the PostgreSQL poll.
#[tokio::test]
async fn a_lost_invalidation_is_caught_up_by_polling() {
    let mut config = TestConfig::new().await;
    config.set("LANGFUSE_RS__PROMPTS__INVALIDATION_POLL_MS", "250");
    config.migrate().await;
    let key = create_project(&config, "p-lost").await;
    let serve = Serve::start(&config).await;
    let api = Api::at(&serve.address, key);
    api.create(json!({"name": "l", "prompt": "one", "labels": ["production"]}))
        .await;
    api.create(json!({"name": "l", "prompt": "two"})).await;
    api.get("l", "").await;
    assert_eq!(api.get("l", "").await.source.as_deref(), Some("memory"));

    let pool = langfuse_rs::storage::postgres::connect(&config.settings().database).unwrap();
    let project = langfuse_rs::domain::project::ProjectId::authenticated("p-lost");
    langfuse_rs::storage::prompts::update_labels(&pool, &project, "l", 2, &["production".into()])
        .await
        .unwrap();
    let took = time_until(&api, "l", |r| r.body["prompt"] == "two").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

/// Redis away: reads come from PostgreSQL (or memory), writes still succeed; back, all is well.
#[tokio::test]
async fn prompts_are_served_while_redis_is_away() {
    let mut config = TestConfig::new().await;
    let proxy = TcpProxy::start(socket_of(&redis_url())).await;
    config.set(
        "REDIS_CONNECTION_STRING",
        with_socket(&redis_url(), proxy.addr),
    );
    let app = TestApp::spawn(config).await;
    let api = Api::of(&app, "p-noredis").await;
    api.create(json!({"name": "a", "prompt": "one", "labels": ["production"]}))
        .await;
    api.get("a", "").await;

    proxy.stop();
    let cached = api.get("a", "").await;
    assert_eq!(
        (cached.status, cached.source.as_deref()),
        (200, Some("memory"))
    );
    let created = api
        .create(json!({"name": "a", "prompt": "two", "labels": ["production"]}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let read = api.get("a", "").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["prompt"], "two");
    assert_eq!(read.source.as_deref(), Some("database"));
    assert_eq!(api.get("a", "").await.source.as_deref(), Some("memory"));

    proxy.resume();
    let back = eventually(Duration::from_secs(20), || async {
        api.create(json!({"name": "b", "prompt": "x"})).await.status == 201
            && api.get("b", "label=latest").await.status == 200
    })
    .await;
    assert!(back);
}
