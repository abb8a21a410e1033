//! The official SDKs, installed from the registry, checking their credentials against us: the first
//! call every Langfuse client makes.

use crate::helpers::{create_project, envelope, ApiKey, TestApp, TestConfig, INGESTION};

/// The Python of a venv holding one SDK version; `scripts/test.sh` builds them.
pub(crate) fn sdk_python(variable: &str, venv: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(".dev")
                .join(venv)
                .join("bin/python");
            assert!(
            path.exists(),
            "{variable} is unset and {} is missing: run ./scripts/test.sh, which installs the SDKs",
            path.display()
        );
            path.to_string_lossy().into_owned()
        })
}

const AUTH_CHECK: &str = r#"
import os, sys
from langfuse import Langfuse
client = Langfuse(
    public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"],
)
try:
    ok = client.auth_check()
except Exception as error:  # the SDK raises on 401
    print("error:", type(error).__name__, error)
    sys.exit(1)
print("auth_check:", ok)
sys.exit(0 if ok is True else 1)
"#;

async fn auth_check(python: &str, app: &TestApp, key: &ApiKey) -> (bool, String) {
    let out = tokio::process::Command::new(python)
        .args(["-c", AUTH_CHECK])
        .env("PK", &key.public)
        .env("SK", &key.secret)
        .env("HOST", &app.address)
        .output()
        .await
        .expect("run the SDK");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn sdk_accepts_good_keys_and_refuses_bad_ones(python: &str) {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk-project").await;

    let (ok, output) = auth_check(python, &app, &key).await;
    assert!(ok, "{output}");
    // A distinct public key: the newer SDK keeps one client per public key in the process.
    let (ok, output) = auth_check(python, &app, &key.with_public("pk-lf-unknown")).await;
    assert!(!ok, "an unknown key must be refused: {output}");
    assert!(
        output.contains("401") || output.contains("Unauthorized"),
        "{output}"
    );
    let (ok, output) = auth_check(python, &app, &key.with_secret("sk-lf-wrong")).await;
    assert!(!ok, "a wrong secret must be refused: {output}");
}

#[tokio::test]
async fn python_sdk_v2_checks_its_credentials() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V2", "sdk-python-v2");
    sdk_accepts_good_keys_and_refuses_bad_ones(&python).await;
}

#[tokio::test]
async fn python_sdk_v5_checks_its_credentials() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    sdk_accepts_good_keys_and_refuses_bad_ones(&python).await;
}

pub(crate) fn sdk_script(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(name)
}

/// Runs an SDK round-trip script against `app`; returns the JSON object it prints last.
pub(crate) async fn run_roundtrip(
    mut command: tokio::process::Command,
    app: &TestApp,
    key: &ApiKey,
    trace_id: &str,
) -> serde_json::Value {
    let out = command
        .env("PK", &key.public)
        .env("SK", &key.secret)
        .env("HOST", &app.address)
        .env("TRACE_ID", trace_id)
        .output()
        .await
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().expect("output")).expect("a JSON report")
}

#[tokio::test]
async fn python_sdk_v2_traces_are_stored_and_read_back_through_the_sdk() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V2", "sdk-python-v2");
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk-v2").await;
    let mut command = tokio::process::Command::new(python);
    command.arg(sdk_script("python_v2_roundtrip.py"));
    let result = run_roundtrip(command, &app, &key, "sdk-trace-1").await;
    assert_eq!(
        result,
        serde_json::json!({
            "name": "sdk-trace",
            "user_id": "user-1",
            "session_id": "session-1",
            "tags": ["sdk", "v2"],
            "metadata": {"team": "search"},
            "input": {"question": "hi"},
            "output": "done",
            "observation_types": ["EVENT", "GENERATION", "SPAN"],
            "generation_parent": "sdk-trace-1-span",
            "generation_model": "gpt-4o-mini",
            "generation_usage": [12, 7, 19],
            "generation_output": {"role": "assistant", "content": "hello"},
            "event_level": "WARNING",
            "score": ["quality", 0.9, "fine"],
            "listed": ["sdk-trace-1"],
        })
    );
}

