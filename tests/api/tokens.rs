//! Token counting in the worker: an observation that names a model with a tokenizer and was sent
//! neither usage nor cost, through the batch API and the Python SDK 5.x, comes back with the
//! tokens of its input and output and their cost; an ERROR-level one, one with sent usage or sent
//! cost, and one whose model counts nothing (no tokenizer, Anthropic's, no model) are not counted.
//!
//! Expected counts are those of OpenAI's `tiktoken` (Python) for the same texts: per message
//! for chat messages (3 per message, 1 per name, 3 for the reply), the text otherwise.

use serde_json::{json, Value};

use crate::costs::{close, generation, observation, shipped, usd, AT};
use crate::helpers::{create_project, envelope, ApiKey, TestApp, TestConfig};
use crate::sdk::{run_roundtrip, sdk_python, sdk_script};

fn update(id: &str, body: Value) -> Value {
    let mut full = json!({"id": id});
    full.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    envelope(&format!("{id}-update"), "generation-update", AT, full)
}

/// What the v1 read answers about an observation's usage and cost.
fn usage_and_cost(o: &Value) -> (Value, Value) {
    (o["usageDetails"].clone(), o["calculatedTotalCost"].clone())
}

#[tokio::test]
async fn observations_without_usage_or_cost_get_their_tokens_counted_and_priced() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "tokens-batch").await;
    let trace = "tokens-trace";
    let batch = json!({"batch": [
        envelope("t-create", "trace-create", AT, json!({"id": trace, "name": "tokens"})),
        // Chat messages in the create, the answer in an update: cl100k, per message.
        generation("chat", trace, json!({"model": "gpt-4", "input": [
            {"role": "user", "content": "Summarise: the quick brown fox jumps over the lazy dog.",
             "name": "ann"}]})),
        update("chat", json!({"output": "A fox jumps over a dog."})),
        // Plain text, o200k.
        generation("text", trace, json!({"model": "gpt-4o",
            "input": "Translate to German: good morning", "output": "Guten Morgen"})),
        // A JSON object in, nothing out.
        generation("json", trace, json!({"model": "gpt-4o",
            "input": {"query": "weather in Paris", "units": "metric"}})),
        // Not counted: ERROR level, sent usage, sent cost.
        generation("failed", trace, json!({"model": "gpt-4o", "level": "ERROR",
            "input": "Translate to German: good morning"})),
        generation("sent-usage", trace, json!({"model": "gpt-4o", "usage": {"input": 5},
            "input": "Translate to German: good morning"})),
        generation("sent-cost", trace, json!({"model": "gpt-4o", "costDetails": {"total": 0.1},
            "input": "Translate to German: good morning"})),
        // Models that count nothing: no tokenizer, Anthropic's, and no model at all.
        generation("no-tokenizer", trace, json!({"model": "o1", "input": "Hello there"})),
        generation("claude", trace, json!({"model": "claude-3-5-sonnet-20240620",
            "input": "Hello there"})),
        generation("unknown", trace, json!({"model": "my-own-model", "input": "Hello there"})),
        // Counted usage was sent with no event: a tier conditioned on a model parameter does not
        // apply to it.
        generation("fast", trace, json!({"model": "gpt-4o", "modelParameters": {"service_tier": "priority"},
            "input": "Translate to German: good morning", "output": "Guten Morgen"})),
    ]});
    app.ingest_accepted(&key, &batch).await;

    let (gpt_4, gpt_4_prices) = shipped("gpt-4");
    let chat = observation(&app, &key, "chat").await;
    assert_eq!(chat["modelId"], json!(gpt_4), "{chat}");
    assert_eq!(
        chat["usageDetails"],
        json!({"input": 23, "output": 7, "total": 30}),
        "{chat}"
    );
    let expected = usd(&gpt_4_prices["input"], 23) + usd(&gpt_4_prices["output"], 7);
    assert!(close(&chat["calculatedTotalCost"], expected), "{chat}");
    assert!(
        close(
            &chat["costDetails"]["input"],
            usd(&gpt_4_prices["input"], 23)
        ),
        "{chat}"
    );
    assert_eq!(chat["usagePricingTierName"], json!("Standard"));
    // The legacy usage object reads the same counts.
    assert_eq!(chat["usage"]["input"], json!(23), "{chat}");

    let (gpt_4o, prices) = shipped("gpt-4o");
    let text_cost = usd(&prices["input"], 6) + usd(&prices["output"], 3);
    let text = observation(&app, &key, "text").await;
    assert_eq!(text["modelId"], json!(gpt_4o));
    assert_eq!(
        text["usageDetails"],
        json!({"input": 6, "output": 3, "total": 9})
    );
    assert!(close(&text["calculatedTotalCost"], text_cost), "{text}");

    let object = observation(&app, &key, "json").await;
    assert_eq!(object["usageDetails"], json!({"input": 11, "total": 11}));
    assert!(
        close(&object["calculatedTotalCost"], usd(&prices["input"], 11)),
        "{object}"
    );

    let failed = observation(&app, &key, "failed").await;
    assert_eq!(failed["modelId"], json!(gpt_4o));
    assert_eq!(usage_and_cost(&failed), (json!({}), Value::Null));

    let sent_usage = observation(&app, &key, "sent-usage").await;
    assert_eq!(sent_usage["usageDetails"], json!({"input": 5, "total": 5}));
    assert!(close(
        &sent_usage["calculatedTotalCost"],
        usd(&prices["input"], 5)
    ));

    let sent_cost = observation(&app, &key, "sent-cost").await;
    assert_eq!(usage_and_cost(&sent_cost), (json!({}), json!(0.1)));

    for (id, model) in [
        ("no-tokenizer", Some(shipped("o1").0)),
        ("claude", Some(shipped("claude-3-5-sonnet-20240620").0)),
        ("unknown", None),
    ] {
        let o = observation(&app, &key, id).await;
        assert_eq!(o["modelId"], json!(model), "{o}");
        assert_eq!(usage_and_cost(&o), (json!({}), Value::Null), "{o}");
        assert_eq!(o["usagePricingTierName"], Value::Null, "{o}");
    }

    let fast = observation(&app, &key, "fast").await;
    assert_eq!(
        fast["usageDetails"],
        json!({"input": 6, "output": 3, "total": 9})
    );
    assert_eq!(fast["usagePricingTierName"], json!("Standard"), "{fast}");
    assert!(close(&fast["calculatedTotalCost"], text_cost), "{fast}");
}

