//! Scores: direct writes (`create`: `POST /api/public/scores`; `delete`: `DELETE
//! /api/public/scores/{scoreId}`), and the two lists side by side: `v2` (`GET
//! /api/public/v2/scores`, page-numbered, with the trace's user, tags and session, and one score by
//! id) and `v3` (`GET /api/public/v3/scores`, cursor-paged, one polymorphic value).

pub mod create;
pub mod delete;
pub mod v2;
pub mod v3;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    create::routes(cfg);
    delete::routes(cfg);
    v2::routes(cfg);
    v3::routes(cfg);
}