/// `node_modules` holding the pinned JS SDKs; `scripts/test.sh` installs them.
pub(crate) fn node_modules() -> String {
    std::env::var("LANGFUSE_TEST_NODE_MODULES")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            let path =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".dev/sdk-js/node_modules");
            assert!(
                path.exists(),
                "LANGFUSE_TEST_NODE_MODULES is unset and {} is missing: run ./scripts/test.sh",
                path.display()
            );
            path.to_string_lossy().into_owned()
        })
}

#[tokio::test]
async fn js_legacy_sdk_traces_are_stored_and_read_back_through_the_sdk() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk-js").await;
    let mut command = tokio::process::Command::new("node");
    command
        .arg(sdk_script("js_legacy_roundtrip.js"))
        .env("NODE_PATH", node_modules());
    let result = run_roundtrip(command, &app, &key, "js-trace-1").await;
    assert_eq!(
        result,
        serde_json::json!({
            "name": "js-trace",
            "userId": "js-user",
            "sessionId": "js-session",
            "tags": ["js"],
            "output": "done",
            "types": ["EVENT", "GENERATION", "SPAN"],
            "generationParent": "js-trace-1-span",
            "generationModel": "gpt-4o",
            "generationUsage": {"input": 9, "output": 3, "total": 12},
            "score": ["helpful", 1],
        })
    );
}

#[tokio::test]
async fn python_sdk_v5_pages_the_v2_observation_and_v3_score_lists() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk-v5-lists").await;
    // Sent through the batch ingestion API: the SDK's own tracing speaks OpenTelemetry.
    let batch = serde_json::json!({"batch": [
        envelope("1", "trace-create", "2024-05-01T10:00:00.000Z", serde_json::json!({"id": "lt", "name": "lists", "userId": "u-1"})),
        envelope("2", "span-create", "2024-05-01T10:00:00.000Z", serde_json::json!({"id": "lt-span", "traceId": "lt",
            "name": "retrieve", "startTime": "2024-05-01T10:00:00.000Z", "endTime": "2024-05-01T10:00:02.000Z"})),
        envelope("3", "generation-create", "2024-05-01T10:00:01.000Z", serde_json::json!({"id": "lt-gen", "traceId": "lt",
            "parentObservationId": "lt-span", "name": "llm", "model": "gpt-4o", "startTime": "2024-05-01T10:00:01.000Z",
            "endTime": "2024-05-01T10:00:01.500Z", "usage": {"input": 3, "output": 4}})),
        envelope("4", "event-create", "2024-05-01T10:00:03.000Z", serde_json::json!({"id": "lt-event", "traceId": "lt",
            "name": "done", "startTime": "2024-05-01T10:00:03.000Z"})),
        envelope("5", "score-create", "2024-05-01T10:00:04.000Z", serde_json::json!({"id": "ls-num", "traceId": "lt",
            "name": "quality", "value": 0.9})),
        envelope("6", "score-create", "2024-05-01T10:00:05.000Z", serde_json::json!({"id": "ls-bool", "traceId": "lt",
            "observationId": "lt-gen", "name": "helpful", "value": 1, "dataType": "BOOLEAN"})),
        envelope("7", "score-create", "2024-05-01T10:00:06.000Z", serde_json::json!({"id": "ls-cat", "sessionId": "sess",
            "name": "verdict", "value": "good"})),
    ]});
    let response = app.post_as(INGESTION, &key, &batch).await;
    assert_eq!(response.status(), 207);
    assert!(app.wait_for_rows("observations", "sdk-v5-lists", 3).await);
    assert!(app.wait_for_rows("scores", "sdk-v5-lists", 3).await);

    let mut command = tokio::process::Command::new(python);
    command.arg(sdk_script("python_v5_read_lists.py"));
    let result = run_roundtrip(command, &app, &key, "lt").await;
    assert_eq!(
        result,
        serde_json::json!({
            "observations": ["lt-event", "lt-gen", "lt-span"],
            "observation_pages": 3,
            "generation": {
                "parent": "lt-span",
                "user": "u-1",
                "usage": {"input": 3, "output": 4, "total": 7},
                "model": "gpt-4o",
                "latency": 0.5,
            },
            "roots": ["lt-event", "lt-span"],
            "filtered": ["lt-gen"],
            "scores": [
                ["ls-cat", "CATEGORICAL", "good", "session"],
                ["ls-bool", "BOOLEAN", true, "observation"],
                ["ls-num", "NUMERIC", 0.9, "trace"],
            ],
            "score_pages": 2,
            "numeric": ["ls-num"],
        })
    );
}