#[tokio::test]
async fn a_project_model_with_an_openai_tokenizer_counts_with_it() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "tokens-own-model").await;
    let response = app
        .post_as(
            "/api/public/models",
            &key,
            &json!({"modelName": "house-model", "matchPattern": "(?i)^house-model$", "unit": "TOKENS",
                    "inputPrice": 0.001, "outputPrice": 0.002, "tokenizerId": "openai",
                    "tokenizerConfig": {"tokenizerModel": "gpt-4o", "tokensPerMessage": 3,
                                        "tokensPerName": 1}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let batch = json!({"batch": [
        generation("own", "own-trace", json!({"model": "house-model",
            "input": [{"role": "system", "content": "You are a terse assistant."},
                      {"role": "user", "content": "What is the capital of France?"}],
            "output": "The capital of France is Paris."})),
    ]});
    app.ingest_accepted(&key, &batch).await;
    let o = observation(&app, &key, "own").await;
    assert_eq!(
        o["usageDetails"],
        json!({"input": 24, "output": 7, "total": 31}),
        "{o}"
    );
    // 24 × 0.001 + 7 × 0.002, exactly.
    assert_eq!(o["calculatedTotalCost"], json!(0.038), "{o}");
}

#[tokio::test]
async fn a_python_sdk_v5_generation_without_usage_reads_back_with_counted_tokens_and_cost() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key: ApiKey = create_project(&app.config, "tokens-sdk-v5").await;
    let trace_id = "7a2b3c4d5e6f70810000000000000002";
    let mut command = tokio::process::Command::new(python);
    command.arg(sdk_script("python_v5_tokens.py"));
    let result = run_roundtrip(command, &app, &key, trace_id).await;
    let (model_id, prices) = shipped("gpt-4o");
    // Two chat messages (o200k, 3 per message, 3 for the reply) and one sentence out.
    let expected = usd(&prices["input"], 24) + usd(&prices["output"], 7);
    assert_eq!(result["read"]["model_id"], json!(model_id), "{result}");
    assert!(close(&result["read"]["total_cost"], expected), "{result}");
    assert_eq!(
        result["read"]["usage"],
        json!({"input": 24, "output": 7, "total": 31}),
        "{result}"
    );
    let id = result["generation"].as_str().unwrap();
    let o = observation(&app, &key, id).await;
    assert_eq!(
        o["usageDetails"],
        json!({"input": 24, "output": 7, "total": 31}),
        "{o}"
    );
    assert!(close(&o["calculatedTotalCost"], expected), "{o}");
}
