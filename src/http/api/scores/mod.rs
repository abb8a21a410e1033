//! Scores: direct writes (`create`: `POST /api/public/scores`), and the two lists side by side:
//! `v2` (`GET /api/public/v2/scores`, page-numbered, with the trace's user, tags and session) and
//! `v3` (`GET /api/public/v3/scores`, cursor-paged, one polymorphic value).

pub mod create;
pub mod v2;
pub mod v3;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    create::routes(cfg);
    v2::routes(cfg);
    v3::routes(cfg);
}