#[tokio::test]
async fn python_sdk_v4_reads_the_v1_lists_with_every_parameter_and_the_filter() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V4", "sdk-python-v4");
    let (app, key) = crate::read_api_v1::seeded_app().await;
    let mut command = tokio::process::Command::new(python);
    command.arg(sdk_script("python_v4_v1_lists.py"));
    let result = run_roundtrip(command, &app, &key, "").await;
    assert_eq!(
        result["traces"],
        serde_json::json!({
            "user": ["t1"],
            "name": ["t3", "t1"],
            "session": ["t2"],
            "from": ["t3", "t2"],
            "to": ["t1"],
            "ordered": ["t1", "t2", "t3"],
            "tags": ["t1"],
            "tag": ["t2", "t1"],
            "version": ["t2"],
            "release": ["t1"],
            "environments": ["t3", "t1"],
            "paged": [["t1"], 3, 2],
            "cost": ["t1"],
            "metadata": ["t2"],
            "tags_none_of": ["t3"],
            "no_session": ["t3"],
            "filter_wins": ["t2"],
            "full": {
                "html_path": "/project/v1-lists/traces/t1",
                "latency": 4.0,
                "total_cost": 0.03,
                "observations": ["e-1", "g-1", "s-1"],
                "scores": ["sc-1"],
                "metadata": {"team": "search", "n": 3},
                "input": {"question": "hi"},
            },
            "core": [null, [], [], -1.0, -1.0, ["prod", "vip"]],
        })
    );
    assert_eq!(
        result["observations"],
        serde_json::json!({
            "trace_and_type": ["g-1"],
            "user": ["e-1", "g-1", "s-1"],
            "name": ["g-2", "g-1"],
            "level": ["g-1"],
            "parent": ["e-1", "g-1"],
            "environments": ["s-3", "g-2"],
            "range": ["e-1", "g-1"],
            "version": ["g-2"],
            "latency": ["g-1", "s-1"],
            "trace_tags": ["e-1", "g-1", "s-1"],
            "filter_wins": ["s-1"],
            "generation": ["gpt-4o", {"input": 100, "output": 50, "total": 150}, "ERROR", "rate limited", 2.0],
        })
    );
}

#[tokio::test]
async fn python_sdk_v5_generations_linked_to_a_prompt_carry_its_id() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk-v5-prompt-link").await;
    let trace_id = "5a2b3c4d5e6f70810000000000000001";
    let mut command = tokio::process::Command::new(python);
    command.arg(sdk_script("python_v5_prompt_link.py"));
    let result = run_roundtrip(command, &app, &key, trace_id).await;
    let (status, prompt) = app
        .get_json("/api/public/v2/prompts/sdk-linked?version=1", &key)
        .await;
    assert_eq!(status, 200, "{prompt}");
    let prompt_id = prompt["id"].as_str().expect("a prompt id").to_string();
    let (generation, unlinked) = (
        result["generation"].as_str().unwrap(),
        result["unlinked"].as_str().unwrap(),
    );
    assert_eq!(result["prompt"], serde_json::json!(["sdk-linked", 1]));
    // Read back through the SDK's client of the v2 list, then through the v1 reads.
    assert_eq!(
        result["read"],
        serde_json::json!({
            generation: [prompt_id, "sdk-linked", 1],
            unlinked: [null, null, null],
        })
    );
    let (_, one) = app
        .get_json(&format!("/api/public/observations/{generation}"), &key)
        .await;
    assert_eq!(
        (&one["promptId"], &one["promptName"], &one["promptVersion"]),
        (
            &serde_json::json!(prompt_id),
            &serde_json::json!("sdk-linked"),
            &serde_json::json!(1)
        )
    );
    let (_, listed) = app
        .get_json(
            &format!("/api/public/observations?traceId={trace_id}&type=GENERATION"),
            &key,
        )
        .await;
    let linked: Vec<(&str, &serde_json::Value)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), &o["promptId"]))
        .collect();
    assert_eq!(linked.len(), 2, "{listed}");
    for (id, linked_id) in linked {
        let expected = if id == generation {
            serde_json::json!(prompt_id)
        } else {
            serde_json::Value::Null
        };
        assert_eq!(*linked_id, expected, "{id}");
    }
}

