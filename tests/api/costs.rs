//! Costs the worker computes from model prices: an observation with usage and no cost, through the
//! batch API, OTLP and the Python SDK 5.x, comes back with the matched model's id, its pricing
//! tier and the cost of its usage, in every read; provided costs are kept; a project's model
//! overrides a shipped one; tiers are chosen by usage; an unknown model leaves the cost empty.

use std::collections::BTreeMap;
use std::time::Duration;

use langfuse_rs::domain::pricing::ExactPrice;
use langfuse_rs::storage::models::{self, SHIPPED_MODELS};
use serde_json::{json, Value};

use crate::helpers::{create_project, envelope, eventually, ApiKey, TestApp, TestConfig};
use crate::sdk::{run_roundtrip, sdk_python, sdk_script};

pub(crate) const AT: &str = "2026-01-05T10:00:00.000Z";

/// The shipped model named `name`: its id and its default prices.
pub(crate) fn shipped(name: &str) -> (String, BTreeMap<String, String>) {
    let m = models::parse_shipped(SHIPPED_MODELS)
        .unwrap()
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no shipped model {name}"));
    (m.id, m.prices)
}

/// `units` at `price`, in USD, as the read API answers it (a double of the stored decimal).
pub(crate) fn usd(price: &str, units: u64) -> f64 {
    ExactPrice::parse(price).unwrap().cost_of(units) as f64 / 1e12
}

pub(crate) fn close(actual: &Value, expected: f64) -> bool {
    actual
        .as_f64()
        .is_some_and(|a| (a - expected).abs() <= expected.abs() * 1e-12)
}

pub(crate) fn generation(id: &str, trace: &str, body: Value) -> Value {
    let mut full = json!({"id": id, "traceId": trace, "name": id, "startTime": AT});
    full.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    envelope(&format!("{id}-create"), "generation-create", AT, full)
}

pub(crate) async fn observation(app: &TestApp, key: &ApiKey, id: &str) -> Value {
    let path = format!("/api/public/observations/{id}");
    let ok = eventually(Duration::from_secs(20), || async {
        app.get_json(&path, key).await.0 == 200
    })
    .await;
    let (_, found) = app.get_json(&path, key).await;
    assert!(ok, "{id} was not written: {found}");
    found
}

