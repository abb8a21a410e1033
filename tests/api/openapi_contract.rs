//! The read API against Langfuse's OpenAPI spec (`../shared/reference/langfuse-openapi.yml`, beside
//! the checkout): every GET endpoint this server answers is asked over data of every kind, and each
//! answer is checked against the response schema the spec gives it. Every property a schema
//! requires must be there, recursively into nested objects and array items; a value may be null only
//! where the schema says `nullable` (or constrains nothing); types, enums and date-times must fit.
//!
//! Where Langfuse's own answers deliberately differ from its spec, the difference is listed in
//! [`EXCEPTIONS`] with the reason, and only there; the fields Langfuse's answers carry beyond the
//! spec, which clients of Langfuse can rely on as well, are listed in [`LANGFUSE_EXTRAS`] and checked
//! to be there too.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::helpers::{create_project, envelope, ApiKey, TestApp, TestConfig};

/// Differences from the spec that Langfuse's own server makes too; each is a JSON path under one
/// endpoint (`*` stands for any array index), the problem's beginning, and why it is allowed.
///
/// None so far. Langfuse's deliberate differences found in its source touch only fields the spec
/// does not require: `providedModelName` of the v2 observations, which Langfuse answers as `model`;
/// `_deprecation`, which only Langfuse Cloud sends; `retentionDays`, left out when unset.
const EXCEPTIONS: &[(&str, &str, &str, &str)] = &[];

/// Fields Langfuse's own server puts in its answers although the spec does not name them, as
/// `(endpoint, objects, field, where Langfuse sets it)`; `*` in the objects' path is any index.
/// The field must be on every object the path selects (null is allowed).
const LANGFUSE_EXTRAS: &[(&str, &str, &str, &str)] = &[
    ("/api/public/traces", "$.data[*]", "externalId",
        "web/src/pages/api/public/traces/index.ts sets externalId: null on each trace"),
    ("/api/public/traces", "$.data[*]", "projectId",
        "traces_converters.ts convertClickhouseToDomain, spread into each trace"),
    ("/api/public/traces", "$.data[*]", "bookmarked",
        "traces_converters.ts convertClickhouseToDomain, spread into each trace"),
    ("/api/public/traces/{traceId}", "$", "externalId",
        "web/src/pages/api/public/traces/[traceId].ts sets externalId: null"),
    ("/api/public/traces/{traceId}", "$", "projectId",
        "traces_converters.ts convertClickhouseToDomain, spread into the trace"),
    ("/api/public/traces/{traceId}", "$", "bookmarked",
        "traces_converters.ts convertClickhouseToDomain, spread into the trace"),
    ("/api/public/traces/{traceId}", "$.scores[*]", "stringValue",
        "APIScoreSchemaV1 keeps a numeric score's stringValue: null from convertClickhouseScoreToDomain"),
    ("/api/public/traces/{traceId}", "$.scores[*]", "projectId",
        "APIScoreSchemaV1 (ScoreSchemaExclReferencesAndDates) keeps projectId"),
    ("/api/public/sessions/{sessionId}", "$.traces[*]", "externalId",
        "web/src/pages/api/public/sessions/[sessionId].ts sets externalId: null on each trace"),
    ("/api/public/sessions/{sessionId}", "$.traces[*]", "projectId",
        "traces_converters.ts convertClickhouseToDomain, spread into each trace"),
    ("/api/public/v2/scores", "$.data[*]", "stringValue",
        "convertClickhouseScoreToDomain sets a numeric score's stringValue: null"),
    ("/api/public/v2/scores", "$.data[*]", "projectId",
        "convertClickhouseScoreToDomain, spread into each score"),
    ("/api/public/v2/scores/{scoreId}", "$", "stringValue",
        "APIScoreSchemaV2 keeps a numeric score's stringValue: null"),
    ("/api/public/v2/scores/{scoreId}", "$", "projectId",
        "APIScoreSchemaV2 (ScoreSchemaExclReferencesAndDates) keeps projectId"),
];