/// Runs an SDK prompt script against `app`: once it prints `READY_FOR_OUTAGE` the server is
/// stopped and the script told so on standard input, to see the SDK's cache and fallback with the
/// server down. Returns the JSON object the script prints last.
async fn run_prompt_script(
    mut command: tokio::process::Command,
    app: TestApp,
    key: &ApiKey,
) -> serde_json::Value {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

    let mut child = command
        .env("PK", &key.public)
        .env("SK", &key.secret)
        .env("HOST", &app.address)
        .env("NAME", "sdk/prompts")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run the SDK script");
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if line.trim() == "READY_FOR_OUTAGE" {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    if !ready {
        let _ = child.start_kill();
        panic!("the script stopped early:\n{}", stderr.await.unwrap());
    }
    app.stop().await.expect("the server stops");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    drop(stdin);
    let mut last = String::new();
    while let Some(line) = stdout.next_line().await.unwrap() {
        last = line;
    }
    let status = tokio::time::timeout(std::time::Duration::from_secs(120), child.wait())
        .await
        .expect("the script finishes")
        .unwrap();
    let stderr = stderr.await.unwrap();
    assert!(status.success(), "{last}\n{stderr}");
    serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {last}\n{stderr}"))
}

#[tokio::test]
async fn python_sdk_v5_manages_and_compiles_prompts_and_falls_back_when_the_server_is_down() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk-v5-prompts").await;
    let mut command = tokio::process::Command::new(python);
    command.arg(sdk_script("python_v5_prompts.py"));
    let result = run_prompt_script(command, app, &key).await;
    assert_eq!(
        result,
        serde_json::json!({
            "created": [1, ["production", "latest"], 1, ["production", "latest"]],
            "production": [1, "Hello {{name}}, welcome to {{place}}!",
                           {"model": "gpt-4o", "temperature": 0.2}, ["production"]],
            "staging": [2, "Hi {{name}}!", {"model": "gpt-4o-mini"}],
            "by_version": [1, "first", ["sdk"]],
            "updated_labels": ["production", "staging", "latest"],
            "production_after": 2,
            "compiled_text": "Hello Ada, welcome to Rome!",
            "variables": ["name", "place"],
            "chat": [1, {"temperature": 0}, ["production", "latest"]],
            "compiled_chat": [
                {"role": "system", "content": "You are a pirate."},
                {"role": "user", "content": "Ahoy"},
                {"role": "user", "content": "Where is it?"},
            ],
            "stale": [2, false],
            "fallback_text": [true, "Fallback for Bob"],
            "fallback_chat": [true, [{"role": "system", "content": "Fallback kind"}]],
            "without_fallback": "raised",
        })
    );
}

