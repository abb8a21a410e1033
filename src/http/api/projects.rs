//! `GET /api/public/projects`: the key's project. The SDKs call it to check their credentials.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::Stores;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Projects {
    data: Vec<Project>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Project {
    id: String,
    name: String,
    organization: Organization,
    metadata: serde_json::Value,
    /// Omitted when no retention is configured, as Langfuse does.
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_days: Option<i32>,
}

#[derive(Debug, Serialize)]
struct Organization {
    id: String,
    name: String,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/projects").route(web::get().to(get_projects)));
}

async fn get_projects(
    auth: ProjectAuth,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let project = crate::storage::postgres::find_project(&stores.postgres, &auth.project_id)
        .await?
        // The key was valid a moment ago; its project has just been deleted.
        .ok_or_else(|| ApiError::NotFound("Project not found".to_string()))?;
    Ok(HttpResponse::Ok().json(Projects {
        data: vec![Project {
            id: project.id,
            name: project.name,
            organization: Organization {
                id: project.org_id,
                name: project.org_name,
            },
            metadata: project.metadata,
            retention_days: project.retention_days.filter(|d| *d > 0),
        }],
    }))
}