/// The spec, read once per test.
struct Spec {
    document: Value,
}

impl Spec {
    fn load() -> Spec {
        // `scripts/test.sh` names it in LANGFUSE_TEST_OPENAPI_SPEC (found beside this checkout, or
        // beside the one it was cloned from).
        let path = std::env::var_os("LANGFUSE_TEST_OPENAPI_SPEC")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../shared/reference/langfuse-openapi.yml")
            });
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the OpenAPI spec at {}: {e}", path.display()));
        let document = serde_norway::from_str(&text).expect("the spec is YAML");
        Spec { document }
    }

    /// The schema of the 200 answer of `GET template`.
    fn response_schema(&self, template: &str) -> &Value {
        let schema = &self.document["paths"][template]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "the spec has no 200 JSON answer for GET {template}"
        );
        schema
    }

    /// `schema` with its `$ref`s followed.
    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("only local $refs are expected, not {reference}"));
            schema = self
                .document
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} is not in the spec"));
        }
        schema
    }

    /// Whether null fits `schema`: it says `nullable` (beside a `$ref` or in its target), or it
    /// constrains nothing (a property with only a description accepts any JSON).
    fn allows_null(&self, schema: &Value) -> bool {
        let target = self.resolve(schema);
        let nullable = |s: &Value| s.get("nullable") == Some(&Value::Bool(true));
        if nullable(schema) || nullable(target) {
            return true;
        }
        let constraining = [
            "type",
            "properties",
            "allOf",
            "oneOf",
            "anyOf",
            "enum",
            "items",
        ];
        !constraining.iter().any(|key| target.get(*key).is_some())
    }

    /// The object schema `schema` describes once its `allOf` parts are merged in.
    fn flatten(&self, schema: &Value) -> Flat {
        let mut flat = Flat::default();
        self.flatten_into(schema, &mut flat);
        flat
    }

    fn flatten_into(&self, schema: &Value, flat: &mut Flat) {
        let schema = self.resolve(schema);
        if let Some(kind) = schema.get("type").and_then(Value::as_str) {
            flat.kind.get_or_insert_with(|| kind.to_string());
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                flat.properties
                    .entry(name.clone())
                    .or_insert_with(|| property.clone());
            }
        }
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            flat.required.insert(name.as_str().unwrap().to_string());
        }
        if let Some(additional) = schema.get("additionalProperties") {
            if additional.is_object() {
                flat.additional.get_or_insert_with(|| additional.clone());
            }
        }
        if let Some(items) = schema.get("items") {
            flat.items.get_or_insert_with(|| items.clone());
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            flat.allowed.get_or_insert_with(|| values.clone());
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str) {
            flat.format.get_or_insert_with(|| format.to_string());
        }
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            flat.one_of.get_or_insert_with(|| branches.clone());
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.flatten_into(part, flat);
        }
    }

    /// Every way `value`, found at `at`, breaks `schema`.
    fn check(&self, schema: &Value, value: &Value, at: &str, out: &mut Vec<Violation>) {
        if value.is_null() {
            if !self.allows_null(schema) {
                out.push(Violation::at(
                    at,
                    "is null, but the spec does not mark it nullable",
                ));
            }
            return;
        }
        let flat = self.flatten(schema);
        if let Some(branches) = &flat.one_of {
            self.check_one_of(branches, value, at, out);
        }
        if let Some(kind) = &flat.kind {
            let fits = match kind.as_str() {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                other => panic!("unknown type {other} in the spec"),
            };
            if !fits {
                out.push(Violation::at(
                    at,
                    &format!("is {value}, not of type {kind}"),
                ));
                return;
            }
        }
        if let (Some(allowed), Value::String(_)) = (&flat.allowed, value) {
            if !allowed.contains(value) {
                out.push(Violation::at(
                    at,
                    &format!("is {value}, not one of {allowed:?}"),
                ));
            }
        }
        if let (Some("date-time"), Some(text)) = (flat.format.as_deref(), value.as_str()) {
            if chrono::DateTime::parse_from_rfc3339(text).is_err() {
                out.push(Violation::at(at, &format!("is {value}, not a date-time")));
            }
        }
        if let (Some(items), Some(array)) = (&flat.items, value.as_array()) {
            for (index, item) in array.iter().enumerate() {
                self.check(items, item, &format!("{at}[{index}]"), out);
            }
        }
        if let Some(object) = value.as_object() {
            self.check_object(&flat, object, at, out);
        }
    }

    fn check_object(
        &self,
        flat: &Flat,
        object: &Map<String, Value>,
        at: &str,
        out: &mut Vec<Violation>,
    ) {
        for name in &flat.required {
            if !object.contains_key(name) {
                out.push(Violation::at(
                    &format!("{at}.{name}"),
                    "is missing, but the spec requires it",
                ));
            }
        }
        for (name, property) in object {
            let schema = flat.properties.get(name).or(flat.additional.as_ref());
            if let Some(schema) = schema {
                self.check(schema, property, &format!("{at}.{name}"), out);
            }
        }
    }

    /// A value of a `oneOf` fits one of its branches; when none fits, the violations of the
    /// closest branch are reported.
    fn check_one_of(&self, branches: &[Value], value: &Value, at: &str, out: &mut Vec<Violation>) {
        let mut closest: Option<Vec<Violation>> = None;
        for branch in branches {
            let mut found = Vec::new();
            self.check(branch, value, at, &mut found);
            if found.is_empty() {
                return;
            }
            if closest.as_ref().is_none_or(|c| found.len() < c.len()) {
                closest = Some(found);
            }
        }
        for mut violation in closest.unwrap_or_default() {
            violation.problem = format!("{} (closest branch of a oneOf)", violation.problem);
            out.push(violation);
        }
    }
}