#[tokio::test]
async fn js_client_manages_and_compiles_prompts_and_falls_back_when_the_server_is_down() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk-js-prompts").await;
    let mut command = tokio::process::Command::new("node");
    command
        .arg(sdk_script("js_client_prompts.js"))
        .env("NODE_PATH", node_modules());
    let result = run_prompt_script(command, app, &key).await;
    assert_eq!(
        result,
        serde_json::json!({
            "created": [1, ["production", "latest"], 1, ["production", "latest"]],
            "production": [1, "Hello {{name}}, welcome to {{place}}!",
                           {"model": "gpt-4o", "temperature": 0.2}, ["production"]],
            "staging": [2, "Hi {{name}}!", {"model": "gpt-4o-mini"}],
            "byVersion": [1, "first", ["sdk"]],
            "updatedLabels": ["production", "staging", "latest"],
            "productionAfter": 2,
            "compiledText": "Hello Ada, welcome to Rome!",
            "chat": [1, {"temperature": 0}, ["production", "latest"]],
            "compiledChat": [
                {"role": "system", "content": "You are a pirate."},
                {"role": "user", "content": "Ahoy"},
                {"role": "user", "content": "Where is it?"},
            ],
            "stale": [2, false],
            "fallbackText": [true, "Fallback for Bob"],
            "fallbackChat": [true, [{"role": "system", "content": "Fallback kind"}]],
            "withoutFallback": "raised",
        })
    );
}

#[tokio::test]
async fn js_client_reads_scores_by_id_and_deletes_them() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk-js-scores").await;
    app.ingest_accepted(&key, &serde_json::json!({"batch": [
        envelope("1", "score-create", "2024-05-01T10:00:00.000Z",
            serde_json::json!({"id": "js-numeric", "traceId": "t", "name": "quality", "value": 0.75})),
        envelope("2", "score-create", "2024-05-01T10:00:01.000Z",
            serde_json::json!({"id": "js-text", "sessionId": "s", "name": "note", "value": "fine", "dataType": "TEXT"})),
    ]}))
    .await;
    assert!(app.wait_for_rows("scores", "sdk-js-scores", 2).await);

    let mut command = tokio::process::Command::new("node");
    command
        .arg(sdk_script("js_client_scores.js"))
        .env("NODE_PATH", node_modules());
    let result = run_roundtrip(command, &app, &key, "t").await;
    assert_eq!(
        result,
        serde_json::json!({
            "numeric": ["js-numeric", "NUMERIC", "quality", 0.75, null, "t", null],
            "text": ["js-text", "TEXT", "note", null, "fine", null, "s"],
            "unknown": 404,
            "deleted": 404,
            "deletedAgain": 404,
        })
    );
    assert_eq!(
        app.get_json("/api/public/v2/scores/js-text", &key).await.0,
        200
    );
}

#[tokio::test]
async fn js_browser_sdk_sends_scores_with_the_public_key_alone_and_nothing_else() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk-browser").await;
    let mut command = tokio::process::Command::new("node");
    command
        .arg(sdk_script("js_browser_scores.js"))
        .env("NODE_PATH", node_modules());
    let result = run_roundtrip(command, &app, &key, "browser-trace").await;

    let answers = result["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), 2, "{result}");
    for answer in answers {
        assert_eq!(
            answer["authorization"],
            format!("Bearer {}", key.public),
            "{result}"
        );
        assert_eq!(answer["status"], 207, "{result}");
    }
    let (score, trace) = (&answers[0]["body"], &answers[1]["body"]);
    assert_eq!(score["errors"], serde_json::json!([]), "{result}");
    assert_eq!(score["successes"][0]["status"], 201, "{result}");
    assert_eq!(trace["successes"], serde_json::json!([]), "{result}");
    let refusal = &trace["errors"][0];
    assert_eq!(
        (&refusal["status"], &refusal["message"], &refusal["error"]),
        (
            &serde_json::json!(401),
            &serde_json::json!("Authentication error"),
            &serde_json::json!("Access Scope Denied")
        ),
        "{result}"
    );

    let landed = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        app.get_json("/api/public/v2/scores/browser-trace-feedback", &key)
            .await
            .0
            == 200
    })
    .await;
    assert!(landed);
    let (_, stored) = app
        .get_json("/api/public/v2/scores/browser-trace-feedback", &key)
        .await;
    assert_eq!(
        (&stored["traceId"], &stored["value"], &stored["comment"]),
        (
            &serde_json::json!("browser-trace"),
            &serde_json::json!(1.0),
            &serde_json::json!("thumbs up")
        )
    );
    assert_eq!(app.count_rows("traces", "sdk-browser").await, 0);
}
