//! Observations: the v1 API (`GET /api/public/observations[/{id}]`, page-numbered, every field)
//! and the v2 list (`GET /api/public/v2/observations`, cursor-paged, field groups).

pub mod v1;
pub mod v2;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    v1::routes(cfg);
    v2::routes(cfg);
}