/// An object schema with its `allOf` parts merged.
#[derive(Default)]
struct Flat {
    kind: Option<String>,
    properties: std::collections::BTreeMap<String, Value>,
    required: BTreeSet<String>,
    additional: Option<Value>,
    items: Option<Value>,
    allowed: Option<Vec<Value>>,
    format: Option<String>,
    one_of: Option<Vec<Value>>,
}

#[derive(Debug, Clone)]
struct Violation {
    path: String,
    problem: String,
}

impl Violation {
    fn at(path: &str, problem: &str) -> Violation {
        Violation {
            path: path.to_string(),
            problem: problem.to_string(),
        }
    }
}

/// Whether `path` matches `pattern`, where `*` in the pattern stands for one array index.
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut rest = path;
    for (i, part) in pattern.split('*').enumerate() {
        if i > 0 {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits == 0 {
                return false;
            }
            rest = &rest[digits..];
        }
        match rest.strip_prefix(part) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    rest.is_empty()
}

/// The values `pattern` (`$`, then `.name` and `[*]` steps) selects in `value`, with their paths.
fn select<'a>(value: &'a Value, pattern: &str) -> Vec<(String, &'a Value)> {
    let mut selected = vec![("$".to_string(), value)];
    let mut rest = pattern.strip_prefix('$').expect("a path starts with $");
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[*]") {
            selected = selected
                .into_iter()
                .flat_map(|(path, v)| {
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .map(move |(i, item)| (format!("{path}[{i}]"), item))
                })
                .collect();
            rest = after;
        } else {
            let step = rest.strip_prefix('.').expect("a step is .name or [*]");
            let end = step.find(['.', '[']).unwrap_or(step.len());
            let name = &step[..end];
            selected = selected
                .into_iter()
                .filter_map(|(path, v)| v.get(name).map(|child| (format!("{path}.{name}"), child)))
                .collect();
            rest = &step[end..];
        }
    }
    selected
}

