//! `POST /api/public/scores`: scores written directly rather than in an ingestion batch, which is
//! how the current Python SDK (5.x) sends `score_current_trace` and friends.
//!
//! One score object (the public spec's `CreateScoreRequest`) is answered 200 `{"id"}`; a list of
//! them (what the SDK sends) is answered 202 `{"message": "Accepted"}` when every score was
//! accepted, else 207 `{"accepted", "rejected", "errors": [{"message"}]}`. Each score becomes a
//! `score-create` envelope and takes the ingestion pipeline, validated by its parser. As in
//! Langfuse, the public key alone (a browser) may write scores here, and every score written
//! here has source `API`: Langfuse's `PostScoresBody` has no `source` (nor `authorUserId`), so
//! whatever a client sends in them is dropped. A score naming a config is checked against it
//! before it is stored: a refused single score is a 400 whose message names the problem.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use crate::config::IngestionSettings;
use crate::domain::time::iso;
use crate::http::auth::IngestionAuth;
use crate::http::error::ApiError;
use crate::storage::score_configs::ConfigCache;
use crate::storage::Stores;
use crate::write_path::accept_envelopes;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::http::api::resource("/scores").route(web::post().to(create_scores)));
}

/// A score as a `score-create` envelope; its id is the score's, given or new, so a retried
/// request with ids is stored once. The web UI's score form writes through it too.
pub fn envelope(mut score: Value, now: &str) -> (String, Value) {
    let id = match score.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => uuid::Uuid::new_v4().to_string(),
    };
    if let Some(body) = score.as_object_mut() {
        body.insert("id".into(), json!(id));
    }
    let envelope = json!({
        "id": format!("score-{id}"),
        "timestamp": now,
        "type": "score-create",
        "body": score,
    });
    (id, envelope)
}

/// A score body as this endpoint takes it: without the fields only the server sets, so the
/// score is an `API` score with no author.
pub fn as_api_score(mut score: Value) -> Value {
    if let Some(body) = score.as_object_mut() {
        body.remove("source");
        body.remove("authorUserId");
    }
    score
}

async fn create_scores(
    auth: IngestionAuth,
    body: web::Json<Value>,
    stores: web::Data<Stores>,
    settings: web::Data<IngestionSettings>,
    configs: web::Data<ConfigCache>,
) -> Result<HttpResponse, ApiError> {
    let now = iso(chrono::Utc::now());
    match body.into_inner() {
        Value::Array(scores) => {
            let count = scores.len();
            let envelopes = scores
                .into_iter()
                .map(|s| envelope(as_api_score(s), &now).1)
                .collect();
            let outcome =
                accept_envelopes(&stores, &settings, &configs, auth.project_id(), envelopes)
                    .await?;
            if outcome.errors.is_empty() {
                return Ok(HttpResponse::Accepted().json(json!({"message": "Accepted"})));
            }
            let errors: Vec<Value> = outcome
                .errors
                .iter()
                .map(|e| json!({"message": e.message}))
                .collect();
            Ok(HttpResponse::MultiStatus().json(json!({
                "accepted": count - errors.len(),
                "rejected": errors.len(),
                "errors": errors,
            })))
        }
        score @ Value::Object(_) => {
            let (id, envelope) = envelope(as_api_score(score), &now);
            let outcome = accept_envelopes(
                &stores,
                &settings,
                &configs,
                auth.project_id(),
                vec![envelope],
            )
            .await?;
            match outcome.errors.into_iter().next() {
                Some(error) if error.status == 404 => Err(ApiError::NotFound(error.message)),
                Some(error) => Err(ApiError::BadRequest(error.message)),
                None => Ok(HttpResponse::Ok().json(json!({ "id": id }))),
            }
        }
        _ => Err(ApiError::BadRequest(
            "Invalid request data: send a score object or a list of them".to_string(),
        )),
    }
}