#[tokio::test]
async fn usage_without_cost_is_priced_by_the_matched_model_in_every_read() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "costs-batch").await;
    let trace = "costs-trace";
    let batch = json!({"batch": [
        envelope("t-create", "trace-create", AT, json!({"id": trace, "name": "costs"})),
        generation("priced", trace, json!({"model": "gpt-4o", "usage": {"input": 1000, "output": 200}})),
        // OpenAI's usage object: cached input tokens are their own usage type.
        generation("cached", trace, json!({"model": "openai/gpt-4o", "usageDetails": {
            "prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010,
            "prompt_tokens_details": {"cached_tokens": 400}}})),
        generation("provided", trace, json!({"model": "gpt-4o",
            "usageDetails": {"input": 1000, "output": 200}, "costDetails": {"input": 0.5}})),
        generation("unknown", trace, json!({"model": "my-own-model", "usage": {"input": 10}})),
        generation("no-usage", trace, json!({"model": "gpt-4o"})),
        generation("failed", trace, json!({"model": "gpt-4o", "level": "ERROR", "usage": {"input": 4}})),
        // A model parameter chooses the shipped model's "Fast mode" tier.
        generation("fast", trace, json!({"model": "gpt-4o", "modelParameters": {"service_tier": "priority"},
            "usage": {"input": 100, "output": 10}})),
    ]});
    app.ingest_accepted(&key, &batch).await;
    let (model_id, prices) = shipped("gpt-4o");
    let (input, output) = (&prices["input"], &prices["output"]);

    let priced = observation(&app, &key, "priced").await;
    let expected_total = usd(input, 1000) + usd(output, 200);
    assert_eq!(priced["modelId"], json!(model_id), "{priced}");
    assert_eq!(
        priced["usageDetails"],
        json!({"input": 1000, "output": 200, "total": 1200})
    );
    assert!(
        close(&priced["calculatedInputCost"], usd(input, 1000)),
        "{priced}"
    );
    assert!(
        close(&priced["calculatedOutputCost"], usd(output, 200)),
        "{priced}"
    );
    assert!(
        close(&priced["calculatedTotalCost"], expected_total),
        "{priced}"
    );
    assert!(
        close(&priced["costDetails"]["total"], expected_total),
        "{priced}"
    );
    assert!(
        close(&priced["inputPrice"], input.parse().unwrap()),
        "{priced}"
    );
    assert!(
        close(&priced["outputPrice"], output.parse().unwrap()),
        "{priced}"
    );
    assert_eq!(priced["totalPrice"], Value::Null);
    assert_eq!(priced["usagePricingTierName"], json!("Standard"));

    let cached = observation(&app, &key, "cached").await;
    let cached_price = &prices["input_cached_tokens"];
    assert_eq!(cached["modelId"], json!(model_id));
    assert!(
        close(
            &cached["costDetails"]["input_cached_tokens"],
            usd(cached_price, 400)
        ),
        "{cached}"
    );
    assert!(
        close(
            &cached["calculatedTotalCost"],
            usd(input, 600) + usd(cached_price, 400) + usd(output, 10)
        ),
        "{cached}"
    );

    // Provided costs are kept as sent; the model is still named.
    let provided = observation(&app, &key, "provided").await;
    assert_eq!(provided["modelId"], json!(model_id));
    assert_eq!(provided["costDetails"], json!({"input": 0.5, "total": 0.5}));
    assert_eq!(provided["calculatedTotalCost"], json!(0.5));

    let unknown = observation(&app, &key, "unknown").await;
    assert_eq!(unknown["modelId"], Value::Null);
    assert_eq!(unknown["costDetails"], json!({}));
    assert_eq!(unknown["calculatedTotalCost"], Value::Null);
    assert_eq!(unknown["inputPrice"], Value::Null);

    let no_usage = observation(&app, &key, "no-usage").await;
    assert_eq!(no_usage["modelId"], json!(model_id));
    assert_eq!(no_usage["costDetails"], json!({}));
    assert_eq!(no_usage["usagePricingTierName"], Value::Null);

    // Usage sent with an ERROR-level generation is priced too, as Langfuse does.
    let failed = observation(&app, &key, "failed").await;
    assert!(
        close(&failed["calculatedTotalCost"], usd(input, 4)),
        "{failed}"
    );

    let fast = observation(&app, &key, "fast").await;
    assert_eq!(fast["usagePricingTierName"], json!("Fast mode"), "{fast}");
    assert!(
        close(
            &fast["calculatedTotalCost"],
            usd("0.00000425", 100) + usd("0.000017", 10)
        ),
        "{fast}"
    );

    // The same figures in the trace, its observations, the v1 list and the v2 field groups.
    assert!(app.wait_until_written().await);
    let (status, whole) = app
        .get_json(&format!("/api/public/traces/{trace}"), &key)
        .await;
    assert_eq!(status, 200, "{whole}");
    let in_trace = whole["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "priced")
        .unwrap()
        .clone();
    assert_eq!(in_trace["modelId"], json!(model_id));
    assert!(close(&in_trace["calculatedTotalCost"], expected_total));
    let unknown_in_trace = whole["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "unknown")
        .unwrap();
    // A trace answers 0 for the prices of no model, as Langfuse's does.
    assert_eq!(unknown_in_trace["inputPrice"], json!(0));
    let trace_total = whole["totalCost"].as_f64().unwrap();
    assert!(trace_total > expected_total + 0.5, "{trace_total}");

    let (_, listed) = app
        .get_json(
            &format!("/api/public/observations?traceId={trace}&name=priced"),
            &key,
        )
        .await;
    assert_eq!(listed["data"][0]["modelId"], json!(model_id), "{listed}");
    assert!(close(
        &listed["data"][0]["calculatedTotalCost"],
        expected_total
    ));

    let (status, v2) = app
        .get_json(
            &format!("/api/public/v2/observations?traceId={trace}&fields=core,model,usage"),
            &key,
        )
        .await;
    assert_eq!(status, 200, "{v2}");
    let item = v2["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "priced")
        .unwrap();
    assert_eq!(item["modelId"], json!(model_id));
    assert_eq!(item["internalModelId"], json!(model_id));
    assert_eq!(item["inputPrice"], json!(input));
    assert_eq!(item["usagePricingTierName"], json!("Standard"));
    assert!(close(&item["totalCost"], expected_total), "{item}");
    // Without the model group: no model and no prices, as Langfuse answers.
    let (_, core) = app
        .get_json(
            &format!("/api/public/v2/observations?traceId={trace}&fields=core,usage"),
            &key,
        )
        .await;
    let item = core["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "priced")
        .unwrap();
    assert_eq!(item["modelId"], Value::Null);
    assert!(close(&item["totalCost"], expected_total), "{item}");
}

#[tokio::test]
async fn a_project_model_overrides_the_shipped_one_and_its_tiers_follow_usage() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "costs-tiers").await;
    let response = app
        .post_as(
            "/api/public/models",
            &key,
            &json!({"modelName": "gpt-4o", "matchPattern": "(?i)^gpt-4o$", "unit": "TOKENS",
            "pricingTiers": [
                {"name": "Standard", "isDefault": true, "priority": 0, "conditions": [],
                 "prices": {"input": 0.0000025, "output": 0.00001}},
                {"name": "Long context", "isDefault": false, "priority": 1,
                 "conditions": [{"usageDetailPattern": "input", "operator": "gt", "value": 200000}],
                 "prices": {"input": 0.000005, "output": 0.00002}},
            ]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.unwrap();
    let own_id = created["id"].as_str().unwrap().to_string();
    let trace = "tiers-trace";
    let batch = json!({"batch": [
        generation("short", trace, json!({"model": "gpt-4o", "usage": {"input": 3, "output": 1}})),
        generation("long", trace, json!({"model": "GPT-4o", "usage": {"input": 250000, "output": 1000}})),
        // Not the project's pattern: the shipped model prices it.
        generation("azure", trace, json!({"model": "azure/gpt-4o", "usage": {"input": 3}})),
    ]});
    app.ingest_accepted(&key, &batch).await;

    let short = observation(&app, &key, "short").await;
    assert_eq!(short["modelId"], json!(own_id));
    assert_eq!(short["usagePricingTierName"], json!("Standard"));
    // 3 × 0.0000025 + 1 × 0.00001, exactly.
    assert_eq!(short["costDetails"]["input"], json!(0.0000075), "{short}");
    assert_eq!(short["calculatedTotalCost"], json!(0.0000175), "{short}");

    let long = observation(&app, &key, "long").await;
    assert_eq!(long["modelId"], json!(own_id));
    assert_eq!(
        long["usagePricingTierName"],
        json!("Long context"),
        "{long}"
    );
    assert_eq!(long["costDetails"]["input"], json!(1.25), "{long}");
    assert_eq!(long["costDetails"]["output"], json!(0.02), "{long}");
    assert_eq!(long["calculatedTotalCost"], json!(1.27), "{long}");
    // Prices answered are the model's default tier's, as Langfuse answers them.
    assert_eq!(long["inputPrice"], json!(0.0000025));

    let azure = observation(&app, &key, "azure").await;
    assert_eq!(azure["modelId"], json!(shipped("gpt-4o").0));
}

#[tokio::test]
async fn an_otlp_generation_with_usage_is_priced() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "costs-otel").await;
    let trace_id = "6a2b3c4d5e6f70810000000000000001";
    let span_id = "6a2b3c4d5e6f7001";
    let attribute = |k: &str, v: Value| json!({"key": k, "value": v});
    let export = json!({"resourceSpans": [{
        "resource": {"attributes": [attribute("service.name", json!({"stringValue": "costs"}))]},
        "scopeSpans": [{
            "scope": {"name": "my-lib", "version": "1.0.0"},
            "spans": [{
                "traceId": trace_id, "spanId": span_id, "name": "chat", "kind": 1,
                "startTimeUnixNano": "1767607200000000000", "endTimeUnixNano": "1767607201000000000",
                "attributes": [
                    attribute("gen_ai.request.model", json!({"stringValue": "gpt-4o-mini"})),
                    attribute("gen_ai.usage.input_tokens", json!({"intValue": "2000"})),
                    attribute("gen_ai.usage.output_tokens", json!({"intValue": "300"})),
                ],
            }],
        }],
    }]});
    let response = app
        .http
        .post(app.url("/api/public/otel/v1/traces"))
        .header(reqwest::header::AUTHORIZATION, key.basic_auth())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(export.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (model_id, prices) = shipped("gpt-4o-mini");
    let o = observation(&app, &key, span_id).await;
    assert_eq!(o["modelId"], json!(model_id), "{o}");
    assert!(
        close(
            &o["calculatedTotalCost"],
            usd(&prices["input"], 2000) + usd(&prices["output"], 300)
        ),
        "{o}"
    );
}

#[tokio::test]
async fn a_python_sdk_v5_generation_with_usage_and_no_cost_reads_back_with_its_cost() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "costs-sdk-v5").await;
    let trace_id = "7a2b3c4d5e6f70810000000000000001";
    let mut command = tokio::process::Command::new(python);
    command.arg(sdk_script("python_v5_cost.py"));
    let result = run_roundtrip(command, &app, &key, trace_id).await;
    let (model_id, prices) = shipped("gpt-4o");
    let expected = usd(&prices["input"], 120) + usd(&prices["output"], 30);
    // Read back through the SDK's client of the v2 list.
    assert_eq!(result["read"]["model_id"], json!(model_id), "{result}");
    assert!(close(&result["read"]["total_cost"], expected), "{result}");
    assert_eq!(result["read"]["tier"], json!("Standard"), "{result}");
    let id = result["generation"].as_str().unwrap();
    let o = observation(&app, &key, id).await;
    assert_eq!(
        o["usageDetails"],
        json!({"input": 120, "output": 30, "total": 150})
    );
    assert!(close(&o["calculatedTotalCost"], expected), "{o}");
}

/// Langfuse's rules where ours differed: a tier's attribute conditions read the model parameters
/// of the event that carried the usage, not the merged ones; sent costs get a total only when it
/// was sent or they are input and output alone.
#[tokio::test]
async fn tiers_read_the_usage_events_parameters_and_sent_costs_are_totalled_as_langfuse_does() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "costs-rules").await;
    let trace = "rules-trace";
    let later = "2026-01-05T10:00:01.000Z";
    let update = |id: &str, body: Value| {
        let mut full = json!({"id": id});
        full.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        envelope(&format!("{id}-update"), "generation-update", later, full)
    };
    let batch = json!({"batch": [
        // The usage came with the fast tier's parameter; a later update changes the parameter.
        generation("fast-then-default", trace, json!({"model": "gpt-4o",
            "modelParameters": {"service_tier": "priority"}, "usage": {"input": 100, "output": 10}})),
        update("fast-then-default", json!({"modelParameters": {"service_tier": "default"}})),
        // The parameter came with the create, the usage with an update that has none.
        generation("usage-in-update", trace, json!({"model": "gpt-4o",
            "modelParameters": {"service_tier": "priority"}})),
        update("usage-in-update", json!({"usage": {"input": 100, "output": 10}})),
        // Sent costs of other types than input and output, without a total: no total.
        generation("parts", trace, json!({"model": "gpt-4o", "usage": {"input": 100},
            "costDetails": {"input": 0.5, "cache_read": 0.1}})),
        // The legacy shape's input and output costs: their sum.
        generation("legacy", trace, json!({"model": "gpt-4o",
            "usage": {"input": 100, "output": 10, "inputCost": 1.0, "outputCost": 2.0}})),
    ]});
    app.ingest_accepted(&key, &batch).await;
    let prices = shipped("gpt-4o").1;

    let fast = observation(&app, &key, "fast-then-default").await;
    assert_eq!(fast["usagePricingTierName"], json!("Fast mode"), "{fast}");
    assert_eq!(fast["modelParameters"]["service_tier"], json!("default"));
    assert!(
        close(
            &fast["calculatedTotalCost"],
            usd("0.00000425", 100) + usd("0.000017", 10)
        ),
        "{fast}"
    );

    let standard = observation(&app, &key, "usage-in-update").await;
    assert_eq!(
        standard["usagePricingTierName"],
        json!("Standard"),
        "{standard}"
    );
    assert!(
        close(
            &standard["calculatedTotalCost"],
            usd(&prices["input"], 100) + usd(&prices["output"], 10)
        ),
        "{standard}"
    );

    let parts = observation(&app, &key, "parts").await;
    assert_eq!(
        parts["costDetails"],
        json!({"input": 0.5, "cache_read": 0.1}),
        "{parts}"
    );
    assert_eq!(parts["calculatedTotalCost"], Value::Null, "{parts}");
    assert_eq!(parts["usage"]["totalCost"], Value::Null, "{parts}");

    let legacy = observation(&app, &key, "legacy").await;
    assert_eq!(
        legacy["costDetails"],
        json!({"input": 1.0, "output": 2.0, "total": 3.0}),
        "{legacy}"
    );
    assert_eq!(legacy["calculatedTotalCost"], json!(3.0), "{legacy}");
}