fn excepted(template: &str, violation: &Violation) -> bool {
    EXCEPTIONS.iter().any(|(endpoint, pattern, problem, _why)| {
        *endpoint == template
            && path_matches(pattern, &violation.path)
            && violation.problem.starts_with(problem)
    })
}

/// Asks every GET endpoint over `url`s and collects what breaks its schema.
struct Audit<'a> {
    app: &'a TestApp,
    key: &'a ApiKey,
    spec: &'a Spec,
    checked: BTreeSet<&'static str>,
    found: Vec<String>,
}

impl Audit<'_> {
    /// GETs `url`, which the spec describes as `template`, and checks the answer.
    async fn check(&mut self, template: &'static str, url: &str) -> Value {
        let (status, body) = self.app.get_json(url, self.key).await;
        self.checked.insert(template);
        if status != 200 {
            self.found
                .push(format!("GET {url}: answered {status}, not 200: {body}"));
            return body;
        }
        let mut violations = Vec::new();
        self.spec.check(
            self.spec.response_schema(template),
            &body,
            "$",
            &mut violations,
        );
        for (endpoint, objects, field, _source) in LANGFUSE_EXTRAS {
            if *endpoint != template {
                continue;
            }
            for (path, object) in select(&body, objects) {
                if object.get(field).is_none() {
                    violations.push(Violation::at(
                        &format!("{path}.{field}"),
                        "is missing, but Langfuse answers it",
                    ));
                }
            }
        }
        for violation in violations {
            if !excepted(template, &violation) {
                self.found.push(format!(
                    "GET {url}: {} {}",
                    violation.path, violation.problem
                ));
            }
        }
        body
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["id"].as_str().map(str::to_string))
        .collect()
}

/// One trace with every kind of observation and of score, a bare trace with a bare observation, scores
/// of a session and of a dataset run, and a text and a chat prompt.
async fn seed(app: &TestApp, key: &ApiKey) {
    let at = |second: u32| format!("2024-05-01T10:00:{second:02}.000Z");
    let mut batch = vec![
        envelope(
            "t-full",
            "trace-create",
            &at(0),
            json!({"id": "full", "name": "chat", "userId": "alice",
            "sessionId": "sess", "release": "r1", "version": "v1", "tags": ["a", "b"], "public": true,
            "metadata": {"team": "search"}, "input": {"q": "hi"}, "output": "bye", "environment": "prod"}),
        ),
        envelope("t-bare", "trace-create", &at(1), json!({"id": "bare"})),
        envelope(
            "o-bare",
            "span-create",
            &at(1),
            json!({"id": "bare-span", "traceId": "bare",
            "startTime": at(1)}),
        ),
        envelope(
            "o-gen",
            "generation-create",
            &at(2),
            json!({"id": "gen", "traceId": "full", "name": "llm",
            "parentObservationId": "span", "startTime": at(2), "endTime": at(4), "completionStartTime": at(3),
            "model": "gpt-4o", "modelParameters": {"temperature": 0.2}, "input": [{"role": "user", "content": "hi"}],
            "output": {"role": "assistant", "content": "hello"}, "usageDetails": {"input": 10, "output": 5},
            "costDetails": {"input": 0.01, "output": 0.02}, "promptName": "greeting", "promptVersion": 1,
            "level": "WARNING", "statusMessage": "slow", "version": "v2", "metadata": {"k": "v"}}),
        ),
    ];
    for (index, kind) in [
        "span",
        "event",
        "agent",
        "tool",
        "chain",
        "retriever",
        "evaluator",
        "embedding",
        "guardrail",
    ]
    .iter()
    .enumerate()
    {
        let second = 5 + index as u32;
        let mut body = json!({"id": kind, "traceId": "full", "name": format!("a {kind}"), "startTime": at(second)});
        if *kind != "event" {
            body["endTime"] = json!(at(second + 1));
        }
        if *kind != "span" {
            body["parentObservationId"] = json!("span");
        }
        batch.push(envelope(
            &format!("o-{kind}"),
            &format!("{kind}-create"),
            &at(second),
            body,
        ));
    }
    for (id, body) in [
        (
            "numeric",
            json!({"traceId": "full", "observationId": "gen", "name": "quality", "value": 0.9,
            "comment": "good", "metadata": {"by": "judge"}}),
        ),
        (
            "categorical",
            json!({"traceId": "full", "name": "verdict", "value": "pass"}),
        ),
        (
            "boolean",
            json!({"traceId": "full", "name": "helpful", "value": 1, "dataType": "BOOLEAN"}),
        ),
        (
            "text",
            json!({"traceId": "full", "name": "note", "value": "well said", "dataType": "TEXT"}),
        ),
        (
            "correction",
            json!({"traceId": "full", "observationId": "gen", "name": "output",
            "value": "hello there", "dataType": "CORRECTION"}),
        ),
        (
            "of-session",
            json!({"sessionId": "sess", "name": "session-quality", "value": 3}),
        ),
        (
            "of-run",
            json!({"datasetRunId": "run-1", "name": "accuracy", "value": 0.5}),
        ),
    ] {
        let mut body = body;
        body["id"] = json!(id);
        batch.push(envelope(&format!("s-{id}"), "score-create", &at(20), body));
    }
    app.ingest_accepted(key, &json!({ "batch": batch })).await;
    assert!(app.wait_for_rows("traces", "contract", 2).await);
    assert!(app.wait_for_rows("observations", "contract", 11).await);
    assert!(app.wait_for_rows("scores", "contract", 7).await);
    assert!(app.wait_until_written().await);

    for prompt in [
        json!({"name": "greeting", "type": "text", "prompt": "Hello {{name}}", "labels": ["production"],
            "config": {"temperature": 0.2}, "tags": ["t"], "commitMessage": "first"}),
        json!({"name": "dialog", "type": "chat", "prompt": [{"role": "system", "content": "Be brief."},
            {"type": "placeholder", "name": "history"}], "labels": ["production"]}),
    ] {
        let response = app.post_as("/api/public/v2/prompts", key, &prompt).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
}

#[tokio::test]
async fn every_read_answer_has_every_field_the_spec_names() {
    let spec = Spec::load();
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "contract").await;
    seed(&app, &key).await;
    let mut audit = Audit {
        app: &app,
        key: &key,
        spec: &spec,
        checked: BTreeSet::new(),
        found: Vec::new(),
    };

    audit
        .check("/api/public/health", "/api/public/health")
        .await;
    audit
        .check("/api/public/projects", "/api/public/projects")
        .await;

    let traces = audit
        .check("/api/public/traces", "/api/public/traces")
        .await;
    assert_eq!(ids(&traces).len(), 2, "{traces}");
    for id in ids(&traces) {
        audit
            .check(
                "/api/public/traces/{traceId}",
                &format!("/api/public/traces/{id}"),
            )
            .await;
    }

    let observations = audit
        .check(
            "/api/public/observations",
            "/api/public/observations?limit=100",
        )
        .await;
    assert_eq!(ids(&observations).len(), 11, "{observations}");
    for id in ids(&observations) {
        audit
            .check(
                "/api/public/observations/{observationId}",
                &format!("/api/public/observations/{id}"),
            )
            .await;
    }
    let every_group = "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context";
    for query in [
        String::new(),
        format!("?fields={every_group}&limit=100"),
        format!("?fields={every_group}&limit=2"),
    ] {
        audit
            .check(
                "/api/public/v2/observations",
                &format!("/api/public/v2/observations{query}"),
            )
            .await;
    }

    let sessions = audit
        .check("/api/public/sessions", "/api/public/sessions")
        .await;
    assert_eq!(ids(&sessions), ["sess"], "{sessions}");
    audit
        .check(
            "/api/public/sessions/{sessionId}",
            "/api/public/sessions/sess",
        )
        .await;

    let scores = audit
        .check("/api/public/v2/scores", "/api/public/v2/scores")
        .await;
    assert_eq!(ids(&scores).len(), 7, "{scores}");
    for id in ids(&scores) {
        audit
            .check(
                "/api/public/v2/scores/{scoreId}",
                &format!("/api/public/v2/scores/{id}"),
            )
            .await;
    }
    for query in ["", "?fields=core,details,subject,annotation", "?limit=2"] {
        audit
            .check(
                "/api/public/v3/scores",
                &format!("/api/public/v3/scores{query}"),
            )
            .await;
    }

    let prompts = audit
        .check("/api/public/v2/prompts", "/api/public/v2/prompts")
        .await;
    let names: Vec<String> = prompts["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{prompts}");
    for name in names {
        audit
            .check(
                "/api/public/v2/prompts/{promptName}",
                &format!("/api/public/v2/prompts/{name}"),
            )
            .await;
    }

    let response = app
        .post_as(
            "/api/public/models",
            &key,
            &json!({"modelName": "contract-model", "matchPattern": "(?i)^contract-model$",
                "unit": "TOKENS", "tokenizerId": "openai", "tokenizerConfig": {"tokenizerModel": "gpt-4o"},
                "startDate": "2024-01-01T00:00:00.000Z",
                "pricingTiers": [
                    {"name": "Standard", "isDefault": true, "priority": 0, "conditions": [],
                     "prices": {"input": 0.000001, "output": 0.000002}},
                    {"name": "Large", "isDefault": false, "priority": 1,
                     "conditions": [{"usageDetailPattern": "input", "operator": "gt", "value": 200000, "caseSensitive": false}],
                     "prices": {"input": 0.000002, "output": 0.000004}},
                    {"name": "Fast", "isDefault": false, "priority": 2,
                     "conditions": [{"source": "model_parameters", "key": "service_tier", "operator": "in", "values": ["priority"]}],
                     "prices": {"input": 0.000003, "output": 0.000006}}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.unwrap();
    audit
        .check(
            "/api/public/models/{id}",
            &format!("/api/public/models/{}", created["id"].as_str().unwrap()),
        )
        .await;
    let models = audit
        .check("/api/public/models", "/api/public/models?limit=100")
        .await;
    assert_eq!(ids(&models).len(), 100, "{models}");
    for id in ids(&models).into_iter().step_by(10) {
        audit
            .check(
                "/api/public/models/{id}",
                &format!("/api/public/models/{id}"),
            )
            .await;
    }
    for body in [
        json!({"name": "contract numeric", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1,
               "description": "a range"}),
        json!({"name": "contract open", "dataType": "NUMERIC"}),
        json!({"name": "contract categorical", "dataType": "CATEGORICAL",
               "categories": [{"label": "good", "value": 1}, {"label": "bad", "value": 0}]}),
        json!({"name": "contract boolean", "dataType": "BOOLEAN"}),
        json!({"name": "contract text", "dataType": "TEXT"}),
    ] {
        let response = app.post_as("/api/public/score-configs", &key, &body).await;
        assert_eq!(response.status(), 200);
        let created: Value = response.json().await.unwrap();
        audit
            .check(
                "/api/public/score-configs/{configId}",
                &format!(
                    "/api/public/score-configs/{}",
                    created["id"].as_str().unwrap()
                ),
            )
            .await;
    }
    let configs = audit
        .check("/api/public/score-configs", "/api/public/score-configs")
        .await;
    assert_eq!(ids(&configs).len(), 5, "{configs}");
    let metrics_query = json!({"view": "observations", "dimensions": [{"field": "name"}],
        "metrics": [{"measure": "count", "aggregation": "count"},
                    {"measure": "latency", "aggregation": "histogram"}],
        "timeDimension": {"granularity": "hour"},
        "fromTimestamp": "2024-05-01T00:00:00.000Z", "toTimestamp": "2024-05-02T00:00:00.000Z"})
    .to_string();
    let encoded: String = url::form_urlencoded::byte_serialize(metrics_query.as_bytes()).collect();
    for (template, path) in [
        ("/api/public/metrics", "/api/public/metrics"),
        ("/api/public/v2/metrics", "/api/public/v2/metrics"),
    ] {
        let answer = audit
            .check(template, &format!("{path}?query={encoded}"))
            .await;
        assert!(
            answer["data"].as_array().is_some_and(|d| !d.is_empty()),
            "{answer}"
        );
    }
    for (path, body) in [
        (
            "/api/public/v2/datasets",
            json!({"name": "contract/set", "description": "folders",
            "inputSchema": {"type": "object"}}),
        ),
        ("/api/public/v2/datasets", json!({"name": "contract bare"})),
        (
            "/api/public/dataset-items",
            json!({"datasetName": "contract/set", "id": "contract-item",
            "input": {"q": 1}, "expectedOutput": "a", "metadata": {"m": true}}),
        ),
        (
            "/api/public/dataset-items",
            json!({"datasetName": "contract/set", "input": {}}),
        ),
        (
            "/api/public/dataset-run-items",
            json!({"runName": "contract run",
            "datasetItemId": "contract-item", "traceId": "contract-trace"}),
        ),
        (
            "/api/public/dataset-run-items",
            json!({"runName": "contract run",
            "datasetItemId": "contract-item", "traceId": "contract-trace", "observationId": "o"}),
        ),
    ] {
        let response = app.post_as(path, &key, &body).await;
        assert_eq!(response.status(), 200, "{path} {body}");
    }
    audit
        .check("/api/public/v2/datasets", "/api/public/v2/datasets")
        .await;
    let dataset = audit
        .check(
            "/api/public/v2/datasets/{datasetName}",
            "/api/public/v2/datasets/contract%2Fset",
        )
        .await;
    let items = audit
        .check(
            "/api/public/dataset-items",
            "/api/public/dataset-items?datasetName=contract%2Fset",
        )
        .await;
    assert_eq!(ids(&items).len(), 2, "{items}");
    audit
        .check(
            "/api/public/dataset-items/{id}",
            "/api/public/dataset-items/contract-item",
        )
        .await;
    let run_items = audit
        .check(
            "/api/public/dataset-run-items",
            &format!(
                "/api/public/dataset-run-items?datasetId={}&runName=contract%20run",
                dataset["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(ids(&run_items).len(), 2, "{run_items}");
    audit
        .check(
            "/api/public/datasets/{datasetName}/runs",
            "/api/public/datasets/contract%2Fset/runs",
        )
        .await;
    audit
        .check(
            "/api/public/datasets/{datasetName}/runs/{runName}",
            "/api/public/datasets/contract%2Fset/runs/contract%20run",
        )
        .await;
    // An experiment item as the SDKs' runners record it, over OTLP, with a score of its run.
    let attribute = |key: &str, value: &str| json!({"key": key, "value": {"stringValue": value}});
    let experiment = [
        attribute("langfuse.experiment.id", "contract-experiment"),
        attribute("langfuse.experiment.name", "contract run"),
        attribute("langfuse.experiment.description", "a run"),
        attribute("langfuse.experiment.metadata", r#"{"model": "m"}"#),
        attribute("langfuse.experiment.dataset.id", "contract-dataset"),
        attribute("langfuse.experiment.item.id", "contract-item"),
        attribute(
            "langfuse.experiment.item.version",
            "2024-05-01T09:00:00.000Z",
        ),
        attribute("langfuse.experiment.item.metadata", r#"{"i": 1}"#),
        attribute(
            "langfuse.experiment.item.root_observation_id",
            "00000000000000e1",
        ),
        attribute("langfuse.experiment.item.expected_output", r#""4""#),
        attribute("langfuse.observation.input", r#"{"q": "2 + 2"}"#),
        attribute("langfuse.observation.output", r#""4""#),
    ];
    let export = json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{
        "scope": {"name": "langfuse-sdk", "version": "5.0.4"},
        "spans": [{"traceId": "000000000000000000000000000000e1", "spanId": "00000000000000e1",
            "name": "experiment-item-task", "kind": 1,
            "startTimeUnixNano": "1714554000000000000", "endTimeUnixNano": "1714554001000000000",
            "attributes": experiment, "status": {}}]}]}]});
    let response = app
        .post_as("/api/public/otel/v1/traces", &key, &export)
        .await;
    assert_eq!(response.status(), 200);
    app.ingest_accepted(
        &key,
        &json!({"batch": [envelope("s-experiment", "score-create", "2024-05-01T09:00:05.000Z",
            json!({"id": "of-experiment", "datasetRunId": "contract-experiment", "name": "accuracy",
                "value": 1}))]}),
    )
    .await;
    assert!(app.wait_for_rows("observations", "contract", 12).await);
    assert!(app.wait_until_written().await);
    let experiments = audit
        .check(
            "/api/public/experiments",
            "/api/public/experiments?fromStartTime=2024-01-01T00:00:00Z&fields=core,metadata,scores",
        )
        .await;
    assert_eq!(ids(&experiments), ["contract-experiment"], "{experiments}");
    let items = audit
        .check(
            "/api/public/experiment-items",
            "/api/public/experiment-items?fromStartTime=2024-01-01T00:00:00Z\
             &fields=core,dataset,io,metadata,itemMetadata,experimentMetadata,scores",
        )
        .await;
    assert_eq!(ids(&items), ["00000000000000e1"], "{items}");

    assert_eq!(audit.checked.len(), 29, "{:?}", audit.checked);
    assert!(
        audit.found.is_empty(),
        "{} answers break the spec:\n{}",
        audit.found.len(),
        audit.found.join("\n")
    );
}

#[test]
fn the_checker_finds_missing_null_and_mistyped_fields() {
    let spec = Spec::load();
    let schema = json!({"$ref": "#/components/schemas/TraceWithFullDetails"});
    let trace = json!({
        "id": "t", "timestamp": "2024-05-01T10:00:00.000Z", "name": null, "sessionId": null,
        "release": null, "version": null, "userId": null, "tags": [], "public": false,
        "environment": "default", "htmlPath": "/p", "observations": [], "scores": [],
    });
    let problems = |value: &Value| {
        let mut found = Vec::new();
        spec.check(&schema, value, "$", &mut found);
        found
            .into_iter()
            .map(|v| format!("{} {}", v.path, v.problem))
            .collect::<Vec<_>>()
    };
    assert_eq!(problems(&trace), Vec::<String>::new());

    let mut broken = trace.clone();
    broken.as_object_mut().unwrap().remove("release");
    broken["public"] = Value::Null;
    broken["tags"] = json!("a");
    broken["timestamp"] = json!("yesterday");
    broken["scores"] = json!([{"dataType": "NUMERIC", "id": "s"}]);
    let found = problems(&broken);
    for expected in [
        "$.release is missing",
        "$.public is null",
        "$.tags is \"a\", not of type array",
        "$.timestamp is \"yesterday\", not a date-time",
        "$.scores[0].traceId is missing",
    ] {
        assert!(
            found.iter().any(|f| f.starts_with(expected)),
            "{expected} not in {found:#?}"
        );
    }
    assert!(path_matches(
        "$.data[*].scores[*].value",
        "$.data[12].scores[0].value"
    ));
    assert!(!path_matches("$.data[*].value", "$.data[x].value"));
}
